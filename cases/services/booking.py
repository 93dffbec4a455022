"""Booking use cases (issue 12, docs/booking.md § Booking): book an allocation's rooms (one room saga per
assignment), a supervisor's manual reservation, the sub-case moves the room sagas make, and the release
sweep. The saga's hotel steps are :mod:`cases.saga.hotel`; reservation rows are written only by
:mod:`booking.services`."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from django.db import transaction
from django_fsm import can_proceed

from audit import services as audit
from booking import services as booking
from booking.models import Hotel, Reservation, RoomNight
from cases import compensation, saga
from cases.models import Allocation, AllocationStatus, Case, SagaRun, SubCase, SubCaseStatus
from cases.saga.hotel import booking_item, voucher_url
from cases.services._common import _case_status_refresh, _lock_case, _transition_locked
from nexa.platform.auth import Principal
from nexa.platform.context import current_correlation_urn
from nexa.platform.problems import conflict_problem, not_found_problem, validation_problem
from nexa.platform.providers import ProviderError
from nexa.platform.urns import format_urn, new_urn
from notifications import services as notifications

SWEEP_ACTOR = "urn:nexa:system:booking-sweep"
VOUCHER_TEMPLATE = "hotel_voucher"
# A manual reservation books passengers from these statuses (docs/booking.md): the FSM path to BOOKED.
MANUAL_BOOKING_PATHS = {
    SubCaseStatus.GROUPED: ("mark_allocated", "start_booking", "mark_booked"),
    SubCaseStatus.ALLOCATED: ("start_booking", "mark_booked"),
    SubCaseStatus.MANUAL_REVIEW: ("resolve_as_booked",),
}


# --- the room sagas' sub-case moves (the saga's hook, registered in CasesConfig.ready) --------------------


def subcases_advance_by_system(
    *, airline: str, sub_case_ids: list, transition: str | tuple[str, ...], reason: str
) -> list[SubCase]:
    """Move each of ``sub_case_ids`` along ``transition`` (or the first of several the FSM allows it) as the
    saga (OCC, audit, events, case status); one that cannot make it (cancelled meanwhile, already there) is
    left as it is. Entity locks do not stop it, as for the saga's path to review (docs/decisions.md)."""
    transitions = (transition,) if isinstance(transition, str) else tuple(transition)
    if not sub_case_ids:
        return []
    principal = saga.system_principal(airline)
    moved = []
    with transaction.atomic():
        first = SubCase.objects.filter(pk__in=sub_case_ids, airline=airline).values_list("case_id", flat=True).first()
        if first is None:
            return []
        case = _lock_case(principal=principal, case_id=first)
        for sub_case in SubCase.objects.filter(pk__in=sub_case_ids, case_id=case.pk).order_by("created_at", "id"):
            allowed = next((t for t in transitions if can_proceed(getattr(sub_case, t))), None)
            if allowed is None:
                continue
            moved.append(
                _transition_locked(
                    principal=principal,
                    case=case,
                    sub_case=sub_case,
                    transition=allowed,
                    expected_version=sub_case.version,
                    reason=reason,
                    guarded=False,
                )
            )
        if moved:
            _case_status_refresh(principal=principal, case=case, reason=reason)
    return moved


# --- book-rooms ---------------------------------------------------------------------------------------------


def _offers_of(assignment: dict[str, Any]) -> list[dict[str, Any]]:
    keys = ("offerId", "hotelUrn", "hotelName", "source", "vendor", "contractUrn", "nightlyRate")
    primary = {key: assignment.get(key) for key in keys}
    return [primary, *[{key: alt.get(key) for key in keys} for alt in assignment.get("alternatives") or []]]


def case_book_rooms(*, principal: Principal, case: Case, allocation_id: uuid.UUID) -> dict[str, Any]:
    """Book a PLANNED allocation's rooms: one room saga per assignment (a group's rooms at one hotel, held,
    paid and confirmed together — a vendor holds them as one booking, and a family is never split across
    hotels by a partial failure), its lead the group's first occupant and every occupant in its item.
    Sub-cases ALLOCATED → BOOKING (OCC), the allocation → BOOKING, in one transaction with the runs and
    their outbox rows. An occupant no longer ALLOCATED (cancelled, sent to review meanwhile) is left out and
    named in ``partialFailures``; a group left with nobody is not booked.

    404: no such allocation of this case (or another airline's). 409: the allocation is not PLANNED (a
    second book-rooms, or superseded)."""
    with transaction.atomic():
        case = _lock_case(principal=principal, case_id=case.pk)
        allocation = (
            Allocation.objects.select_for_update()
            .filter(pk=allocation_id, case_id=case.pk, airline=principal.airline)
            .first()
        )
        if allocation is None:
            raise not_found_problem()
        if allocation.status != AllocationStatus.PLANNED:
            raise conflict_problem(
                slug="allocation-not-planned",
                title="The allocation cannot be booked",
                detail=f"{allocation.urn} is {allocation.status}; book-rooms needs a PLANNED allocation "
                "(each allocation is booked once).",
                currentStatus=allocation.status,
            )
        assignments = list(allocation.plan.get("assignments") or [])
        wanted = {u for a in assignments for r in a.get("rooms", []) for u in r.get("occupants", [])}
        ids = {format_urn("subcase", s.pk): s for s in SubCase.objects.filter(case_id=case.pk)} if wanted else {}
        correlation_urn = current_correlation_urn() or new_urn("correlation")
        runs, partial = [], []
        for assignment in assignments:
            rooms = []
            for room in assignment.get("rooms", []):
                occupants = []
                for urn in room.get("occupants", []):
                    sub_case = ids.get(urn)
                    if sub_case is None or sub_case.status != SubCaseStatus.ALLOCATED:
                        partial.append(
                            {
                                "groupUrn": assignment.get("groupUrn", ""),
                                "subCaseUrn": urn,
                                "status": sub_case.status if sub_case else "UNKNOWN",
                                "detail": "not ALLOCATED any more: left out of the booking",
                            }
                        )
                        continue
                    occupants.append(urn)
                if occupants:
                    rooms.append({**room, "occupants": occupants})
            occupants = [u for room in rooms for u in room["occupants"]]
            if not occupants:
                continue
            for urn in occupants:
                sub_case = ids[urn]
                _transition_locked(
                    principal=principal,
                    case=case,
                    sub_case=sub_case,
                    transition="start_booking",
                    expected_version=sub_case.version,
                    reason=f"book-rooms {allocation.urn}",
                )
            item = booking_item(
                case_urn=case.urn,
                occupants=occupants,
                rooms=rooms,
                check_in=assignment["checkIn"],
                nights=assignment["nights"],
                offers=_offers_of(assignment),
                allocation_urn=allocation.urn,
                group_urn=assignment.get("groupUrn", ""),
            )
            run = SagaRun.objects.create(
                airline=principal.airline,
                case=case,
                sub_case=ids[occupants[0]],
                payload={
                    "kind": "BOOKING",
                    "booking": {
                        "allocationUrn": allocation.urn,
                        "groupUrn": item["groupUrn"],
                        "subCaseUrns": occupants,
                    },
                    "items": [item],
                    "reason": f"book-rooms {allocation.urn}",
                },
                payload_hash=compensation.payload_hash(
                    version="book-rooms", items=[allocation.urn, item["groupUrn"], occupants], reason=""
                ),
                correlation_urn=correlation_urn,
                requested_by=principal.operator_urn,
                reason=f"book-rooms {allocation.urn}",
            )
            saga.create_steps(run, [item], summary=False)
            runs.append((run, item))
        allocation.status = AllocationStatus.BOOKING
        allocation.save(update_fields=["status", "updated_at"])
        answer = {
            "allocationUrn": allocation.urn,
            "caseUrn": case.urn,
            "runs": [
                {"sagaUrn": run.urn, "groupUrn": item["groupUrn"], "subCaseUrns": item["occupants"]}
                for run, item in runs
            ],
            "partialFailures": partial,
        }
        audit.record(
            principal=principal,
            action="allocation.booking_requested",
            entity_urn=allocation.urn,
            case_urn=case.urn,
            before={"status": AllocationStatus.PLANNED},
            after={"status": allocation.status, "runs": answer["runs"], "leftOut": [p["subCaseUrn"] for p in partial]},
        )
        _case_status_refresh(principal=principal, case=case)
        for run, _ in runs:
            run.case = case
            saga.publish_requested(run)
    return answer


# --- manual reservations ---------------------------------------------------------------------------------


def reservation_manual_book(
    *,
    principal: Principal,
    case: Case,
    hotel_id: uuid.UUID,
    subcase_ids: list[uuid.UUID],
    check_in: dt.date,
    nights: int,
    confirmation_number: str,
    amount: Decimal,
    currency: str,
    reason: str,
) -> Reservation:
    """A reservation a supervisor made out of band (phone, walk-in): CONFIRMED, source MANUAL, no vendor
    call. Its passengers move to BOOKED along the FSM (from GROUPED, ALLOCATED or MANUAL_REVIEW; 409 from
    any other status — BOOKING: a room saga is booking them) and get the voucher directly (the same
    ``hotel_voucher`` notice as the NOTIFY step, keyed by the reservation), then NOTIFIED. One transaction.
    400 names a hotel or sub-case not of this airline/case; 409 ``room-night-taken`` names the reservation
    that already holds one of their nights."""
    hotel = Hotel.objects.filter(pk=hotel_id, airline=principal.airline).first()
    if hotel is None:
        raise validation_problem([{"field": "hotelUrn", "message": "is not a hotel of the airline's catalog"}])
    with transaction.atomic():
        case = _lock_case(principal=principal, case_id=case.pk)
        found = {s.pk: s for s in SubCase.objects.filter(case_id=case.pk, pk__in=subcase_ids)}
        errors = [
            {"field": f"subCaseUrns[{i}]", "message": "is not a sub-case of this case"}
            for i, id_ in enumerate(subcase_ids)
            if id_ not in found
        ]
        if errors:
            raise validation_problem(errors)
        members = [found[id_] for id_ in subcase_ids]
        refused = [s for s in members if s.status not in MANUAL_BOOKING_PATHS]
        if refused:
            raise conflict_problem(
                slug="subcase-not-bookable",
                title="A passenger cannot be booked manually in their current status",
                detail=", ".join(f"{s.urn} is {s.status}" for s in refused)
                + "; a manual reservation books GROUPED, ALLOCATED or MANUAL_REVIEW passengers.",
                subCaseUrns=[s.urn for s in refused],
            )
        reservation = booking.reservation_manual_create(
            principal=principal,
            case_id=case.pk,
            case_urn=case.urn,
            hotel=hotel,
            sub_case_urns=[s.urn for s in members],
            check_in=check_in,
            nights=nights,
            confirmation_number=confirmation_number,
            nightly_rate=amount,
            currency=currency,
            reason=reason,
        )
        note = f"manual reservation {reservation.urn}"
        for sub_case in members:
            for transition in MANUAL_BOOKING_PATHS[sub_case.status]:
                sub_case = _transition_locked(
                    principal=principal,
                    case=case,
                    sub_case=sub_case,
                    transition=transition,
                    expected_version=sub_case.version,
                    reason=note,
                )
        for sub_case in members:
            notifications.notification_send_for_subcase(
                principal_or_system=principal,
                sub_case_urn=sub_case.urn,
                template=VOUCHER_TEMPLATE,
                context={
                    "caseUrn": case.urn,
                    "reservationUrn": reservation.urn,
                    "voucherUrl": voucher_url(reservation.urn),
                    "hotelName": hotel.name,
                    "checkIn": check_in.isoformat(),
                    "nights": nights,
                },
                idempotency_key=f"{reservation.urn}/voucher/{sub_case.pk}",
            )
            _transition_locked(
                principal=principal,
                case=case,
                sub_case=sub_case,
                transition="mark_notified",
                expected_version=sub_case.version,
                reason="hotel voucher sent",
            )
        _case_status_refresh(principal=principal, case=case, reason=note)
    return reservation


# --- release what is not needed (beat sweep) -----------------------------------------------------------


def reservations_release_sweep(*, now: dt.datetime) -> dict[str, list[str]]:
    """The release sweep (``cases.tasks.reservations_release``, beat): holds never confirmed before their
    TTL (cancelled at the vendor, nights released), contract call-offs still unconfirmed at the contract's
    release time, and the room-nights of passengers who left the case (sub-case CANCELLED: their nights
    released; a reservation left with nobody cancelled, at the vendor too). Audited by the booking
    commands; safe to run again."""
    expired = booking.reservations_release_expired(now=now, actor=SWEEP_ACTOR)
    uncalled = booking.reservations_release_uncalled_contracts(now=now, actor=SWEEP_ACTOR)
    departed: list[str] = []
    cancelled = (
        RoomNight.objects.filter(active=True, sub_case__status=SubCaseStatus.CANCELLED)
        .values_list("airline", "sub_case_id")
        .distinct()
    )
    for airline, sub_case_id in list(cancelled):
        emptied = booking.reservation_occupant_release(
            airline=airline, sub_case_id=sub_case_id, reason="passenger left the case", actor=SWEEP_ACTOR
        )
        departed.append(format_urn("subcase", sub_case_id))
        for reservation in emptied:
            try:
                booking.reservation_vendor_release(
                    reservation=reservation, idempotency_key=f"{reservation.urn}/release"
                )
            except ProviderError:
                pass  # released on our side; the vendor's own cancellation window applies (docs/booking.md)
    return {"expiredHolds": expired, "uncalledContracts": uncalled, "departedPassengers": departed}


# --- HOTEL compensation items ------------------------------------------------------------------------------


def hotel_items_resolve(*, airline: str, sub_case_id: uuid.UUID, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Turn each validated ``HOTEL`` item of a compensation request into the hotel steps' item: one room for
    this passenger, with the offers to try. ``offerId``: that offer found again (a contract of the airline,
    or the vendor's offer by a fresh search at the case's airport, for its rate and hotel); ``hotelUrn``: the
    airline's contract with that hotel when one covers the stay, else that hotel's vendor offers from a fresh
    search (cheapest first; the others are the fallbacks). Nothing available → 422 naming the item. Runs
    before the compensation's transaction (a search is a provider call)."""
    if not any(item["type"] == "HOTEL" for item in items):
        return items
    row = SubCase.objects.filter(pk=sub_case_id, airline=airline).select_related("case").first()
    if row is None:
        raise not_found_problem()
    resolved, refused = [], []
    for index, item in enumerate(items):
        if item["type"] != "HOTEL":
            resolved.append(item)
            continue
        check_in = dt.date.fromisoformat(item["checkIn"])
        if "offerId" in item:
            offer = booking.hotel_offer_by_id(
                airline=airline, airport=row.case.airport, offer_id=item["offerId"], check_in=check_in,
                nights=item["nights"],
            )  # fmt: skip
            offers, field = ([offer] if offer else []), "offerId"
        else:
            offers = booking.hotel_offers_for_hotel(
                airline=airline, hotel_urn=item["hotelUrn"], check_in=check_in, nights=item["nights"]
            )
            field = "hotelUrn"
        if not offers:
            refused.append({"field": f"items[{index}].{field}", "message": "no room is offered there for that stay"})
            continue
        resolved.append(
            booking_item(
                case_urn=row.case.urn,
                occupants=[row.urn],
                rooms=[{"occupants": [row.urn], "accessible": False}],
                check_in=item["checkIn"],
                nights=item["nights"],
                offers=offers,
            )
        )
    if refused:
        raise validation_problem(refused, status=422)
    return resolved
