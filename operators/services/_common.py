"""Shared parts of the operators commands: constants, the problems they raise and the steps that
announce freed leases. Private to :mod:`operators.services` (its public names are re-exported there)."""

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import structlog
from django.conf import settings

from audit import services as audit
from cases.models import SubCase
from nexa.platform.problems import Problem, conflict_problem, validation_problem
from nexa.platform.urns import InvalidUrn, parse_urn
from operators import events
from operators.models import EntityLock, Operator, OperatorSession

logger = structlog.get_logger(__name__)

LOCKS = EntityLock._meta.db_table
SESSIONS = OperatorSession._meta.db_table
OPERATORS = Operator._meta.db_table

# Actor of automation in the audit log.
SYSTEM_LOCK_SWEEP = "urn:nexa:system:lock-sweep"
SYSTEM_SESSION_SWEEP = "urn:nexa:system:session-sweep"

REASON_MAX_LENGTH = 1000
SWEEP_BATCH = 500


@dataclass(frozen=True, slots=True)
class _Released:
    entity_urn: str
    case_urn: str
    airline: str
    holder: str
    fencing_token: int


def lease_seconds() -> int:
    return int(settings.NEXA_LOCK_LEASE_SECONDS)


def remaining_seconds(value: float | None) -> int:
    """Remaining lease as whole seconds, rounded up (0.2 s left is still "1 s")."""
    return max(0, math.ceil(value or 0))


# --- problems ---------------------------------------------------------------------------------------


def subcase_locked_problem(*, sub_case_urn: str, locked_by: str, expires_in_seconds: int) -> Problem:
    return conflict_problem(
        slug="subcase-locked",
        title="The sub-case is locked by another operator",
        detail=f"{sub_case_urn} is locked by {locked_by} for another {expires_in_seconds} s.",
        lockedBy=locked_by,
        expiresInSeconds=expires_in_seconds,
    )


def _not_locked_problem(sub_case_urn: str) -> Problem:
    return conflict_problem(
        slug="subcase-not-locked",
        title="The sub-case is not locked",
        detail=f"{sub_case_urn} has no live lock to release.",
    )


def _locked_by_another_problem(*, sub_case_urn: str, locked_by: str, expires_in_seconds: int) -> Problem:
    return conflict_problem(
        slug="subcase-locked-by-another",
        title="Only the holder can release this lock",
        detail=f"{sub_case_urn} is locked by {locked_by}; only the holder can release it (or force-unlock it).",
        lockedBy=locked_by,
        expiresInSeconds=expires_in_seconds,
    )


def stale_fencing_token_problem(*, sub_case_urn: str, fencing_token: int) -> Problem:
    return conflict_problem(
        slug="stale-fencing-token",
        title="The fencing token is not current",
        detail=(
            f"Fencing token {fencing_token} is not the token of a live lock you hold on {sub_case_urn}; "
            "your lease ended or was taken over. Lock the sub-case again and re-read it."
        ),
    )


def operator_deactivated_problem(operator_urn: str) -> Problem:
    return Problem(
        status=403,
        slug="operator-deactivated",
        title="The operator is deactivated",
        detail=f"{operator_urn} has been deactivated by an administrator.",
    )


def _require_reason(reason: object) -> str:
    if not isinstance(reason, str) or not reason.strip():
        raise validation_problem([{"field": "reason", "message": "is required"}])
    reason = reason.strip()
    if len(reason) > REASON_MAX_LENGTH:
        raise validation_problem([{"field": "reason", "message": f"at most {REASON_MAX_LENGTH} characters"}])
    return reason


# --- shared steps -----------------------------------------------------------------------------------


def _announce(*, released: Sequence[_Released], actor: str, action: str, reason: str) -> None:
    """One audit row and one ``subcase:state-changed`` (lockedBy null) per freed lease, inside the
    caller's transaction."""
    if not released:
        return
    states = _subcase_states([lock.entity_urn for lock in released])
    for lock in released:
        audit.record(
            airline=lock.airline,
            actor=actor,
            action=action,
            entity_urn=lock.entity_urn,
            case_urn=lock.case_urn,
            reason=reason,
            before={"lockedBy": lock.holder, "fencingToken": lock.fencing_token},
            after={"lockedBy": None},
        )
        state = states.get(lock.entity_urn)
        if state is None:  # the sub-case row is gone: nothing to show a watcher
            continue
        events.publish_lock_changed(
            sub_case_urn=lock.entity_urn,
            case_urn=lock.case_urn,
            airline=lock.airline,
            status=state.status,
            version=state.version,
            locked_by=None,
        )


@dataclass(frozen=True, slots=True)
class _SubCaseState:
    status: str
    version: int


def _subcase_states(entity_urns: Sequence[str]) -> dict[str, _SubCaseState]:
    """Current status and version of these sub-cases, for the event payload (one query). Read from the
    cases model directly because the callers (sweeps, disconnects) act for several airlines at once and
    have no principal; every URN comes from a lock row that was created tenant-checked."""
    ids = {}
    for urn in entity_urns:
        try:
            ids[parse_urn(urn, "subcase").id] = urn
        except InvalidUrn:
            continue
    rows = SubCase.objects.filter(pk__in=list(ids)).values_list("id", "status", "version")
    return {ids[pk]: _SubCaseState(status=status, version=version) for pk, status, version in rows}


def _released_rows(rows: Iterable[tuple]) -> list[_Released]:
    return [
        _Released(entity_urn=urn, case_urn=case_urn, airline=airline, holder=holder, fencing_token=token)
        for urn, case_urn, airline, holder, token in rows
    ]


# Statements that change several leases lock their rows in id order (``ORDER BY id FOR UPDATE``), so two
# of them touching the same operator's leases (two processes' heartbeats, a heartbeat and a disconnect)
# queue instead of deadlocking.
