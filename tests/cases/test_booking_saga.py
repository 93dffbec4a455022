"""The room sagas of book-rooms (cases.saga.hotel) against the REAL hotel and PSP simulators, driven
in-process through :func:`cases.saga.execute` (what the Celery task calls), one scenario per fault:
happy path to NOTIFIED, a refused hold falling back to the next offer, every offer failing (review +
booking:failed), a confirm whose answer was lost resolved under its original key, a refused card undoing
the hold, and a contract call-off (direct-billed, no card)."""

import pytest
from django.test import override_settings

from booking.models import Reservation, RoomNight
from cases import saga, services
from cases.models import AllocationStatus, SagaRun, SagaStep, SubCase
from nexa.platform.models import OutboxEvent
from nexa.platform.problems import Problem
from notifications.models import Notification
from tests.cases.booking_helpers import (
    allocation_for,
    check_in_day,
    contract_offer,
    drive,
    hotel,
    new_case,
    passengers,
    supervisor,
    vendor_offer,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("simulator_control")]

FAST = {
    "NEXA_SAGA_BACKOFF_BASE_SECONDS": 0.01,
    "NEXA_SAGA_BACKOFF_MAX_SECONDS": 0.05,
    "NEXA_SAGA_UNAVAILABLE_WAIT_SECONDS": 0.01,
    "NEXA_SAGA_MAX_ATTEMPTS": 3,
}
STEPS = ["hotel.hold", "hotel.pay", "hotel.confirm", "hotel.voucher", "hotel.notify"]


def book(case, allocation):
    answer = services.case_book_rooms(principal=supervisor(case.airline), case=case, allocation_id=allocation.pk)
    return answer, [SagaRun.objects.get(pk=run["sagaUrn"].rsplit(":", 1)[1]) for run in answer["runs"]]


def steps_of(run):
    return {step.name: step for step in SagaStep.objects.filter(run=run)}


def statuses(members):
    return [SubCase.objects.get(pk=m.pk).status for m in members]


def booking_failed_events(case):
    return [e.payload for e in OutboxEvent.objects.filter(event="booking:failed", payload__caseUrn=case.urn)]


@override_settings(**FAST)
def test_a_group_is_held_paid_confirmed_vouchered_and_notified_once(simulator_control):
    case, day = new_case(), check_in_day()
    family = passengers(case, 2)
    offer = vendor_offer("IB", "mad-auditorium", check_in=day, rooms=2)
    allocation = allocation_for(case, [(family, [offer])], check_in=day)

    answer, [run] = book(case, allocation)
    assert answer["runs"][0]["subCaseUrns"] == [m.urn for m in family] and answer["partialFailures"] == []
    assert run.sub_case_id == family[0].pk  # the lead; every occupant is in the item
    assert statuses(family) == ["BOOKING", "BOOKING"]
    allocation.refresh_from_db()
    assert allocation.status == AllocationStatus.BOOKING

    run = drive(run)
    assert run.status == "COMPLETED"
    steps = steps_of(run)
    assert [(name, steps[name].status) for name in STEPS] == [(name, "COMPLETED") for name in STEPS]
    stayhub = simulator_control.hotels.vendor("stayhub")
    [hold] = stayhub.entries("hold")
    [confirm] = stayhub.entries("confirm")
    assert hold["rooms"] == 2 and confirm["holdId"] == hold["holdId"]
    [card] = simulator_control.psp.entries("card_issued")
    assert card["amount"] == "180.00"  # 90.00 a night, 1 night, 2 rooms

    [reservation] = Reservation.objects.filter(case=case)
    assert reservation.status == "CONFIRMED" and reservation.source == "VENDOR"
    assert reservation.confirmation_number == hold["holdId"] and reservation.card_id == card["cardId"]
    assert reservation.saga_urn == run.urn and reservation.allocation_urn == allocation.urn
    assert RoomNight.objects.filter(reservation=reservation, active=True).count() == 2
    assert steps["hotel.voucher"].result["voucherUrl"] == f"/v1/booking/reservations/{reservation.urn}/voucher/html"
    # Every occupant, not just the lead: BOOKED then NOTIFIED, each with their own voucher notice.
    assert statuses(family) == ["NOTIFIED", "NOTIFIED"]
    for member in family:
        assert Notification.objects.filter(sub_case=member, template="hotel_voucher").exists()
    # A re-delivered message changes nothing.
    assert saga.execute(run.pk) is None
    assert len(stayhub.entries("hold")) == 1 and len(simulator_control.psp.entries("card_issued")) == 1


@override_settings(**FAST)
def test_a_refused_hold_falls_back_to_the_next_offer(simulator_control):
    case, day = new_case(), check_in_day()
    [guest] = passengers(case, 1)
    primary = vendor_offer("IB", "mad-melia-barajas", check_in=day)
    primary["offerId"] = primary["offerId"].replace("SH", "XX")  # the vendor no longer has this rate: 404
    second = vendor_offer("IB", "mad-hilton-airport", check_in=day, rate="150.00")
    allocation = allocation_for(case, [([guest], [primary, second])], check_in=day)

    _, [run] = book(case, allocation)
    run = drive(run)
    assert run.status == "COMPLETED"
    hold = steps_of(run)["hotel.hold"]
    assert hold.result["offerIndex"] == 1 and hold.result["hotelName"] == "Hilton Madrid Airport"
    [attempt] = hold.result["attemptedHotels"]
    assert (attempt["hotelUrn"], attempt["reason"]) == (primary["hotelUrn"], "hotel-full")
    assert "rate_not_found" in attempt["providerError"]
    [active] = Reservation.objects.filter(case=case, status="CONFIRMED")
    assert active.hotel_name == "Hilton Madrid Airport"
    assert Reservation.objects.filter(case=case, status="FAILED").count() == 1  # the refused claim, released
    assert statuses([guest]) == ["NOTIFIED"]


@override_settings(**FAST)
def test_when_every_offer_fails_the_group_goes_to_review_with_booking_failed(simulator_control):
    case, day = new_case(), check_in_day()
    pair = passengers(case, 2)
    simulator_control.hotels.vendor("stayhub").control(inventory="none")
    offers = [vendor_offer("IB", key, check_in=day, rooms=2) for key in ("mad-melia-barajas", "mad-auditorium")]
    allocation = allocation_for(case, [(pair, offers)], check_in=day)

    _, [run] = book(case, allocation)
    run = drive(run)
    assert run.status == "FAILED" and run.failure_category == "BOOKING_FAILED"
    assert statuses(pair) == ["MANUAL_REVIEW", "MANUAL_REVIEW"]  # every occupant, not just the lead
    [event] = booking_failed_events(case)
    assert event["category"] == "BOOKING_FAILED" and event["subCaseUrns"] == [m.urn for m in pair]
    assert event["allocationUrn"] == allocation.urn
    assert [(a["hotelUrn"], a["reason"]) for a in event["attemptedHotels"]] == [
        (offers[0]["hotelUrn"], "hotel-full"),
        (offers[1]["hotelUrn"], "hotel-full"),
    ]
    assert not RoomNight.objects.filter(sub_case__in=pair, active=True).exists()
    assert simulator_control.psp.entries("card_issued") == []


@override_settings(**FAST)
def test_one_group_booked_and_one_failed_is_a_partial_fulfilment(simulator_control):
    case, day = new_case(), check_in_day()
    [first], [second] = passengers(case, 1), passengers(case, 1)
    good = vendor_offer("IB", "mad-auditorium", check_in=day)
    bad = vendor_offer("IB", "mad-melia-barajas", check_in=day)
    bad["offerId"] = bad["offerId"].replace("SH", "XX")
    allocation = allocation_for(case, [([first], [good]), ([second], [bad])], check_in=day)
    _, runs = book(case, allocation)
    runs = [drive(run) for run in runs]
    assert [run.status for run in runs] == ["COMPLETED", "FAILED"]
    [event] = booking_failed_events(case)
    assert event["category"] == "PARTIAL_FULFILLMENT" and event["subCaseUrns"] == [second.urn]


@override_settings(**FAST)
def test_a_confirm_whose_answer_was_lost_is_resolved_under_its_original_key(simulator_control):
    case, day = new_case(), check_in_day()
    [guest] = passengers(case, 1)
    allocation = allocation_for(case, [([guest], [vendor_offer("IB", "mad-auditorium", check_in=day)])], check_in=day)
    _, [run] = book(case, allocation)
    # Stop the run after its hold: the PSP is down, so PAY waits (transient error, backoff).
    simulator_control.psp.outage()
    assert saga.execute(run.pk) is not None
    hold_id = steps_of(run)["hotel.hold"].result["holdId"]
    stayhub = simulator_control.hotels.vendor("stayhub")
    # The vendor confirms, then the answer is lost (every replay of that key too).
    stayhub.fault_after_processing({f"/hotel-api/1.0/holds/{hold_id}/confirm": 503})
    simulator_control.psp.outage(False)
    run = drive(run)

    assert run.status == "COMPLETED"
    confirm = steps_of(run)["hotel.confirm"]
    assert confirm.attempts == 2 and confirm.result["bookingId"] == hold_id
    assert len(stayhub.entries("confirm")) == 1  # exactly one booking at the vendor
    assert Reservation.objects.get(case=case).status == "CONFIRMED"
    assert statuses([guest]) == ["NOTIFIED"]


@override_settings(**FAST)
def test_a_refused_card_cancels_the_hold_and_releases_the_nights(simulator_control):
    case, day = new_case(), check_in_day()
    [guest] = passengers(case, 1)
    allocation = allocation_for(case, [([guest], [vendor_offer("IB", "mad-auditorium", check_in=day)])], check_in=day)
    simulator_control.psp.refuse({guest.urn: "card_declined"})
    _, [run] = book(case, allocation)
    run = drive(run)

    assert run.status == "FAILED" and run.failure_category == "PAYMENT_FAILED"
    steps = steps_of(run)
    assert steps["hotel.hold"].status == "COMPENSATED" and steps["hotel.pay"].status == "FAILED"
    stayhub = simulator_control.hotels.vendor("stayhub")
    [cancel] = stayhub.entries("cancel")
    assert cancel["holdId"] == steps["hotel.hold"].result["holdId"]
    assert stayhub.entries("confirm") == []
    reservation = Reservation.objects.get(case=case)
    assert reservation.status == "CANCELLED" and not reservation.room_nights.filter(active=True).exists()
    assert statuses([guest]) == ["MANUAL_REVIEW"]
    [event] = booking_failed_events(case)
    assert event["category"] == "PAYMENT_FAILED" and event["attemptedHotels"][-1]["reason"] == "payment-refused"


@override_settings(**FAST)
def test_a_contract_call_off_is_direct_billed_with_no_vendor_or_card(simulator_control):
    case, day = new_case(), check_in_day()
    pair = passengers(case, 2)
    _, offer = contract_offer("IB", "mad-hilton-airport", allotment=2)
    allocation = allocation_for(case, [(pair, [offer])], check_in=day)
    _, [run] = book(case, allocation)
    run = drive(run)
    assert run.status == "COMPLETED"
    assert steps_of(run)["hotel.pay"].result["skipped"] is True
    assert simulator_control.psp.entries("card_issued") == []
    reservation = Reservation.objects.get(case=case)
    assert (reservation.source, reservation.status, reservation.direct_billed) == ("CONTRACT", "CONFIRMED", True)
    assert reservation.confirmation_number.startswith("CT-")
    assert statuses(pair) == ["NOTIFIED", "NOTIFIED"]


@override_settings(**FAST)
def test_a_full_contract_allotment_falls_back_to_a_vendor(simulator_control):
    case, day = new_case(), check_in_day()
    trio = passengers(case, 3)
    _, contract = contract_offer("IB", "mad-hilton-airport", allotment=2)
    offers = [contract, vendor_offer("IB", "mad-auditorium", check_in=day, rooms=3)]
    allocation = allocation_for(case, [(trio, offers)], check_in=day)
    _, [run] = book(case, allocation)
    run = drive(run)
    assert run.status == "COMPLETED"
    hold = steps_of(run)["hotel.hold"].result
    assert hold["source"] == "VENDOR" and hold["attemptedHotels"][0]["reason"] == "hotel-full"


# --- HOTEL as a compensation item ------------------------------------------------------------------------


def compensate(sub_case, items):
    run, created = services.subcase_compensate(
        principal=supervisor(),
        sub_case_urn=sub_case.urn,
        expected_version=SubCase.objects.get(pk=sub_case.pk).version,
        items=items,
        reason="storm",
    )
    assert created
    return run


@override_settings(**FAST, NEXA_HOTEL_VENDORS=["stayhub"])
def test_a_hotel_compensation_item_books_one_room_on_the_hotel_steps(simulator_control):
    case, day = new_case(), check_in_day()
    [guest] = passengers(case, 1, status="MANUAL_REVIEW")
    row = hotel("IB", "mad-auditorium")
    meal = {"type": "MEAL", "amount": "20.00", "currency": "EUR"}
    run = compensate(guest, [meal, {"type": "HOTEL", "hotelUrn": row.urn, "checkIn": day.isoformat(), "nights": 2}])
    assert [s.name for s in SagaStep.objects.filter(run=run)] == ["meal.issue_card", *STEPS, "notify.passenger"]
    run = drive(run)
    assert run.status == "COMPLETED"
    [hold] = simulator_control.hotels.vendor("stayhub").entries("hold")
    assert hold["rooms"] == 1
    reservation = Reservation.objects.get(case=case)
    assert (reservation.status, reservation.hotel_id, reservation.nights) == ("CONFIRMED", row.pk, 2)
    assert reservation.rooms == [{"occupants": [guest.urn], "accessible": False}]
    assert Notification.objects.filter(sub_case=guest, template="hotel_voucher").exists()
    assert len(simulator_control.psp.entries("card_issued")) == 2  # the meal card and the hotel's


@override_settings(**FAST)
def test_a_hotel_item_with_a_contract_offer_id_calls_off_the_contract(simulator_control):
    case, day = new_case(), check_in_day()
    [guest] = passengers(case, 1, status="GROUPED")
    _, offer = contract_offer("IB", "mad-hilton-airport", allotment=3)
    run = drive(
        compensate(guest, [{"type": "HOTEL", "offerId": offer["offerId"], "checkIn": day.isoformat(), "nights": 1}])
    )
    assert run.status == "COMPLETED"
    reservation = Reservation.objects.get(case=case)
    assert (reservation.source, reservation.status) == ("CONTRACT", "CONFIRMED")
    assert simulator_control.hotels.vendor("stayhub").entries("hold") == []


def test_a_hotel_item_for_a_stay_nobody_offers_is_422(simulator_control):
    case, day = new_case(), check_in_day()
    [guest] = passengers(case, 1, status="GROUPED")
    with pytest.raises(Problem) as refused:
        compensate(guest, [{"type": "HOTEL", "offerId": "stayhub~nope", "checkIn": day.isoformat(), "nights": 1}])
    assert refused.value.status_code == 422 and refused.value.extensions["errors"][0]["field"] == "items[0].offerId"
    assert not SagaRun.objects.filter(sub_case=guest).exists()


@override_settings(**FAST)
def test_a_hold_whose_answer_was_lost_is_found_under_its_key_not_made_twice(simulator_control):
    case, day = new_case(), check_in_day()
    [guest] = passengers(case, 1)
    second = vendor_offer("IB", "mad-hilton-airport", check_in=day, vendor="globerooms")
    allocation = allocation_for(case, [([guest], [vendor_offer("IB", "mad-auditorium", check_in=day), second])],
                                check_in=day)  # fmt: skip
    stayhub = simulator_control.hotels.vendor("stayhub")
    stayhub.fault_after_processing({"/hotel-api/1.0/holds": 503})  # the hold is made, its answer lost
    _, [run] = book(case, allocation)
    run = drive(run)
    assert run.status == "COMPLETED"
    hold = steps_of(run)["hotel.hold"]
    assert hold.attempts == 2 and hold.result["vendor"] == "stayhub" and hold.result["attemptedHotels"] == []
    assert len(stayhub.entries("hold")) == 1  # found by the lookup under the original key
    assert simulator_control.hotels.vendor("globerooms").entries("hold") == []


@override_settings(**FAST)
def test_a_vendor_that_keeps_failing_gives_way_to_the_next_vendor_after_two_tries(simulator_control):
    case, day = new_case(), check_in_day()
    [guest] = passengers(case, 1)
    first = vendor_offer("IB", "mad-auditorium", check_in=day)
    second = vendor_offer("IB", "mad-hilton-airport", check_in=day, vendor="globerooms")
    allocation = allocation_for(case, [([guest], [first, second])], check_in=day)
    simulator_control.hotels.vendor("stayhub").outage()
    _, [run] = book(case, allocation)
    run = drive(run)
    assert run.status == "COMPLETED"
    hold = steps_of(run)["hotel.hold"]
    [attempt] = hold.result["attemptedHotels"]
    assert (attempt["hotelUrn"], attempt["reason"]) == (first["hotelUrn"], "vendor-error")
    assert hold.result["vendor"] == "globerooms" and len(hold.item["inDoubt"]) == 1
    assert [e["outcome"] for e in hold.attempt_log][:3] == ["RETRY", "FALLBACK", "COMPLETED"]
    assert len(simulator_control.hotels.vendor("globerooms").entries("hold")) == 1


@override_settings(**FAST)
def test_a_failed_booking_retried_once_rooms_are_back_books_the_passengers_out_of_review(simulator_control):
    case, day = new_case(), check_in_day()
    [guest] = passengers(case, 1)
    allocation = allocation_for(case, [([guest], [vendor_offer("IB", "mad-auditorium", check_in=day)])], check_in=day)
    stayhub = simulator_control.hotels.vendor("stayhub")
    stayhub.control(inventory="none")
    _, [run] = book(case, allocation)
    assert drive(run).status == "FAILED" and statuses([guest]) == ["MANUAL_REVIEW"]
    stayhub.control(inventory="normal")
    services.saga_run_retry(principal=supervisor(), run=run, reason="rooms are back")
    run = drive(run)
    assert run.status == "COMPLETED" and statuses([guest]) == ["NOTIFIED"]
    assert len(stayhub.entries("hold")) == 1 and Reservation.objects.filter(case=case, status="CONFIRMED").count() == 1
