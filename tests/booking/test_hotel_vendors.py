"""The hotel vendor simulators (one process, three API shapes) and their adapters (booking/vendors.py):
search normalised into one offer shape, hold with a TTL, confirm, cancel, idempotency and status lookup."""

import time
from datetime import date, timedelta
from decimal import Decimal

import httpx
import pytest

from booking.hotel_data import AIRPORTS
from booking.vendors import SearchArea, VendorBooking, VendorOffer, hotel_vendor
from nexa.platform.providers import ProviderPermanentError, ProviderTransientError, ProviderUnavailable

CHECK_IN = date.today() + timedelta(days=3)
MAD = SearchArea("MAD", *AIRPORTS["MAD"], radius_km=50)
ZRH = SearchArea("ZRH", 47.4647, 8.5492, radius_km=50)
SHAPES = {"stayhub": "EUR", "globerooms": "USD", "nightbed": "GBP", "roomrack": "CHF", "bedbank": "USD"}


def _post(handle, path, body, key=None):
    headers = {"Idempotency-Key": key} if key else {}
    return httpx.post(f"{handle.url}{path}", json=body, headers=headers, timeout=5)


def test_three_shapes_answer_in_their_own_words(simulator_control):
    hotels = simulator_control.hotels
    stay = {"checkIn": str(CHECK_IN), "checkOut": str(CHECK_IN + timedelta(days=2))}
    geo = _post(
        hotels.vendor("stayhub"),
        "/hotel-api/1.0/hotels",
        {
            "stay": stay,
            "occupancies": [{"rooms": 1, "adults": 2}],
            "geolocation": {"latitude": MAD.lat, "longitude": MAD.lng, "radius": 50, "unit": "km"},
        },
    ).json()
    first = geo["hotels"]["hotels"][0]
    assert first["categoryCode"].endswith("EST") and first["currency"] == "EUR" and first["rooms"][0]["rates"][0]["net"]
    rapid = _post(
        hotels.vendor("globerooms"),
        "/v3/properties/availability",
        {
            "checkin": stay["checkIn"],
            "checkout": stay["checkOut"],
            "rooms": 1,
            "occupancy": 2,
            "latitude": MAD.lat,
            "longitude": MAD.lng,
            "radius_km": 50,
        },
    ).json()
    rate = rapid["properties"][0]["rooms"][0]["rates"][0]
    assert rate["currency"] == "USD" and len(rate["nightly"]) == 2
    paged = _post(
        hotels.vendor("nightbed"),
        "/api/search",
        {
            "iata": "MAD",
            "arrival": stay["checkIn"],
            "departure": stay["checkOut"],
            "rooms": 1,
            "guests": 2,
        },
    ).json()
    assert paged["meta"]["page"] == 1 and paged["meta"]["next_page"] == 2 and len(paged["data"]) == 2
    assert paged["data"][0]["price"]["perNight"]["currency"] == "GBP"
    second = _post(
        hotels.vendor("nightbed"),
        "/api/search",
        {
            "iata": "MAD",
            "arrival": stay["checkIn"],
            "departure": stay["checkOut"],
            "rooms": 1,
            "guests": 2,
            "page": 2,
        },
    ).json()
    assert {d["hotelId"] for d in second["data"]}.isdisjoint({d["hotelId"] for d in paged["data"]})


@pytest.mark.parametrize("vendor", sorted(SHAPES))
def test_adapters_normalise_every_shape(simulator_control, vendor):
    offers = hotel_vendor(vendor).search(area=MAD, check_in=CHECK_IN, nights=2, rooms=2, occupancy=2)
    assert offers and all(isinstance(offer, VendorOffer) for offer in offers)
    for offer in offers:
        assert offer.vendor == vendor
        assert offer.nightly_rate.currency == SHAPES[vendor]
        assert Decimal("30") < offer.nightly_rate.amount < Decimal("1500")
        assert 1 <= offer.stars <= 5 and offer.rooms_available >= 2 and offer.ref
        assert 40 < offer.lat < 41 and -4 < offer.lng < -3
    # every page of the paginating vendor is followed
    if vendor == "nightbed":
        assert len(offers) > 2


@pytest.mark.parametrize("vendor", sorted(SHAPES))
def test_nothing_away_from_the_demo_airports(simulator_control, vendor):
    assert hotel_vendor(vendor).search(area=ZRH, check_in=CHECK_IN, nights=1, rooms=1, occupancy=1) == []


@pytest.mark.parametrize("vendor", ["stayhub", "globerooms", "nightbed"])
def test_hold_confirm_cancel_idempotent_with_status_lookup(simulator_control, vendor):
    adapter = hotel_vendor(vendor)
    offer = adapter.search(area=MAD, check_in=CHECK_IN, nights=1, rooms=1, occupancy=2)[0]
    hold = adapter.hold(idempotency_key=f"hold-{vendor}", offer_ref=offer.ref, rooms=2, reference="urn:nexa:step:x")
    assert isinstance(hold, VendorBooking) and hold.status == "HELD" and hold.expires_at is not None
    again = adapter.hold(idempotency_key=f"hold-{vendor}", offer_ref=offer.ref, rooms=2, reference="urn:nexa:step:x")
    assert again == hold  # replayed, not held twice
    handle = simulator_control.hotels.vendor(vendor)
    assert len(handle.entries("hold")) == 1
    left = {
        o.vendor_hotel_id: o.rooms_available
        for o in adapter.search(area=MAD, check_in=CHECK_IN, nights=1, rooms=1, occupancy=2)
    }
    assert left[offer.vendor_hotel_id] == offer.rooms_available - 2  # held rooms are off the inventory
    assert adapter.lookup(idempotency_key=f"hold-{vendor}") is not None
    assert adapter.lookup(idempotency_key="never-sent") is None
    confirmed = adapter.confirm(idempotency_key=f"confirm-{vendor}", hold_id=hold.booking_id)
    assert confirmed.status == "CONFIRMED" and confirmed.booking_id == hold.booking_id
    cancelled = adapter.cancel(idempotency_key=f"cancel-{vendor}", booking_id=hold.booking_id)
    assert cancelled.status == "CANCELLED"
    assert [e["type"] for e in handle.entries()] == ["hold", "confirm", "cancel"]


def test_an_expired_hold_cannot_be_confirmed(simulator_control):
    simulator_control.hotels.vendor("stayhub").control(holdTtlSeconds=0.2)
    adapter = hotel_vendor("stayhub")
    offer = adapter.search(area=MAD, check_in=CHECK_IN, nights=1, rooms=1, occupancy=1)[0]
    hold = adapter.hold(idempotency_key="h", offer_ref=offer.ref, rooms=1, reference="r")
    time.sleep(0.3)
    with pytest.raises(ProviderPermanentError) as error:
        adapter.confirm(idempotency_key="c", hold_id=hold.booking_id)
    assert error.value.code == "hold_expired"


def test_faults_are_per_vendor_and_each_vendor_has_its_breaker(simulator_control, settings):
    settings.NEXA_BREAKER_FAIL_MAX = 2
    simulator_control.hotels.vendor("nightbed").error_rate(1.0)
    for _ in range(2):
        with pytest.raises(ProviderTransientError):
            hotel_vendor("nightbed").search(area=MAD, check_in=CHECK_IN, nights=1, rooms=1, occupancy=1)
    with pytest.raises(ProviderUnavailable):
        hotel_vendor("nightbed").search(area=MAD, check_in=CHECK_IN, nights=1, rooms=1, occupancy=1)
    # the other vendors' circuits are untouched
    assert hotel_vendor("stayhub").search(area=MAD, check_in=CHECK_IN, nights=1, rooms=1, occupancy=1)


def test_no_inventory_switch_and_reset(simulator_control):
    simulator_control.hotels.vendor("globerooms").control(inventory="none")
    assert hotel_vendor("globerooms").search(area=MAD, check_in=CHECK_IN, nights=1, rooms=1, occupancy=1) == []
    simulator_control.hotels.reset()
    assert hotel_vendor("globerooms").search(area=MAD, check_in=CHECK_IN, nights=1, rooms=1, occupancy=1)


def test_a_hung_vendor_answers_nothing_until_released(simulator_control):
    handle = simulator_control.hotels.vendor("stayhub")
    handle.hang()
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{handle.url}/hotel-api/1.0/hotels", json={}, timeout=0.5)
    handle.hang(False)
    assert httpx.post(f"{handle.url}/hotel-api/1.0/hotels", json={}, timeout=2).status_code == 400
