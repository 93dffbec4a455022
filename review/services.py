"""Commands of the review domain: every write to review items goes through one of these.

Each runs in one transaction: it locks the item row (``SELECT … FOR UPDATE``), applies one state-machine
transition (django-fsm) with a ``version`` check, writes an audit row and publishes its ``review:*``
event through the outbox. See docs/review.md for the lifecycle.

* :func:`review_item_open` — the system creates an item for one failure occurrence (idempotent by the
  outbox event's URN); :func:`review_item_from_event` maps the three failure events onto it.
* :func:`review_item_claim`, :func:`review_item_assign` — a lease on the item for one operator.
* :func:`review_item_resolve` — only the claimer; the affected sub-cases go back into the normal flow.
* :func:`review_item_escalate` — priority one level up (HIGH stays HIGH), state ESCALATED, a page.
* :func:`review_sla_sweep` — the beat task's work: escalate every breached item once and page the on-call;
  :func:`review_page_deliver` — one signed delivery attempt of a page (``review/paging.py``).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterable, Mapping
from typing import Any

import httpx
import structlog
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django_fsm import can_proceed

from audit import services as audit
from booking.models import Reservation
from cases import selectors as case_selectors
from cases import services as case_services
from cases.models import Case, PassengerGroup, SubCase, SubCaseStatus
from nexa.platform.auth import Principal
from nexa.platform.models import TenantSettings
from nexa.platform.problems import Problem, conflict_problem, validation_problem
from nexa.platform.roles import Role, role_satisfies
from nexa.platform.tenancy import get_for_principal
from nexa.platform.urns import InvalidUrn, new_id, parse_urn
from operators import selectors as operator_selectors
from review import events, paging
from review.models import (
    CATEGORY_PRIORITY,
    ESCALATED_PRIORITY,
    PageStatus,
    PageTrigger,
    ReviewCategory,
    ReviewItem,
    ReviewPage,
    ReviewPriority,
    ReviewResolution,
    ReviewState,
)

logger = structlog.get_logger(__name__)

SYSTEM_REVIEW_ACTOR = "urn:nexa:system:review"
SYSTEM_SLA_ACTOR = "urn:nexa:system:sla"
SWEEP_BATCH = 500
PAGE_MAX_ATTEMPTS = 5
PAGE_BACKOFF_MAX_SECONDS = 300
PAGE_TIMEOUT_SECONDS = 5.0
DEFAULT_CLAIM_LEASE_SECONDS = 900
ATTEMPTED_HOTELS_MAX = 50
REASON_MAX_LENGTH = 2000

# What each resolution does to the affected sub-cases still in MANUAL_REVIEW (docs/review.md):
# back to GROUPED, so demand/allocation picks them up again; cancelled; or left as the booking left them
# (REBOOKED/OVERRIDDEN are reached through the rebook/override actions, which book them themselves).
RESOLUTION_SUBCASE_TRANSITION: dict[str, str | None] = {
    ReviewResolution.NO_ACTION: "return_to_grouped",
    ReviewResolution.RELAXED: "return_to_grouped",
    ReviewResolution.SPLIT: "return_to_grouped",
    ReviewResolution.CANCELLED: "cancel",
    ReviewResolution.REBOOKED: None,
    ReviewResolution.OVERRIDDEN: None,
}

# The failure events and the categories each may carry (anything else falls back to the first).
ALLOCATION_CATEGORIES = (
    ReviewCategory.ALLOCATION_FAILED,
    ReviewCategory.POLICY_VIOLATION,
    ReviewCategory.MIXED_TIER_GROUP,
    ReviewCategory.DATA_INCOMPLETE,
)
BOOKING_CATEGORIES = (ReviewCategory.BOOKING_FAILED, ReviewCategory.PARTIAL_FULFILLMENT, ReviewCategory.PAYMENT_FAILED)
SAGA_FAILED, ALLOCATION_FAILED, BOOKING_FAILED = "saga:failed", "allocation:failed", "booking:failed"
FAILURE_EVENTS = (SAGA_FAILED, ALLOCATION_FAILED, BOOKING_FAILED)


def claim_lease() -> dt.timedelta:
    return dt.timedelta(seconds=getattr(settings, "NEXA_REVIEW_CLAIM_LEASE_SECONDS", DEFAULT_CLAIM_LEASE_SECONDS))


def sla_minutes(*, airline: str, priority: str) -> int:
    """The airline's SLA for ``priority`` (TenantSettings), else the environment's default."""
    field = f"sla_{priority.lower()}_minutes"
    configured = TenantSettings.objects.filter(airline=airline).values_list(field, flat=True).first()
    if configured:
        return int(configured)
    return int(getattr(settings, f"NEXA_REVIEW_SLA_{priority.upper()}_MINUTES"))


def system_principal(airline: str) -> Principal:
    return Principal(airline=airline, role=Role.ADMIN, operator_urn=SYSTEM_REVIEW_ACTOR, subject="system:review")


def _iso(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z") if value else None


# --- problems ------------------------------------------------------------------------------------------


def _illegal_transition(item: ReviewItem, action: str) -> Problem:
    allowed = sorted(t.name for t in item.get_available_state_transitions())
    return conflict_problem(
        slug="illegal-transition",
        title="Not possible in the item's current state",
        detail=f"{item.urn} is {item.state}; {action!r} is not possible from there.",
        currentState=item.state,
        allowedTransitions=allowed,
        version=item.version,
    )


def _claimed_by_other(item: ReviewItem) -> Problem:
    return conflict_problem(
        slug="review-claimed",
        title="Another operator holds this item",
        detail=f"{item.urn} is claimed by {item.assigned_to} until {_iso(item.claimed_until)}.",
        assignedTo=item.assigned_to,
        claimedUntil=_iso(item.claimed_until),
    )


def _not_claimed(item: ReviewItem) -> Problem:
    return conflict_problem(
        slug="review-not-claimed",
        title="Claim the item first",
        detail=f"{item.urn} is not claimed by you; claim it before acting on it.",
        assignedTo=item.assigned_to or None,
    )


# --- shared steps --------------------------------------------------------------------------------------


def _lock_item(*, principal: Principal, review_urn: str) -> ReviewItem:
    urn = parse_urn(review_urn, "review")
    return get_for_principal(
        ReviewItem.objects.select_for_update(of=("self",)).select_related("case"), principal, id=urn.id
    )


def _live_holder(item: ReviewItem, now: dt.datetime) -> str | None:
    if item.assigned_to and item.claimed_until is not None and item.claimed_until > now:
        return item.assigned_to
    return None


def _require_claimer(item: ReviewItem, principal: Principal, now: dt.datetime) -> None:
    """Only the claimer acts on an item. A claimer whose lease lapsed still may, as long as nobody else
    claimed it since (a claim by anyone else replaces ``assigned_to``)."""
    if item.assigned_to == principal.operator_urn:
        return
    if _live_holder(item, now):
        raise _claimed_by_other(item)
    raise _not_claimed(item)


def _snapshot(item: ReviewItem) -> dict[str, Any]:
    return {
        "state": item.state,
        "priority": item.priority,
        "assignedTo": item.assigned_to or None,
        "claimedUntil": _iso(item.claimed_until),
        "version": item.version,
    }


def _save(item: ReviewItem, changes: Mapping[str, Any]) -> ReviewItem:
    """Write ``changes`` with the OCC check (the row lock makes a mismatch a bug, never a race lost)."""
    expected = item.version
    changes = {**changes, "updated_at": timezone.now()}
    updated = ReviewItem.objects.filter(pk=item.pk, version=expected).update(**changes, version=F("version") + 1)
    if not updated:
        current = ReviewItem.objects.filter(pk=item.pk).values_list("version", flat=True).first()
        raise conflict_problem(
            slug="version-conflict",
            title="The item changed since you read it",
            detail=f"{item.urn} is at version {current}, not {expected}.",
            version=current,
        )
    for name, value in changes.items():
        setattr(item, name, value)
    item.version = expected + 1
    return item


def _apply(item: ReviewItem, action: str) -> None:
    """The FSM transition in memory (``claim``, ``escalate``, ``resolve``), or a 409."""
    method = getattr(item, action)
    if not can_proceed(method):
        raise _illegal_transition(item, action)
    method()


# --- creation (system) -----------------------------------------------------------------------------------


def _urns_of(values: Iterable[Any], kind: str) -> list[str]:
    urns = []
    for value in values or ():
        try:
            parse_urn(value, kind)
        except InvalidUrn:
            continue
        if value not in urns:
            urns.append(value)
    return urns


def _attempted_hotels(raw: Any) -> list[dict[str, Any]]:
    """``[{hotelUrn, reason, providerError?}]`` as the failing domain reported them (strings only)."""
    hotels = []
    for entry in (raw if isinstance(raw, list) else [])[:ATTEMPTED_HOTELS_MAX]:
        if not isinstance(entry, dict):
            continue
        hotel = {"hotelUrn": entry.get("hotelUrn"), "reason": str(entry.get("reason") or "")}
        if entry.get("providerError"):
            hotel["providerError"] = str(entry["providerError"])
        hotels.append(hotel)
    return hotels


def review_item_open(
    *,
    airline: str,
    source_event: str,
    source_event_urn: str,
    case_urn: str,
    category: str,
    reason: str = "",
    attempted_hotels: Any = (),
    group_urns: Iterable[str] = (),
    subcase_urns: Iterable[str] = (),
    demand_urn: str = "",
    allocation_urn: str = "",
    saga_urn: str = "",
    reservation_urns: Iterable[str] = (),
    failure: Mapping[str, Any] | None = None,
    correlation_urn: str = "",
) -> ReviewItem | None:
    """Create the item for one failure occurrence, as the system. Idempotent by ``source_event_urn``: the
    same event delivered again answers the existing item. ``None`` when the case is not the airline's
    (nothing to review; logged)."""
    existing = ReviewItem.objects.filter(source_event_urn=source_event_urn).select_related("case").first()
    if existing is not None:
        return existing
    try:
        case_id = parse_urn(case_urn, "case").id
    except InvalidUrn:
        case_id = None
    case = Case.objects.filter(pk=case_id, airline=airline).first() if case_id else None
    if case is None:
        logger.warning(
            "review_item_case_missing", source_event=source_event, event_urn=source_event_urn, case_urn=case_urn
        )
        return None
    subcase_urns = _urns_of(subcase_urns, "subcase")
    group_urns = _urns_of(group_urns, "group")
    members = SubCase.objects.filter(case=case, id__in=[parse_urn(u).id for u in subcase_urns])
    group_ids = {parse_urn(u).id for u in group_urns}
    group_ids |= set(members.exclude(group=None).values_list("group_id", flat=True))
    groups = list(PassengerGroup.objects.filter(case=case, id__in=group_ids).order_by("label"))
    priority = CATEGORY_PRIORITY[category]
    now = timezone.now()
    try:
        with transaction.atomic():
            item = ReviewItem.objects.create(
                airline=airline,
                case=case,
                category=category,
                priority=priority,
                reason=str(reason or "")[:REASON_MAX_LENGTH],
                attempted_hotels=_attempted_hotels(attempted_hotels),
                affected_groups=[group.label for group in groups],
                affected_group_urns=[group.urn for group in groups],
                affected_subcase_urns=subcase_urns,
                failure=dict(failure or {}),
                sla_due_at=now + dt.timedelta(minutes=sla_minutes(airline=airline, priority=priority)),
                created_at=now,
                updated_at=now,
                demand_urn=demand_urn or "",
                allocation_urn=allocation_urn or "",
                saga_urn=saga_urn or "",
                reservation_urns=list(reservation_urns),
                source_event=source_event,
                source_event_urn=source_event_urn,
            )
            audit.record(
                airline=airline,
                actor=SYSTEM_REVIEW_ACTOR,
                action="review.created",
                entity_urn=item.urn,
                case_urn=case.urn,
                reason=item.reason,
                after={
                    "category": item.category,
                    "priority": item.priority,
                    "slaDueAt": _iso(item.sla_due_at),
                    "sourceEvent": source_event,
                    "sourceEventUrn": source_event_urn,
                    "subCaseUrns": subcase_urns,
                },
                correlation_urn=correlation_urn or None,
            )
            events.publish_review_event(events.REVIEW_CREATED, item)
    except IntegrityError:
        # A concurrent delivery of the same event won the unique constraint: answer its item.
        return ReviewItem.objects.select_related("case").get(source_event_urn=source_event_urn)
    return item


def _saga_category(payload: Mapping[str, Any]) -> str:
    """A failed compensation run: the run's own category when it is one of spec 001's; otherwise (the
    provider was unavailable, an internal error) by the step that failed: the PSP's steps are payments."""
    category = payload.get("category")
    if category in (ReviewCategory.PAYMENT_FAILED, ReviewCategory.BOOKING_FAILED):
        return category
    step = str(payload.get("failedStep") or "")
    if step.startswith(("meal.", "cash.")):
        return ReviewCategory.PAYMENT_FAILED
    return ReviewCategory.BOOKING_FAILED


def _reservations_of(*, airline: str, case_urn: str, allocation_urn: str) -> list[str]:
    if not allocation_urn:
        return []
    try:
        case_id = parse_urn(case_urn, "case").id
    except InvalidUrn:
        return []
    rows = Reservation.objects.filter(airline=airline, case_id=case_id, allocation_urn=allocation_urn)
    return [reservation.urn for reservation in rows.order_by("created_at", "id")]


def review_item_from_event(
    *, event: str, event_urn: str, airline: str, payload: Mapping[str, Any], correlation_urn: str = ""
) -> ReviewItem | None:
    """The outbox consumers' one entry: map a failure event onto :func:`review_item_open`."""
    case_urn = str(payload.get("caseUrn") or "")
    common = {
        "airline": airline,
        "source_event": event,
        "source_event_urn": event_urn,
        "case_urn": case_urn,
        "correlation_urn": correlation_urn,
    }
    if event == SAGA_FAILED:
        facts = ("category", "failedStep", "compensationFailed", "outcomeUnknown", "attempts")
        failure = {key: payload.get(key) for key in facts}
        return review_item_open(
            **common,
            category=_saga_category(payload),
            reason=f"compensation saga failed at {payload.get('failedStep') or 'a step'}: {payload.get('category')}",
            subcase_urns=[payload.get("subCaseUrn")],
            saga_urn=str(payload.get("sagaUrn") or ""),
            failure=failure,
        )
    if event == ALLOCATION_FAILED:
        category = payload.get("category")
        return review_item_open(
            **common,
            category=category if category in ALLOCATION_CATEGORIES else ReviewCategory.ALLOCATION_FAILED,
            reason=str(payload.get("reason") or ""),
            group_urns=[payload.get("groupUrn")],
            subcase_urns=payload.get("subCaseUrns") or [],
            demand_urn=str(payload.get("demandUrn") or ""),
            allocation_urn=str(payload.get("allocationUrn") or ""),
        )
    if event == BOOKING_FAILED:
        category = payload.get("category")
        allocation_urn = str(payload.get("allocationUrn") or "")
        return review_item_open(
            **common,
            category=category if category in BOOKING_CATEGORIES else ReviewCategory.BOOKING_FAILED,
            reason=str(payload.get("reason") or ""),
            attempted_hotels=payload.get("attemptedHotels") or [],
            group_urns=[payload.get("groupUrn")],
            subcase_urns=payload.get("subCaseUrns") or [],
            allocation_urn=allocation_urn,
            reservation_urns=_reservations_of(airline=airline, case_urn=case_urn, allocation_urn=allocation_urn),
        )
    raise ValueError(f"review items are not made from {event!r}")


# --- operator commands -----------------------------------------------------------------------------------


def review_item_claim(*, principal: Principal, review_urn: str) -> ReviewItem:
    """Claim the item for ``claim_lease()``. A live claim by someone else is a 409 naming ``assignedTo``;
    the claimer claiming again extends the lease; a lapsed claim may be taken by anyone."""
    with transaction.atomic():
        now = timezone.now()
        item = _lock_item(principal=principal, review_urn=review_urn)
        holder = _live_holder(item, now)
        if item.state != ReviewState.RESOLVED and holder and holder != principal.operator_urn:
            raise _claimed_by_other(item)
        before = _snapshot(item)
        _apply(item, "claim")
        item = _save(
            item, {"state": item.state, "assigned_to": principal.operator_urn, "claimed_until": now + claim_lease()}
        )
        audit.record(
            principal=principal,
            action="review.claimed",
            entity_urn=item.urn,
            case_urn=item.case.urn,
            before=before,
            after=_snapshot(item),
        )
        events.publish_review_event(events.REVIEW_CLAIMED, item)
    return item


def review_item_assign(*, principal: Principal, review_urn: str, operator_urn: str, reason: str) -> ReviewItem:
    """A supervisor hands the item to an operator of the airline: a claim on their behalf (a fresh lease),
    replacing anyone's claim. The operator must have an active profile in the airline with a role that
    may act on review items (OPS_SUPERVISOR+), else a 422 naming ``operatorUrn``."""
    with transaction.atomic():
        now = timezone.now()
        item = _lock_item(principal=principal, review_urn=review_urn)
        if item.state == ReviewState.RESOLVED:
            raise _illegal_transition(item, "assign")
        operator = operator_selectors.operators_active(principal=principal).filter(operator_urn=operator_urn).first()
        if operator is None or not role_satisfies(Role(operator.role), Role.OPS_SUPERVISOR):
            raise validation_problem(
                [
                    {
                        "field": "operatorUrn",
                        "message": "not an active OPS_SUPERVISOR or ADMIN of your airline"
                        if operator is None
                        else f"a {operator.role} cannot act on review items (OPS_SUPERVISOR or ADMIN)",
                    }
                ],
                status=422,
            )
        before = _snapshot(item)
        _apply(item, "claim")
        item = _save(item, {"state": item.state, "assigned_to": operator_urn, "claimed_until": now + claim_lease()})
        audit.record(
            principal=principal,
            action="review.assigned",
            entity_urn=item.urn,
            case_urn=item.case.urn,
            reason=reason,
            before=before,
            after=_snapshot(item),
        )
        events.publish_review_event(events.REVIEW_CLAIMED, item)
    return item


def review_item_resolve(*, principal: Principal, review_urn: str, resolution: str, reason: str) -> ReviewItem:
    """Close the item (only its claimer; anyone else is a 409). The affected sub-cases still in
    MANUAL_REVIEW go back into the normal flow as :data:`RESOLUTION_SUBCASE_TRANSITION` says, through the
    cases services (OCC, entity locks, audit, events); a refusal there rolls the whole resolve back."""
    if resolution not in ReviewResolution.values:
        raise validation_problem([{"field": "resolution", "message": f"must be one of {', '.join(ReviewResolution)}"}])
    with transaction.atomic():
        now = timezone.now()
        item = _lock_item(principal=principal, review_urn=review_urn)
        if item.state == ReviewState.RESOLVED:
            raise _illegal_transition(item, "resolve")
        _require_claimer(item, principal, now)
        before = _snapshot(item)
        moved = _subcases_back_to_flow(principal=principal, item=item, resolution=resolution, reason=reason)
        _apply(item, "resolve")
        item = _save(
            item,
            {
                "state": item.state,
                "claimed_until": None,
                "resolution": resolution,
                "resolution_reason": reason,
                "resolved_at": now,
                "resolved_by": principal.operator_urn,
            },
        )
        audit.record(
            principal=principal,
            action="review.resolved",
            entity_urn=item.urn,
            case_urn=item.case.urn,
            reason=reason,
            before=before,
            after={**_snapshot(item), "resolution": resolution, "subCasesMoved": moved},
        )
        events.publish_review_event(events.REVIEW_RESOLVED, item)
    return item


def _subcases_back_to_flow(*, principal: Principal, item: ReviewItem, resolution: str, reason: str) -> dict[str, str]:
    transition = RESOLUTION_SUBCASE_TRANSITION[resolution]
    moved: dict[str, str] = {}
    if transition is None:
        return moved
    for urn in item.affected_subcase_urns:
        sub_case = case_selectors.subcase_get(principal=principal, sub_case_urn=urn)
        if sub_case.case_id != item.case_id or sub_case.status != SubCaseStatus.MANUAL_REVIEW:
            continue  # already moved on (another item, an operator): leave it where it is
        sub_case = case_services.subcase_transition(
            principal=principal,
            sub_case=sub_case,
            transition=transition,
            expected_version=sub_case.version,
            reason=f"{item.urn} resolved {resolution}: {reason}"[:REASON_MAX_LENGTH],
        )
        moved[urn] = str(sub_case.status)
    return moved


def review_item_escalate(*, principal: Principal, review_urn: str, reason: str) -> ReviewItem:
    """Raise the priority one level (LOW → MEDIUM → HIGH; HIGH stays HIGH), state ESCALATED, restart the
    SLA clock at the new priority's SLA (so a later breach is a new breach), and page the on-call. A claim is
    kept: the claimer may go on working the item."""
    with transaction.atomic():
        item = _lock_item(principal=principal, review_urn=review_urn)
        expected = item.version
        before, page = _escalation_of(item, now=timezone.now(), trigger=PageTrigger.MANUAL, sla_cache={})
        updated = ReviewItem.objects.filter(pk=item.pk, version=expected).update(**_escalated_columns(item))
        if not updated:  # the row lock makes this a bug, never a race lost
            raise conflict_problem(
                slug="version-conflict", title="The item changed since you read it", detail=item.urn, version=None
            )
        page.save(force_insert=True)
        _escalation_recorded(item, page, before, principal=principal, action="review.escalated", reason=reason)
    return item


def _escalation_of(
    item: ReviewItem, *, now: dt.datetime, trigger: str, sla_cache: dict[tuple[str, str], int]
) -> tuple[dict[str, Any], ReviewPage]:
    """The escalation of a locked item, in memory: the transition, the priority one level up, the SLA clock
    restarted at the new priority's SLA, the version, and its page (not saved). Returns the state before."""
    before = {**_snapshot(item), "slaDueAt": _iso(item.sla_due_at)}
    due_before = item.sla_due_at
    _apply(item, "escalate")
    priority = ESCALATED_PRIORITY[ReviewPriority(item.priority)]
    if (item.airline, priority) not in sla_cache:
        sla_cache[item.airline, priority] = sla_minutes(airline=item.airline, priority=priority)
    item.priority = priority
    item.escalations += 1
    item.sla_due_at = now + dt.timedelta(minutes=sla_cache[item.airline, priority])
    item.version += 1
    item.updated_at = now
    page = ReviewPage(
        id=new_id(),
        airline=item.airline,
        item=item,
        item_version=item.version,
        trigger=trigger,
        sla_due_at_before=due_before,
        priority_before=before["priority"],
        priority_after=priority,
    )
    return before, page


def _escalated_columns(item: ReviewItem) -> dict[str, Any]:
    return {
        "state": item.state,
        "priority": item.priority,
        "escalations": item.escalations,
        "sla_due_at": item.sla_due_at,
        "version": item.version,
        "updated_at": item.updated_at,
    }


def _escalation_recorded(
    item: ReviewItem, page: ReviewPage, before: dict[str, Any], *, principal: Principal, action: str, reason: str
) -> None:
    """Audit and ``review:escalated``; the event is also the page's durable hand-off to the delivery task
    (its consumer finds the page by the item and ``version``)."""
    audit.record(
        principal=principal,
        action=action,
        entity_urn=item.urn,
        case_urn=item.case.urn,
        reason=reason,
        before=before,
        after={**_snapshot(item), "slaDueAt": _iso(item.sla_due_at), "pageId": str(page.id)},
    )
    events.publish_review_event(events.REVIEW_ESCALATED, item)


# --- the SLA sweep and the on-call pages -------------------------------------------------------------------


def sla_principal(airline: str) -> Principal:
    """The sweep acts as this principal (audit actor ``urn:nexa:system:sla``)."""
    return Principal(airline=airline, role=Role.ADMIN, operator_urn=SYSTEM_SLA_ACTOR, subject="system:sla")


def breached_items(*, now: dt.datetime):
    """Unresolved items whose SLA due time has passed, most overdue first: the partial index
    ``review_item_sla_open_idx`` answers it (its condition is the query's ``NOT (state = 'RESOLVED')``)."""
    return ReviewItem.objects.filter(sla_due_at__lte=now).exclude(state=ReviewState.RESOLVED).order_by("sla_due_at")


def review_sla_sweep(*, now: dt.datetime | None = None, limit: int = SWEEP_BATCH) -> list[str]:
    """Escalate every unresolved item whose SLA is breached, once per breach, and page the on-call.

    One transaction per batch: the breached items are claimed with ``FOR UPDATE SKIP LOCKED`` (two sweeps
    never take the same item; an operator's write in progress is taken next time) through the partial index
    on ``sla_due_at`` of unresolved items, so resolved items cost nothing. Escalating moves ``sla_due_at``
    forward, which is what makes a breach page exactly once. The items are written with one UPDATE per
    (new priority, airline) and the pages with one INSERT; each item still gets its audit row and event.
    Returns the escalated items' URNs."""
    now = now or timezone.now()
    sla_cache: dict[tuple[str, str], int] = {}  # one settings read per airline and priority per sweep
    with transaction.atomic():
        breached = list(
            breached_items(now=now).select_for_update(skip_locked=True, of=("self",)).select_related("case")[:limit]
        )
        pages, batches = [], {}
        for item in breached:
            reason = f"{item.priority} SLA breached at {_iso(item.sla_due_at)}"
            before, page = _escalation_of(item, now=now, trigger=PageTrigger.SLA_BREACH, sla_cache=sla_cache)
            pages.append(page)
            batches.setdefault((item.priority, item.sla_due_at), []).append(item.pk)
            _escalation_recorded(
                item, page, before, principal=sla_principal(item.airline), action="review.sla_breached", reason=reason
            )
        for (priority, due), ids in batches.items():
            ReviewItem.objects.filter(pk__in=ids).update(
                state=ReviewState.ESCALATED,
                priority=priority,
                sla_due_at=due,
                escalations=F("escalations") + 1,
                version=F("version") + 1,
                updated_at=now,
            )
        ReviewPage.objects.bulk_create(pages)
    return [item.urn for item in breached]


def page_max_attempts() -> int:
    return int(getattr(settings, "NEXA_REVIEW_PAGE_MAX_ATTEMPTS", PAGE_MAX_ATTEMPTS))


def page_backoff_seconds(attempt: int) -> float:
    """2, 4, 8 … s after the n-th failed attempt, at most 5 minutes."""
    return float(min(PAGE_BACKOFF_MAX_SECONDS, 2**attempt))


def page_body(page: ReviewPage) -> dict[str, Any]:
    item = page.item
    return {
        "type": "review.sla_breached" if page.trigger == PageTrigger.SLA_BREACH else "review.escalated",
        "pageId": str(page.id),
        "airline": page.airline,
        "reviewUrn": item.urn,
        "caseUrn": item.case.urn,
        "category": item.category,
        "priority": page.priority_after,
        "previousPriority": page.priority_before,
        "slaDueAt": _iso(page.sla_due_at_before),
        "state": item.state,
        "assignedTo": item.assigned_to or None,
        "escalations": item.escalations,
        "link": f"/v1/manual-review/{item.urn}",
    }


def review_page_deliver(*, page_id: str) -> float | None:
    """One delivery attempt of a page: POST the signed body to the airline's alerting webhook and log it.
    Returns the seconds to wait before the next attempt, or ``None`` when the page is settled (DELIVERED,
    FAILED after ``page_max_attempts()``, SKIPPED when the airline has no webhook, or already settled).

    The page row stays locked during the call (bounded by ``PAGE_TIMEOUT_SECONDS``), so two deliveries of the
    same page never run at once; a receiver may still see a retry of an attempt whose answer was lost, and
    dedupes on ``pageId``."""
    with transaction.atomic():
        page = (
            ReviewPage.objects.select_for_update(of=("self",)).select_related("item__case").filter(pk=page_id).first()
        )
        if page is None or page.status != PageStatus.PENDING:
            return None
        tenant = TenantSettings.objects.filter(airline=page.airline).first()
        url = tenant.alert_webhook_url if tenant else ""
        at = timezone.now()
        if not url:
            page.status = PageStatus.SKIPPED
            page.log = [*page.log, {"at": _iso(at), "url": "", "status": None, "error": "no alerting webhook"}]
            page.save(update_fields=["status", "log"])
            logger.warning("review_page_skipped", page_id=str(page.id), airline=page.airline)
            return None
        body = json.dumps(page_body(page), separators=(",", ":"), sort_keys=True).encode("utf-8")
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            paging.TIMESTAMP_HEADER: str(timestamp),
            paging.SIGNATURE_HEADER: paging.sign(secret=tenant.alert_webhook_secret, timestamp=timestamp, body=body),
            "X-Nexa-Page-Id": str(page.id),
        }
        started = time.monotonic()
        status, error = None, ""
        try:
            response = httpx.post(url, content=body, headers=headers, timeout=PAGE_TIMEOUT_SECONDS)
            status = response.status_code
            if not 200 <= status < 300:
                error = response.text[:200]
        except httpx.HTTPError as failure:
            error = f"{type(failure).__name__}: {failure}"[:300]
        attempt = {"at": _iso(at), "url": url, "status": status, "error": error, "ms": _elapsed_ms(started)}
        page.attempts += 1
        page.log = [*page.log, attempt]
        wait = None
        if status is not None and 200 <= status < 300:
            page.status, page.delivered_at = PageStatus.DELIVERED, timezone.now()
        elif page.attempts >= page_max_attempts():
            page.status = PageStatus.FAILED
        else:
            wait = page_backoff_seconds(page.attempts)
        page.save(update_fields=["status", "attempts", "log", "delivered_at"])
        log = logger.warning if page.status == PageStatus.FAILED else logger.info
        log(
            "review_page_attempt", page_id=str(page.id), airline=page.airline, attempt=page.attempts,
            http_status=status, error=error or None, page_status=page.status,
        )  # fmt: skip
    return wait


def _elapsed_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
