"""Booking passengers out of manual review at a hotel an operator chose (issue 13; spec 001 § Operator
workflow step 3, docs/review.md § Rebook and § Override). ``review`` calls these from its ``rebook`` and
``override`` actions; each comes in two halves so the provider calls (hotel search, offer lookup) run before
the caller's transaction and the writes inside it:

* **Rebook** — :func:`subcases_plan_at_hotel` gathers exactly what allocation gathers (the case's resolved
  policy per tier, with any case relaxation ``policies.selectors`` applies; the airline's contract allotments;
  the vendors' offers from the hotel search), keeps only that hotel's inventory and runs the allocation engine
  over the passengers' groups, so every room rule still holds (unrelated passengers never share, families
  together, minors with a guardian, PRM passengers in accessible rooms). Anything the hotel cannot take is a
  422 naming why; nothing of the case is written. :func:`subcases_book_at_hotel` then stores that plan as a
  new allocation of the passengers' demand wave, moves them MANUAL_REVIEW → ALLOCATED (FSM ``reallocate``,
  OCC) and starts its room sagas exactly as book-rooms does (:func:`cases.services.booking.case_book_rooms`).
* **Override** — :func:`subcases_manual_offer_find` finds the offer the operator confirmed with the front desk
  (one of the case's stored allocation offers, else found again by the vendors), and
  :func:`subcases_book_manually` records it as manual reservations (no vendor call), one per PNR party of each
  group, through :func:`cases.services.booking.reservation_manual_book`: BOOKED, vouchers sent, NOTIFIED.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction

from audit import services as audit
from booking import selectors as booking_selectors
from booking import services as booking_services
from booking.models import Hotel, Reservation
from cases.models import Allocation, Case, DemandWave, DemandWaveMember, SubCase
from cases.services._common import _lock_case, _subcases_in_review, _version_conflict
from cases.services.allocation import _gather, _passenger, _plan_json, _transition_all_locked
from cases.services.booking import case_book_rooms, reservation_manual_book
from nexa.platform.auth import Principal
from nexa.platform.problems import Problem, conflict_problem, downstream_unavailable_problem, validation_problem
from nexa.platform.urns import InvalidUrn, parse_urn

CONFIRMATION_MAX = 80  # Reservation.confirmation_number


@dataclass(frozen=True)
class HotelPlan:
    """What :func:`subcases_plan_at_hotel` found: the engine's plan at one hotel for the passengers, and
    what :func:`subcases_book_at_hotel` needs to store it (the passengers' versions as read)."""

    case_id: uuid.UUID
    wave_id: uuid.UUID
    hotel_urn: str
    hotel_name: str
    versions: tuple[tuple[uuid.UUID, int], ...]
    groups: tuple[booking_selectors.Group, ...]
    plan: booking_selectors.Plan
    failures: tuple[dict[str, str], ...]


@dataclass(frozen=True)
class ManualOffer:
    """The offer an override books, the stay, and the passengers (one reservation per party)."""

    case_id: uuid.UUID
    hotel_id: uuid.UUID
    hotel_urn: str
    offer_id: str
    nightly_rate: Decimal
    currency: str
    check_in: dt.date
    nights: int
    parties: tuple[tuple[uuid.UUID, ...], ...]


# --- shared reads -------------------------------------------------------------------------------------------


def _unprocessable(field: str, message: str) -> Problem:
    return validation_problem([{"field": field, "message": message}], status=422)


def _hotel(*, principal: Principal, case: Case, hotel_urn: str, same_airport: bool) -> Hotel:
    """The airline's catalog hotel, else a 422 (an unknown hotel, or another airline's, cannot take anyone)."""
    try:
        hotel_id = parse_urn(hotel_urn, "hotel").id
    except InvalidUrn as error:
        raise validation_problem([{"field": "hotelUrn", "message": error.message}]) from None
    hotel = Hotel.objects.filter(pk=hotel_id, airline=principal.airline).first()
    if hotel is None:
        raise _unprocessable("hotelUrn", "is not a hotel of the airline's catalog")
    if same_airport and hotel.airport != case.airport:
        raise _unprocessable("hotelUrn", f"{hotel.name} is a hotel at {hotel.airport}; the case is at {case.airport}")
    return hotel


def _in_review(*, principal: Principal, case: Case, sub_case_urns: list[str]) -> list[SubCase]:
    """The named passengers of the case still in MANUAL_REVIEW (manifest order); none left is a 409."""
    sub_cases = _subcases_in_review(principal=principal, case=case, sub_case_urns=sub_case_urns)
    if not sub_cases:
        raise conflict_problem(
            slug="nothing-to-book",
            title="No passenger of the item is in manual review",
            detail="Every affected passenger has left MANUAL_REVIEW (booked, cancelled or returned to the flow).",
        )
    return sub_cases


def _stay_wave(*, case: Case, sub_cases: list[SubCase], demand_urn: str, allocation_urn: str) -> DemandWave:
    """The demand wave whose stay (check-in, nights) the passengers are booked for: the item's demand, else
    its failed allocation's, else the latest wave the passengers were raised in. None: a 422."""
    wave = None
    for urn, kind in ((demand_urn, "demand"), (allocation_urn, "allocation")):
        if wave is not None or not urn:
            continue
        try:
            id_ = parse_urn(urn, kind).id
        except InvalidUrn:
            continue
        if kind == "demand":
            wave = DemandWave.objects.filter(pk=id_, case_id=case.pk).first()
        else:
            allocation = Allocation.objects.filter(pk=id_, case_id=case.pk).select_related("demand").first()
            wave = allocation.demand if allocation else None
    if wave is None:
        member = (
            DemandWaveMember.objects.filter(sub_case_id__in=[s.pk for s in sub_cases], wave__case_id=case.pk)
            .select_related("wave")
            .order_by("-wave__created_at")
            .first()
        )
        wave = member.wave if member else None
    if wave is None:
        raise _unprocessable(
            "hotelUrn", "the passengers were never in a demand wave, so their stay (check-in, nights) is unknown"
        )
    return wave


# --- rebook ---------------------------------------------------------------------------------------------------


def _groups(sub_cases: list[SubCase]) -> list[booking_selectors.Group]:
    by_group: dict[uuid.UUID, list[SubCase]] = {}
    loose = [s.urn for s in sub_cases if s.group_id is None]
    if loose:
        raise _unprocessable("hotelUrn", f"{', '.join(loose)} belong to no passenger group; group them first")
    for sub_case in sub_cases:
        by_group.setdefault(sub_case.group_id, []).append(sub_case)
    return [
        booking_selectors.Group(
            urn=members[0].group.urn, label=members[0].group.label, passengers=tuple(_passenger(s) for s in members)
        )
        for members in by_group.values()
    ]


def _hotel_facts(offers: list[booking_selectors.Offer]) -> str:
    best = min(offers, key=lambda o: (o.nightly_rate, o.distance_km))
    rooms = sum(o.rooms_available for o in offers)
    return (
        f"it offers {rooms} room(s), {best.distance_km:.1f} km from the airport, {best.stars}★, "
        f"from {best.nightly_rate:.2f} {best.currency} a night"
    )


def subcases_plan_at_hotel(
    *,
    principal: Principal,
    case_urn: str,
    sub_case_urns: list[str],
    hotel_urn: str,
    demand_urn: str = "",
    allocation_urn: str = "",
) -> HotelPlan:
    """Plan the named passengers still in MANUAL_REVIEW at ``hotel_urn`` (see the module docstring). Writes
    nothing but the hotel search's own record. 422: an unknown hotel or one of another airport, no stay known,
    no room offered there, or a group the hotel cannot take (no compliant or not enough rooms, no policy, a
    mixed-tier group …), each named; 409 ``nothing-to-book``; 503 when the policies or every vendor are down."""
    case = Case.objects.filter(pk=parse_urn(case_urn, "case").id, airline=principal.airline).first()
    if case is None:
        raise _unprocessable("caseUrn", "no such case")
    hotel = _hotel(principal=principal, case=case, hotel_urn=hotel_urn, same_airport=True)
    sub_cases = _in_review(principal=principal, case=case, sub_case_urns=sub_case_urns)
    wave = _stay_wave(case=case, sub_cases=sub_cases, demand_urn=demand_urn, allocation_urn=allocation_urn)
    groups = _groups(sub_cases)
    rules, offers, failures, unavailable = _gather(principal=principal, case=case, wave=wave, groups=groups)
    if "policies" in unavailable:
        raise downstream_unavailable_problem("policies", "The policies could not be read; try again in 30 seconds.")
    at_hotel = [offer for offer in offers if offer.hotel_urn == hotel.urn]
    stay = f"{wave.check_in.isoformat()}, {wave.nights} night(s)"
    if not at_hotel:
        if "booking" in unavailable:
            raise downstream_unavailable_problem("booking", "No hotel vendor answered; try again in 30 seconds.")
        raise _unprocessable("hotelUrn", f"{hotel.name} has no room on offer for {stay} (no contract, no vendor)")
    plan = booking_selectors.allocation_plan(
        booking_selectors.AllocationInput(groups=tuple(groups), rules_by_tier=rules, inventory=tuple(at_hotel))
    )
    if plan.unallocated:
        if "booking" in unavailable and any(
            u.category == booking_selectors.ALLOCATION_FAILED for u in plan.unallocated
        ):
            raise downstream_unavailable_problem(
                "booking", "A hotel vendor did not answer and the rest cannot take the group; try again in 30 seconds."
            )
        labels = {group.urn: group.label for group in groups}
        facts = _hotel_facts(at_hotel)
        raise validation_problem(
            [
                {"field": "hotelUrn", "message": f"{labels.get(u.group_urn, u.group_urn)}: {u.category}: {u.reason}"}
                for u in plan.unallocated
            ],
            status=422,
            detail=f"{hotel.name} cannot take these passengers for {stay} ({facts}): "
            + "; ".join(f"{labels.get(u.group_urn, u.group_urn)}: {u.reason}" for u in plan.unallocated),
        )
    return HotelPlan(
        case_id=case.pk,
        wave_id=wave.pk,
        hotel_urn=hotel.urn,
        hotel_name=hotel.name,
        versions=tuple((s.pk, s.version) for s in sub_cases),
        groups=tuple(groups),
        plan=plan,
        failures=tuple(failures),
    )


def subcases_book_at_hotel(*, principal: Principal, hotel_plan: HotelPlan, reason: str) -> dict[str, Any]:
    """Store ``hotel_plan`` as a new allocation of the passengers' wave, move them MANUAL_REVIEW → ALLOCATED
    and start its room sagas (book-rooms' answer: ``{allocationUrn, caseUrn, runs, partialFailures}``). One
    transaction (the caller's when there is one). A passenger that moved since the plan was made: 409."""
    with transaction.atomic():
        case = _lock_case(principal=principal, case_id=hotel_plan.case_id)
        wave = DemandWave.objects.get(pk=hotel_plan.wave_id, case_id=case.pk)
        expected = dict(hotel_plan.versions)
        sub_cases = list(SubCase.objects.filter(pk__in=expected, case_id=case.pk).order_by("created_at", "id"))
        for sub_case in sub_cases:
            if sub_case.version != expected[sub_case.pk]:
                raise _version_conflict(
                    sub_case_urn=sub_case.urn, current_version=sub_case.version, expected_version=expected[sub_case.pk]
                )
        if len(sub_cases) != len(expected):
            raise conflict_problem(slug="nothing-to-book", title="A passenger left the case", detail=case.urn)
        allocation = Allocation(airline=case.airline, case=case, demand=wave, created_by=principal.operator_urn)
        allocation.plan = _plan_json(
            allocation=allocation,
            wave=wave,
            case=case,
            groups=list(hotel_plan.groups),
            plan=hotel_plan.plan,
            failures=list(hotel_plan.failures),
        )
        allocation.save(force_insert=True)
        note = f"rebook at {hotel_plan.hotel_urn} ({allocation.urn}): {reason}"
        _transition_all_locked(
            principal=principal, case=case, sub_cases=sub_cases, transition="reallocate", reason=note
        )
        audit.record(
            principal=principal,
            action="allocation.created",
            entity_urn=allocation.urn,
            case_urn=case.urn,
            reason=reason,
            after={
                "demandUrn": wave.urn,
                "rebookAt": hotel_plan.hotel_urn,
                "groups": len(hotel_plan.groups),
                "assignments": len(allocation.plan["assignments"]),
                "rooms": sum(len(a["rooms"]) for a in allocation.plan["assignments"]),
                "allocated": len(sub_cases),
                "unallocated": 0,
            },
        )
        return case_book_rooms(principal=principal, case=case, allocation_id=allocation.pk)


# --- override -------------------------------------------------------------------------------------------------


def _stored_offer(*, case: Case, offer_id: str) -> dict[str, Any] | None:
    """The offer as one of the case's allocations stored it (primary or alternative): what the operator saw
    on the failed attempt, for the stay of that allocation."""
    for plan in Allocation.objects.filter(case_id=case.pk).order_by("-created_at").values_list("plan", flat=True):
        for assignment in (plan or {}).get("assignments") or []:
            for offer in [assignment, *(assignment.get("alternatives") or [])]:
                if offer.get("offerId") == offer_id:
                    return offer
    return None


def _parties(sub_cases: list[SubCase]) -> tuple[tuple[uuid.UUID, ...], ...]:
    """One reservation per PNR party of each group: a manual reservation is one room, and unrelated
    passengers never share one."""
    parties: dict[tuple[Any, str], list[uuid.UUID]] = {}
    for sub_case in sub_cases:
        parties.setdefault((sub_case.group_id, sub_case.pnr), []).append(sub_case.pk)
    return tuple(tuple(ids) for ids in parties.values())


def subcases_manual_offer_find(
    *,
    principal: Principal,
    case_urn: str,
    sub_case_urns: list[str],
    hotel_urn: str,
    provider_offer_id: str,
    demand_urn: str = "",
    allocation_urn: str = "",
) -> ManualOffer:
    """The offer an operator confirmed by phone, for the named passengers still in MANUAL_REVIEW: one the
    case's allocations stored (its rate), else the vendor's offer found again (a provider call; a contract
    offer is read from the contract). Writes nothing. 422: an unknown hotel, no stay known, an offer that is
    not known or is another hotel's; 409 ``nothing-to-book``."""
    case = Case.objects.filter(pk=parse_urn(case_urn, "case").id, airline=principal.airline).first()
    if case is None:
        raise _unprocessable("caseUrn", "no such case")
    hotel = _hotel(principal=principal, case=case, hotel_urn=hotel_urn, same_airport=False)
    sub_cases = _in_review(principal=principal, case=case, sub_case_urns=sub_case_urns)
    wave = _stay_wave(case=case, sub_cases=sub_cases, demand_urn=demand_urn, allocation_urn=allocation_urn)
    offer = _stored_offer(case=case, offer_id=provider_offer_id)
    if offer is None:
        try:
            offer = booking_services.hotel_offer_by_id(
                airline=principal.airline,
                airport=hotel.airport,
                offer_id=provider_offer_id,
                check_in=wave.check_in,
                nights=wave.nights,
            )
        except InvalidUrn:
            offer = None
    if offer is None:
        stay = f"{wave.check_in.isoformat()}, {wave.nights} night(s)"
        raise _unprocessable("providerOfferId", f"is not an offer known for {hotel.name} ({stay})")
    if offer.get("hotelUrn") != hotel.urn:
        raise _unprocessable("providerOfferId", f"is an offer of another hotel ({offer.get('hotelName') or '?'})")
    rate = offer.get("nightlyRate") or {}
    try:
        amount = Decimal(str(rate.get("amount")))
    except InvalidOperation:
        raise _unprocessable("providerOfferId", "the offer carries no nightly rate") from None
    return ManualOffer(
        case_id=case.pk,
        hotel_id=hotel.pk,
        hotel_urn=hotel.urn,
        offer_id=provider_offer_id,
        nightly_rate=amount,
        currency=str(rate.get("currency") or ""),
        check_in=wave.check_in,
        nights=wave.nights,
        parties=_parties(sub_cases),
    )


def subcases_book_manually(*, principal: Principal, offer: ManualOffer, reason: str) -> list[Reservation]:
    """Record ``offer`` as manual reservations (CONFIRMED, source MANUAL, no vendor call; its id is the
    confirmation reference), one per party, through :func:`reservation_manual_book`: the passengers move
    MANUAL_REVIEW → BOOKED, get their voucher and become NOTIFIED. One transaction (the caller's when there is
    one); its refusals (a passenger no longer in review, a room-night already taken) roll it all back."""
    with transaction.atomic():
        case = _lock_case(principal=principal, case_id=offer.case_id)
        return [
            reservation_manual_book(
                principal=principal,
                case=case,
                hotel_id=offer.hotel_id,
                subcase_ids=list(party),
                check_in=offer.check_in,
                nights=offer.nights,
                confirmation_number=offer.offer_id[:CONFIRMATION_MAX],
                amount=offer.nightly_rate,
                currency=offer.currency,
                reason=reason,
            )
            for party in offer.parties
        ]
