"""Events of the cases domain (spec 000's event table), declared in the event registry
(:mod:`nexa.platform.events`): name, payload schema, audience and rooms.

Payloads carry URNs, statuses and counts only — never passenger names or contact details — so
the outbox and every Socket.IO client stay free of personal data.

Rooms: ``case:updated`` goes to the case room and the airline room (lists, dashboard); every other
event goes to the case room only, so a socket gets a case's sub-case and step events after it
``subscribe``\\ s to the case.

``subcase:state-changed`` always carries the sub-case's current lock holder in ``lockedBy`` (null only
when nobody holds a live lock: spec 000 § Lock state in the UI). The cases domain does not know about
locks; the operators app registers the lookup (:func:`lock_holder_lookup_register`) at start-up, the
way it registers the write guard, and the builder asks it inside the publishing transaction.
"""

from collections.abc import Callable
from typing import Any

from nexa.platform import events as registry
from nexa.platform.events import Annotated, Audience, NotRequired, Room, TypedDict, Urn
from nexa.platform.outbox import publish

CASE_UPDATED = "case:updated"
SUBCASE_STATE_CHANGED = "subcase:state-changed"
# The saga's events (published by cases/saga.py; declared here, the cases app's event module).
STEP_STARTED = "graph:step:started"
STEP_COMPLETED = "graph:step:completed"
STEP_PROGRESS = "graph:step:progress"
SAGA_REQUESTED = "saga:requested"
SAGA_FAILED = "saga:failed"
SAGA_COMPLETED = "saga:completed"
SAGA_CANCELLED = "saga:cancelled"
SAGA_STEP_CHANGED = "saga:step:changed"

CaseUrn = Annotated[str, Urn("case")]
SubCaseUrn = Annotated[str, Urn("subcase")]
StepUrn = Annotated[str, Urn("step")]
SagaUrn = Annotated[str, Urn("saga")]


class CaseUpdated(TypedDict):
    caseUrn: CaseUrn
    status: str
    version: int
    counts: dict[str, int]  # sub-cases by status


class SubCaseStateChanged(TypedDict):
    subCaseUrn: SubCaseUrn
    caseUrn: CaseUrn
    status: str
    version: int
    lockedBy: str | None  # the current holder of a live lock; null: nobody holds it


class StepStarted(TypedDict):
    caseUrn: CaseUrn
    stepUrn: StepUrn
    name: str
    startedAt: str | None


class StepCompleted(TypedDict):
    caseUrn: CaseUrn
    stepUrn: StepUrn
    completedAt: str | None
    result: dict[str, Any]


class StepProgress(TypedDict):
    caseUrn: CaseUrn
    stepUrn: StepUrn
    progress: float
    message: NotRequired[str]


class SagaRequested(TypedDict):
    sagaUrn: SagaUrn
    subCaseUrn: SubCaseUrn
    caseUrn: CaseUrn


class SagaFinished(TypedDict):
    caseUrn: CaseUrn
    subCaseUrn: SubCaseUrn
    sagaUrn: SagaUrn


class SagaStepChanged(TypedDict):
    caseUrn: CaseUrn
    sagaUrn: SagaUrn
    stepUrn: StepUrn
    name: str
    status: str


class SagaFailed(TypedDict):
    caseUrn: CaseUrn
    subCaseUrn: SubCaseUrn
    sagaUrn: SagaUrn
    category: str | None
    failedStep: str | None
    compensationFailed: bool  # a step could not be undone
    outcomeUnknown: list[StepUrn]  # steps whose provider outcome is in doubt
    attempts: list[dict[str, Any]]  # every provider error, oldest first


_CLIENT, _INTERNAL = Audience.CLIENT, Audience.INTERNAL
registry.declare(
    CASE_UPDATED,
    payload=CaseUpdated,
    audience=_CLIENT,
    rooms=[Room.CASE, Room.AIRLINE],
    description="Case state changed (any sub-case transition fans up)",
)
registry.declare(
    SUBCASE_STATE_CHANGED,
    payload=SubCaseStateChanged,
    audience=_CLIENT,
    rooms=[Room.CASE],
    description="Sub-case transition or lock change",
)
registry.declare(
    STEP_STARTED, payload=StepStarted, audience=_CLIENT, rooms=[Room.CASE], description="Saga step started"
)
registry.declare(
    STEP_COMPLETED, payload=StepCompleted, audience=_CLIENT, rooms=[Room.CASE], description="Saga step completed"
)
registry.declare(
    STEP_PROGRESS, payload=StepProgress, audience=_CLIENT, rooms=[Room.CASE], description="Long-running step heartbeat"
)
registry.declare(
    SAGA_REQUESTED,
    payload=SagaRequested,
    audience=_INTERNAL,
    description="A compensation run was accepted (or re-armed): the outbox hands it to a saga worker",
)
registry.declare(
    SAGA_FAILED,
    payload=SagaFailed,
    audience=_INTERNAL,
    rooms=[Room.CASE],
    description="A compensation run failed for good; the sub-case went to manual review",
)
registry.declare(SAGA_COMPLETED, payload=SagaFinished, audience=_INTERNAL, rooms=[Room.CASE])
registry.declare(SAGA_CANCELLED, payload=SagaFinished, audience=_INTERNAL, rooms=[Room.CASE])  # fmt: skip
registry.declare(
    SAGA_STEP_CHANGED,
    payload=SagaStepChanged,
    audience=_INTERNAL,
    rooms=[Room.CASE],
    description="A saga step changed status where spec 000 has no event (FAILED, SKIPPED, COMPENSATION_FAILED, "
    "an in-doubt step resolved)",
)

# --- rooms ------------------------------------------------------------------------------------------

case_room = registry.case_room
airline_room = registry.airline_room


def case_rooms(*, case_urn: str, airline: str) -> list[str]:
    """The rooms of a case's sub-case, step and notification events: the case room only (``airline`` is
    kept for the callers' signature). ``case:updated`` also goes to the airline room
    (:func:`publish_case_updated`)."""
    del airline
    return [case_room(case_urn)]


# --- the lock-holder lookup (registered by operators) ---------------------------------------------------

LockHolderLookup = Callable[..., str | None]  # (*, sub_case_urn, airline) -> holder URN | None
_lock_holder_lookups: list[LockHolderLookup] = []


def lock_holder_lookup_register(lookup: LockHolderLookup) -> LockHolderLookup:
    """Install the lookup of a sub-case's current lock holder (the operators app, at start-up). It runs
    on the publishing transaction's connection. Idempotent."""
    if lookup not in _lock_holder_lookups:
        _lock_holder_lookups.append(lookup)
    return lookup


def lock_holder_lookup_unregister(lookup: LockHolderLookup) -> None:
    if lookup in _lock_holder_lookups:
        _lock_holder_lookups.remove(lookup)


def current_lock_holder(*, sub_case_urn: str, airline: str) -> str | None:
    """The operator holding a live lock on the sub-case, or None (also when no lookup is installed)."""
    for lookup in tuple(_lock_holder_lookups):
        holder = lookup(sub_case_urn=sub_case_urn, airline=airline)
        if holder:
            return holder
    return None


class _CurrentHolder:
    def __repr__(self) -> str:
        return "CURRENT_HOLDER"


CURRENT_HOLDER: Any = _CurrentHolder()  # "look the holder up" (the default of the builders below)


# --- payloads and publishers ------------------------------------------------------------------------------


def case_updated_payload(*, case_urn: str, status: str, version: int, counts: dict[str, int]) -> dict[str, Any]:
    """``{caseUrn, status, version, counts}``; ``counts`` is sub-cases by status."""
    return {"caseUrn": case_urn, "status": str(status), "version": version, "counts": dict(counts)}


def subcase_state_changed_payload(
    *,
    sub_case_urn: str,
    case_urn: str,
    status: str,
    version: int,
    locked_by: str | None = CURRENT_HOLDER,
    airline: str = "",
) -> dict[str, Any]:
    """``{subCaseUrn, caseUrn, status, version, lockedBy}``. ``lockedBy`` is the current holder, looked up
    (in the caller's transaction) unless the caller states it: the lock services pass the holder they
    just granted, or None for a release."""
    if locked_by is CURRENT_HOLDER:
        locked_by = current_lock_holder(sub_case_urn=sub_case_urn, airline=airline)
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
        registry.rooms_for(CASE_UPDATED, case_urn=case_urn, airline=airline),
        airline=airline,
    )


def publish_subcase_state_changed(
    *,
    sub_case_urn: str,
    case_urn: str,
    airline: str,
    status: str,
    version: int,
    locked_by: str | None = CURRENT_HOLDER,
) -> None:
    """Inside the transaction that changed the sub-case (or its lock). Without ``locked_by`` the payload
    carries the lock's current holder."""
    publish(
        SUBCASE_STATE_CHANGED,
        subcase_state_changed_payload(
            sub_case_urn=sub_case_urn,
            case_urn=case_urn,
            status=status,
            version=version,
            locked_by=locked_by,
            airline=airline,
        ),
        registry.rooms_for(SUBCASE_STATE_CHANGED, case_urn=case_urn, airline=airline),
        airline=airline,
    )


# --- allocation (issue 12) ------------------------------------------------------------------------------

ALLOCATION_FAILED = "allocation:failed"
DemandUrn = Annotated[str, Urn("demand")]
AllocationUrn = Annotated[str, Urn("allocation")]
GroupUrn = Annotated[str, Urn("group")]


class AllocationFailed(TypedDict):
    caseUrn: CaseUrn
    demandUrn: DemandUrn
    allocationUrn: AllocationUrn
    groupUrn: GroupUrn
    subCaseUrns: list[SubCaseUrn]
    category: str  # spec 001: ALLOCATION_FAILED, POLICY_VIOLATION, MIXED_TIER_GROUP, DATA_INCOMPLETE
    reason: str


registry.declare(
    ALLOCATION_FAILED,
    payload=AllocationFailed,
    audience=_INTERNAL,
    rooms=[Room.CASE],
    description="A group of an approved demand could not be placed; its sub-cases went to manual review (the "
    "review app turns it into an item)",
)


def publish_allocation_failed(
    *,
    airline: str,
    case_urn: str,
    demand_urn: str,
    allocation_urn: str,
    group_urn: str,
    sub_case_urns: list[str],
    category: str,
    reason: str,
) -> None:
    """Inside the allocating transaction (the outbox delivers after commit)."""
    publish(
        ALLOCATION_FAILED,
        {
            "caseUrn": case_urn,
            "demandUrn": demand_urn,
            "allocationUrn": allocation_urn,
            "groupUrn": group_urn,
            "subCaseUrns": list(sub_case_urns),
            "category": category,
            "reason": reason,
        },
        registry.rooms_for(ALLOCATION_FAILED, case_urn=case_urn, airline=airline),
        airline=airline,
    )


# --- booking (issue 12): a group's rooms could not be booked; the review issue turns it into items ----

BOOKING_FAILED = "booking:failed"


class AttemptedHotel(TypedDict):
    hotelUrn: str | None
    reason: str  # hotel-full | payment-refused | vendor-error | timeout
    providerError: str | None


class BookingFailed(TypedDict):
    caseUrn: CaseUrn
    allocationUrn: str  # "" for a HOTEL compensation item (no allocation)
    groupUrn: str
    subCaseUrns: list[SubCaseUrn]
    category: str  # BOOKING_FAILED | PARTIAL_FULFILLMENT | PAYMENT_FAILED
    reason: str
    attemptedHotels: list[AttemptedHotel]


registry.declare(
    BOOKING_FAILED,
    payload=BookingFailed,
    audience=_INTERNAL,
    rooms=[Room.CASE],
    description="A booking saga failed for good (every offer tried, or the card refused); its passengers went to "
    "manual review",
)


def publish_booking_failed(*, airline: str, payload: dict[str, Any]) -> None:
    publish(BOOKING_FAILED, payload, case_rooms(case_urn=payload["caseUrn"], airline=airline), airline=airline)
