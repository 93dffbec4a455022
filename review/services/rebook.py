"""The actions that book (spec 001 § Operator workflow step 3, docs/review.md § Rebook and § Override).

* :func:`review_item_rebook` — the item's passengers still in MANUAL_REVIEW are planned at one hotel by the
  allocation engine (its contracts or its vendor offers, compliant with the case's policy, relaxations
  included) and booked there by the room sagas book-rooms starts (:mod:`cases.services.rebook`).
* :func:`review_item_override` — a manual booking the operator confirmed with the front desk: manual
  reservations of that offer (no vendor call); the passengers are BOOKED and NOTIFIED at once.

Both act only on an unresolved item, only for its claimer (a live claim by someone else: 409 naming
``assignedTo``); an item nobody holds (OPEN, ESCALATED, a lapsed claim) is claimed for the actor in the same
transaction. Each appends ``{action, params, reason, by, at, agentActionUrn, result}`` to the item's
``actions``, is audited (``review.rebooked`` / ``review.overridden``) and publishes ``review:rebooked`` /
``review:overridden``. Neither resolves the item: the operator resolves it REBOOKED / OVERRIDDEN afterwards.

The provider calls (hotel search, offer lookup) run before the transaction; inside it the item is locked and
checked again, so a claim taken meanwhile still wins.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import transaction
from django.utils import timezone

from audit import services as audit
from cases import services as case_services
from cases.models import SubCase
from nexa.platform.auth import Principal
from nexa.platform.urns import InvalidUrn, parse_urn
from review import events, selectors
from review.models import ReviewItem
from review.services._actions import _action_entry, _actor_holds, _may_act, _record_action
from review.services._common import (
    REASON_MAX_LENGTH,
    _lock_item,
    _snapshot,
)

REBOOK, OVERRIDE = "rebook", "override"


def _affected_subcase_urns(item: ReviewItem) -> list[str]:
    """The item's passengers: its sub-cases, else (an item that named only groups) its groups' members."""
    if item.affected_subcase_urns:
        return list(item.affected_subcase_urns)
    group_ids = []
    for urn in item.affected_group_urns:
        try:
            group_ids.append(parse_urn(urn, "group").id)
        except InvalidUrn:
            continue
    members = SubCase.objects.filter(case_id=item.case_id, group_id__in=group_ids).order_by("created_at", "id")
    return [sub_case.urn for sub_case in members]


def _act(
    *,
    principal: Principal,
    review_urn: str,
    action: str,
    params: dict[str, Any],
    reason: str,
    agent_action_urn: str | None,
    perform: Callable[[], dict[str, Any]],
    audit_action: str,
    event: str,
) -> ReviewItem:
    """Lock the item, check the actor (claim it when nobody holds it), ``perform`` the booking, record the
    action on the item, audit and publish — one transaction."""
    with transaction.atomic():
        now = timezone.now()
        item = _actor_holds(_lock_item(principal=principal, review_urn=review_urn), principal, now, action=action)
        before = _snapshot(item)
        result = perform()
        entry = _action_entry(
            action=action,
            params=params,
            reason=reason,
            principal=principal,
            now=now,
            agent_action_urn=agent_action_urn,
            result=result,
        )
        item = _record_action(item, entry, agent_action_urn=agent_action_urn)
        audit.record(
            principal=principal,
            action=audit_action,
            entity_urn=item.urn,
            case_urn=item.case.urn,
            reason=reason,
            before=before,
            after={**_snapshot(item), "action": action, "params": params, "agentActionUrn": agent_action_urn,
                   "result": result},
        )  # fmt: skip
        events.publish_review_event(event, item)
    return item


def _prechecked(*, principal: Principal, review_urn: str, action: str) -> ReviewItem:
    """404 across tenants, 409 for a resolved item or someone else's live claim, before any provider call."""
    item = selectors.review_item_get(principal=principal, review_urn=review_urn)
    _may_act(item, principal, timezone.now(), action=action)
    return item


def review_item_rebook(
    *, principal: Principal, review_urn: str, hotel_urn: str, reason: str, agent_action_urn: str | None = None
) -> ReviewItem:
    """Book the item's passengers still in MANUAL_REVIEW at ``hotel_urn`` through the booking saga: a new
    allocation at that hotel (the engine's room rules, the case's policy with its relaxations), the passengers
    MANUAL_REVIEW → ALLOCATED → BOOKING and one room saga per group. The actions entry's ``result`` holds
    ``allocationUrn``, ``sagaUrns``, ``runs`` and ``subCaseUrns``. 422 when the hotel cannot take them (why is
    named; nothing written), 409 for a resolved item, someone else's claim or nobody left in review."""
    reason = reason[:REASON_MAX_LENGTH]
    item = _prechecked(principal=principal, review_urn=review_urn, action=REBOOK)
    plan = case_services.subcases_plan_at_hotel(
        principal=principal,
        case_urn=item.case.urn,
        sub_case_urns=_affected_subcase_urns(item),
        hotel_urn=hotel_urn,
        demand_urn=item.demand_urn,
        allocation_urn=item.allocation_urn,
    )

    def perform() -> dict[str, Any]:
        answer = case_services.subcases_book_at_hotel(
            principal=principal, hotel_plan=plan, reason=f"{item.urn} rebook: {reason}"[:REASON_MAX_LENGTH]
        )
        return {
            "allocationUrn": answer["allocationUrn"],
            "hotelUrn": plan.hotel_urn,
            "sagaUrns": [run["sagaUrn"] for run in answer["runs"]],
            "runs": answer["runs"],
            "subCaseUrns": [urn for run in answer["runs"] for urn in run["subCaseUrns"]],
        }

    return _act(
        principal=principal,
        review_urn=review_urn,
        action=REBOOK,
        params={"hotelUrn": hotel_urn},
        reason=reason,
        agent_action_urn=agent_action_urn,
        perform=perform,
        audit_action="review.rebooked",
        event=events.REVIEW_REBOOKED,
    )


def review_item_override(
    *,
    principal: Principal,
    review_urn: str,
    hotel_urn: str,
    provider_offer_id: str,
    reason: str,
    agent_action_urn: str | None = None,
) -> ReviewItem:
    """Record the booking the operator confirmed by phone: manual reservations of ``provider_offer_id`` at
    ``hotel_urn`` (no vendor call; one per PNR party of each group) for the item's passengers still in
    MANUAL_REVIEW, who become BOOKED, get their voucher and become NOTIFIED. The actions entry's ``result``
    holds ``reservationUrns`` and ``subCaseUrns``. 422 for an unknown hotel or an offer that is not that
    hotel's; 409 as for rebook, or a passenger who already has a room one of those nights."""
    reason = reason[:REASON_MAX_LENGTH]
    item = _prechecked(principal=principal, review_urn=review_urn, action=OVERRIDE)
    offer = case_services.subcases_manual_offer_find(
        principal=principal,
        case_urn=item.case.urn,
        sub_case_urns=_affected_subcase_urns(item),
        hotel_urn=hotel_urn,
        provider_offer_id=provider_offer_id,
        demand_urn=item.demand_urn,
        allocation_urn=item.allocation_urn,
    )

    def perform() -> dict[str, Any]:
        reservations = case_services.subcases_book_manually(
            principal=principal, offer=offer, reason=f"{item.urn} override: {reason}"[:REASON_MAX_LENGTH]
        )
        return {
            "hotelUrn": offer.hotel_urn,
            "reservationUrns": [reservation.urn for reservation in reservations],
            "subCaseUrns": [u for reservation in reservations for room in reservation.rooms for u in room["occupants"]],
            "nightlyRate": {"amount": f"{offer.nightly_rate:.2f}", "currency": offer.currency},
            "checkIn": offer.check_in.isoformat(),
            "nights": offer.nights,
        }

    return _act(
        principal=principal,
        review_urn=review_urn,
        action=OVERRIDE,
        params={"hotelUrn": hotel_urn, "providerOfferId": provider_offer_id},
        reason=reason,
        agent_action_urn=agent_action_urn,
        perform=perform,
        audit_action="review.overridden",
        event=events.REVIEW_OVERRIDDEN,
    )
