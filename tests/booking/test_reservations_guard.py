"""The duplicate-voucher guard: one active room-night per passenger per night, enforced by the database
(``room_night_one_per_passenger``) and reported as a 409 naming the first reservation — also when two
bookings race (real threads, real transactions). Released nights can be booked again; a contract call-off
counts against the allotment."""

import datetime as dt
import threading
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from booking import services as booking
from booking.models import Reservation, RoomNight
from nexa.platform.problems import Problem
from nexa.platform.providers import ProviderPermanentError
from tests.cases.booking_helpers import contract_offer, new_case, passengers


def hold(case, members, *, offer_ref="stayhub~x", saga_urn="", contract_id=None, source="VENDOR", **kw):
    return booking.reservation_hold_record(
        airline=case.airline,
        case_id=case.pk,
        case_urn=case.urn,
        hotel_id=None,
        hotel_name="Hotel Test",
        source=source,
        vendor="stayhub" if source == "VENDOR" else "",
        contract_id=contract_id,
        offer_ref=offer_ref,
        check_in=kw.get("check_in", timezone.now().date() + dt.timedelta(days=1)),
        nights=kw.get("nights", 2),
        rooms=[{"occupants": [m.urn], "accessible": False} for m in members],
        nightly_rate=Decimal("90.00"),
        currency="EUR",
        direct_billed=source == "CONTRACT",
        hold_expires_at=None,
        saga_urn=saga_urn,
        actor="urn:nexa:system:test",
    )


@pytest.mark.django_db
def test_a_second_active_night_is_409_naming_the_first_and_writes_nothing():
    case = new_case()
    [guest] = passengers(case, 1)
    first = hold(case, [guest])
    with pytest.raises(Problem) as refused:
        hold(case, [guest], offer_ref="stayhub~y", nights=1, check_in=first.check_in + dt.timedelta(days=1))
    assert refused.value.status_code == 409 and refused.value.extensions["reservationUrn"] == first.urn
    assert first.urn in refused.value.detail_text
    assert Reservation.objects.count() == 1 and RoomNight.objects.filter(active=True).count() == 2


@pytest.mark.django_db
def test_released_nights_can_be_booked_again_and_the_same_run_and_offer_is_idempotent():
    case = new_case()
    [guest] = passengers(case, 1)
    first = hold(case, [guest], saga_urn="urn:nexa:saga:019371a8-5e2c-7c3d-9a4b-2f6e8d1c0b7a")
    assert hold(case, [guest], saga_urn="urn:nexa:saga:019371a8-5e2c-7c3d-9a4b-2f6e8d1c0b7a").pk == first.pk
    booking.reservation_release(reservation_urn=first.urn, reason="test", actor="urn:nexa:system:test",
                                case_urn=case.urn)  # fmt: skip
    again = hold(case, [guest], offer_ref="stayhub~y")
    assert again.status == "HELD" and RoomNight.objects.filter(active=True, reservation=again).count() == 2


@pytest.mark.django_db(transaction=True)
def test_concurrent_bookings_of_one_passenger_exactly_one_wins():
    case = new_case()
    [guest] = passengers(case, 1)
    barrier = threading.Barrier(4)
    outcomes: list = []

    def attempt(index):
        try:
            barrier.wait()
            outcomes.append(("won", hold(case, [guest], offer_ref=f"stayhub~{index}").urn))
        except Problem as problem:
            outcomes.append(("409", problem.extensions.get("reservationUrn")))
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [urn for outcome, urn in outcomes if outcome == "won"]
    assert len(winners) == 1 and len(outcomes) == 4
    assert [urn for outcome, urn in outcomes if outcome == "409"] == [winners[0]] * 3
    assert Reservation.objects.count() == 1 and RoomNight.objects.filter(active=True).count() == 2


@pytest.mark.django_db
def test_a_contract_call_off_takes_the_allotment():
    case = new_case()
    contract, _ = contract_offer("IB", "mad-hilton-airport", allotment=2)
    two, one = passengers(case, 2), passengers(case, 1)
    hold(case, two, source="CONTRACT", contract_id=contract.pk, offer_ref=f"contract~{contract.urn}")
    with pytest.raises(ProviderPermanentError) as full:
        hold(case, one, source="CONTRACT", contract_id=contract.pk, offer_ref=f"contract~{contract.urn}/2")
    assert full.value.code == "not_enough_rooms"
