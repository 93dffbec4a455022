"""The item's lifecycle: created by the system from a failure event, claimed or assigned, resolved, escalated."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

import structlog
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit import services as audit
from booking.models import Reservation
from cases import selectors as case_selectors
from cases import services as case_services
from cases.models import Case, PassengerGroup, SagaStep, SubCase, SubCaseStatus
from nexa.platform.auth import Principal
from nexa.platform.problems import conflict_problem, validation_problem
from nexa.platform.roles import Role, role_satisfies
from nexa.platform.urns import InvalidUrn, new_id, parse_urn
from operators import selectors as operator_selectors
from review import events
from review.models import (
    CATEGORY_PRIORITY,
    ESCALATED_PRIORITY,
    PageTrigger,
    ReviewCategory,
    ReviewItem,
    ReviewPage,
    ReviewPriority,
    ReviewResolution,
    ReviewState,
)
from review.services._common import (
    ALLOCATION_CATEGORIES,
    ALLOCATION_FAILED,
    ATTEMPTED_HOTELS_MAX,
    BOOKING_CATEGORIES,
    BOOKING_FAILED,
    REASON_MAX_LENGTH,
    RESOLUTION_SUBCASE_TRANSITION,
    SAGA_FAILED,
    SYSTEM_REVIEW_ACTOR,
    _apply,
    _claimed_by_other,
    _illegal_transition,
    _iso,
    _live_holder,
    _lock_item,
    _require_claimer,
    _save,
    _snapshot,
    claim_lease,
    sla_minutes,
)

logger = structlog.get_logger(__name__)

HOTEL_HOLD_STEP = (
    "hotel.hold"  # the room saga's first step (cases/saga/hotel.py), whose failure report is booking:failed
)


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


def _reported_as_booking_failed(*, airline: str, saga_urn: str) -> bool:
    """A run with a hotel hold (book-rooms' room saga, or a compensation's hotel item) reports its failure as
    ``booking:failed`` as well as ``saga:failed`` (the hold step's ``run_failed``): that event, with the hotels
    tried and the category (BOOKING_FAILED, PARTIAL_FULFILLMENT, PAYMENT_FAILED), makes the item, and the run's
    ``saga:failed`` makes none — one item per failure occurrence."""
    try:
        run_id = parse_urn(saga_urn, "saga").id
    except InvalidUrn:
        return False
    return SagaStep.objects.filter(run_id=run_id, airline=airline, name=HOTEL_HOLD_STEP).exists()


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
        if _reported_as_booking_failed(airline=airline, saga_urn=str(payload.get("sagaUrn") or "")):
            logger.info("review_item_saga_failed_covered", event_urn=event_urn, saga_urn=payload.get("sagaUrn"))
            return None
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
