"""The release sweep (cases.tasks.reservations_release → services.reservations_release_sweep): holds not
confirmed by their expiry go back to the vendor, contract call-offs not confirmed by the contract's release
time go back to the hotel, and passengers who left the case (sub-case CANCELLED) give their room-nights
back. Time is moved by editing the rows, never by sleeping."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from audit.models import AuditEntry
from booking import services as booking
from booking.models import Reservation, RoomNight
from cases import services
from cases.models import SubCase
from cases.tasks import reservations_release
from tests.cases.booking_helpers import (
    check_in_day,
    contract_offer,
    hotel,
    new_case,
    passengers,
    supervisor,
    vendor_offer,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("simulator_control")]


def held(case, members, offer, *, contract_id=None):
    return booking.reservation_hold_record(
        airline=case.airline, case_id=case.pk, case_urn=case.urn, hotel_id=None, hotel_name=offer["hotelName"],
        source=offer["source"], vendor=offer["vendor"], contract_id=contract_id, offer_ref=offer["offerId"],
        check_in=check_in_day(), nights=1, rooms=[{"occupants": [m.urn for m in members], "accessible": False}],
        nightly_rate=Decimal("90.00"), currency="EUR", direct_billed=offer["source"] == "CONTRACT",
        hold_expires_at=timezone.now() + dt.timedelta(minutes=15), actor="urn:nexa:system:test",
    )  # fmt: skip


def test_a_hold_past_its_expiry_is_cancelled_at_the_vendor_and_its_nights_released(simulator_control):
    case = new_case()
    [guest] = passengers(case, 1)
    offer = vendor_offer("IB", "mad-auditorium", check_in=check_in_day())
    reservation = held(case, [guest], offer)
    ref = offer["offerId"].split("~", 1)[1]
    vendor_hold = booking.hotel_hold(
        idempotency_key="urn:test:hold-1", vendor="stayhub", offer_ref=ref, rooms=1, reference=case.urn
    )
    booking.reservation_hold_attach(
        reservation_urn=reservation.urn, hold_id=vendor_hold["holdId"], hold_expires_at=None, actor="urn:test"
    )
    assert reservations_release() == {"expiredHolds": [], "uncalledContracts": [], "departedPassengers": []}

    Reservation.objects.filter(pk=reservation.pk).update(hold_expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert reservations_release()["expiredHolds"] == [reservation.urn]
    reservation.refresh_from_db()
    assert reservation.status == "CANCELLED" and reservation.release_reason == "hold expired before confirmation"
    assert not RoomNight.objects.filter(reservation=reservation, active=True).exists()
    [cancel] = simulator_control.hotels.vendor("stayhub").entries("cancel")
    assert cancel["holdId"] == vendor_hold["holdId"]
    assert AuditEntry.objects.filter(entity_urn=reservation.urn, action="reservation.released").count() == 1
    assert reservations_release()["expiredHolds"] == []  # nothing twice


def test_a_contract_call_off_not_confirmed_by_the_release_time_goes_back():
    case = new_case()
    [guest] = passengers(case, 1)
    contract, offer = contract_offer("IB", "mad-hilton-airport", release_hours=0)
    reservation = held(case, [guest], offer, contract_id=contract.pk)
    assert services.reservations_release_sweep(now=timezone.now())["uncalledContracts"] == []
    later = timezone.now() + dt.timedelta(days=3)  # past the check-in day: the release time has passed
    Reservation.objects.filter(pk=reservation.pk).update(hold_expires_at=None)
    assert services.reservations_release_sweep(now=later)["uncalledContracts"] == [reservation.urn]
    reservation.refresh_from_db()
    assert reservation.status == "CANCELLED" and not reservation.room_nights.filter(active=True).exists()


def test_passengers_who_leave_give_their_nights_back_and_an_empty_reservation_is_cancelled(client_for):
    case = new_case()
    pair = passengers(case, 2)
    reservation = services.reservation_manual_book(
        principal=supervisor(), case=case, hotel_id=hotel("IB", "mad-auditorium").pk,
        subcase_ids=[m.pk for m in pair], check_in=check_in_day(), nights=1, confirmation_number="M-1",
        amount=Decimal("90.00"), currency="EUR", reason="phone",
    )  # fmt: skip
    SubCase.objects.filter(pk=pair[0].pk).update(status="CANCELLED")
    assert reservations_release()["departedPassengers"] == [pair[0].urn]
    reservation.refresh_from_db()
    assert reservation.status == "CONFIRMED" and reservation.rooms == [
        {"occupants": [pair[1].urn], "accessible": False}
    ]
    assert list(
        RoomNight.objects.filter(reservation=reservation, active=True).values_list("sub_case_id", flat=True)
    ) == [pair[1].pk]
    SubCase.objects.filter(pk=pair[1].pk).update(status="CANCELLED")
    reservations_release()
    reservation.refresh_from_db()
    assert reservation.status == "CANCELLED" and reservation.release_reason == "passenger left the case"
