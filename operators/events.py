"""Events of the operators domain.

Lock changes are announced with the cases domain's ``subcase:state-changed`` (spec 000: "Sub-case
transition or lock change"), built by :mod:`cases.events` so both producers send one payload shape:
``{subCaseUrn, caseUrn, status, version, lockedBy}`` to the room ``case:<urn>``.

``operator:deactivated`` is internal (declared so in the event registry, :mod:`nexa.platform.events`):
it goes to the airline room so that every ASGI process sees it, and the Socket.IO consumer handles it
by closing that operator's sockets with 4401. It is not one of spec 000's client events and is never
forwarded to clients.
"""

from typing import Any

from cases import events as case_events
from nexa.platform import events as registry
from nexa.platform.events import Audience, Room, TypedDict
from nexa.platform.outbox import publish

SUBCASE_STATE_CHANGED = case_events.SUBCASE_STATE_CHANGED
OPERATOR_DEACTIVATED = "operator:deactivated"


class OperatorDeactivated(TypedDict):
    operatorUrn: str


registry.declare(
    OPERATOR_DEACTIVATED,
    payload=OperatorDeactivated,
    audience=Audience.INTERNAL,
    rooms=[Room.AIRLINE],
    description="An operator was deactivated: every process closes their sockets (4401)",
)


def publish_lock_changed(
    *, sub_case_urn: str, case_urn: str, airline: str, status: str, version: int, locked_by: str | None
) -> None:
    """``subcase:state-changed`` with the new ``lockedBy`` (null when released). Call inside the
    transaction that changed the lock; the outbox delivers after commit."""
    case_events.publish_subcase_state_changed(
        sub_case_urn=sub_case_urn,
        case_urn=case_urn,
        airline=airline,
        status=status,
        version=version,
        locked_by=locked_by,
    )


def operator_deactivated_payload(*, operator_urn: str) -> dict[str, Any]:
    return {"operatorUrn": operator_urn}


def publish_operator_deactivated(*, operator_urn: str, airline: str) -> None:
    publish(
        OPERATOR_DEACTIVATED,
        operator_deactivated_payload(operator_urn=operator_urn),
        registry.rooms_for(OPERATOR_DEACTIVATED, airline=airline),
        airline=airline,
    )
