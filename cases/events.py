"""Events of the cases domain: names, rooms and payload builders (spec 000's event table).

Payloads carry URNs, statuses and counts only — never passenger names or contact details — so
the outbox and every Socket.IO client stay free of personal data.
"""

from typing import Any

from nexa.platform.outbox import publish
from nexa.platform.rooms import airline_room, case_room, case_rooms

CASE_UPDATED = "case:updated"
SUBCASE_STATE_CHANGED = "subcase:state-changed"

# The rooms are named by the platform (every app publishes to them); handed on for this app's callers.
__all__ = [
    "CASE_UPDATED",
    "SUBCASE_STATE_CHANGED",
    "airline_room",
    "case_room",
    "case_rooms",
    "case_updated_payload",
    "publish_case_updated",
    "publish_subcase_state_changed",
    "subcase_state_changed_payload",
]


def case_updated_payload(*, case_urn: str, status: str, version: int, counts: dict[str, int]) -> dict[str, Any]:
    """``{caseUrn, status, version, counts}``; ``counts`` is sub-cases by status."""
    return {"caseUrn": case_urn, "status": str(status), "version": version, "counts": dict(counts)}


def subcase_state_changed_payload(
    *, sub_case_urn: str, case_urn: str, status: str, version: int, locked_by: str | None = None
) -> dict[str, Any]:
    """``{subCaseUrn, caseUrn, status, version, lockedBy}``; ``lockedBy`` is null unless a lock changed."""
    return {
        "subCaseUrn": sub_case_urn,
        "caseUrn": case_urn,
        "status": str(status),
        "version": version,
        "lockedBy": locked_by,
    }


def publish_case_updated(*, case_urn: str, airline: str, status: str, version: int, counts: dict[str, int]) -> None:
    """Call inside the transaction that changed the case (the outbox delivers after commit)."""
    publish(
        CASE_UPDATED,
        case_updated_payload(case_urn=case_urn, status=status, version=version, counts=counts),
        case_rooms(case_urn=case_urn, airline=airline),
        airline=airline,
    )


def publish_subcase_state_changed(
    *, sub_case_urn: str, case_urn: str, airline: str, status: str, version: int, locked_by: str | None = None
) -> None:
    publish(
        SUBCASE_STATE_CHANGED,
        subcase_state_changed_payload(
            sub_case_urn=sub_case_urn, case_urn=case_urn, status=status, version=version, locked_by=locked_by
        ),
        case_rooms(case_urn=case_urn, airline=airline),
        airline=airline,
    )
