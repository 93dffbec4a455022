"""booking.selectors.contract_offers (what the hotel search and allocation see first) and the demo seed."""

import datetime as dt
from decimal import Decimal

import pytest

from booking.contracts.models import Contract
from booking.contracts.services import catalog_hotel_urns
from booking.hotels import hotels_seed_demo
from booking.models import Hotel
from booking.selectors import ContractOffer, contract_offers
from booking.services import demo_contracts_seed
from nexa.platform.urns import parse_urn
from tests.booking.test_contracts_api import hotel_urn, make_contract, supervisor_of

pytestmark = pytest.mark.django_db


def test_offers_cover_every_night_of_the_stay_at_the_airport():
    covering = make_contract(validFrom="2030-01-01", validTo="2030-01-31", allotment=10)
    make_contract(validFrom="2030-01-05", validTo="2030-01-31")  # starts after check-in
    make_contract(validFrom="2030-01-01", validTo="2030-01-02")  # ends before the last night
    make_contract(airport="FRA", validFrom="2030-01-01", validTo="2030-01-31")  # another airport
    make_contract("LH", validFrom="2030-01-01", validTo="2030-01-31")  # another airline

    offers = contract_offers(
        airline="IB",
        airport="MAD",
        check_in=dt.date(2030, 1, 2),
        nights=2,
        rooms=4,
        at=dt.datetime(2030, 1, 1, tzinfo=dt.UTC),
    )
    assert [offer.contract_urn for offer in offers] == [covering.urn]
    offer = offers[0]
    assert isinstance(offer, ContractOffer)
    assert (offer.hotel_urn, offer.rooms_available, offer.sufficient) == (covering.hotel_urn, 10, True)
    assert (offer.nightly_rate, offer.currency, offer.meals_included) == (Decimal("89.50"), "EUR", ("BREAKFAST",))
    # 48 release hours before the night of 2 January starts in Madrid (UTC+1)
    assert offer.release_at == dt.datetime(2029, 12, 30, 23, 0, tzinfo=dt.UTC)
    assert offer.guaranteed is False  # that time has passed


def test_offers_by_hotel_urns_ranked_sufficient_guaranteed_then_cheapest():
    small = make_contract(
        validFrom="2099-01-01", validTo="2099-12-31", allotment=2, rate={"amount": "50.00", "currency": "EUR"}
    )
    cheap = make_contract(
        validFrom="2099-01-01", validTo="2099-12-31", allotment=20, rate={"amount": "70.00", "currency": "EUR"}
    )
    dear = make_contract(
        validFrom="2099-01-01", validTo="2099-12-31", allotment=20, rate={"amount": "120.00", "currency": "EUR"}
    )
    offers = contract_offers(
        airline="IB",
        hotel_urns=[small.hotel_urn, cheap.hotel_urn, dear.hotel_urn],
        check_in=dt.date(2099, 3, 1),
        nights=1,
        rooms=5,
        at=dt.datetime(2099, 1, 1, tzinfo=dt.UTC),
    )
    assert [offer.contract_urn for offer in offers] == [cheap.urn, dear.urn, small.urn]
    assert [offer.guaranteed for offer in offers] == [True, True, True]
    assert contract_offers(airline="IB", hotel_urns=[], check_in=dt.date(2099, 3, 1), nights=1, rooms=1) == []


def test_offers_use_the_current_version_only():
    contract = make_contract(validFrom="2030-01-01", validTo="2030-12-31", allotment=10)
    Contract.objects.filter(pk=contract.pk).update(current=False)
    assert contract_offers(airline="IB", check_in=dt.date(2030, 5, 1), nights=1, rooms=1) == []


def test_offers_refuse_a_stay_of_no_nights():
    with pytest.raises(ValueError):
        contract_offers(airline="IB", check_in=dt.date(2030, 5, 1), nights=0, rooms=1)


def test_demo_seed_makes_contracts_for_the_hotels_given_and_is_idempotent():
    hotels = {("IB", "MAD"): [hotel_urn("IB", "MAD") for _ in range(3)], ("LH", "FRA"): [hotel_urn("LH", "FRA")]}
    lines = demo_contracts_seed(
        principal_for=supervisor_of,
        hotel_urns_for=lambda airline, airport: hotels.get((airline, airport), []),
        today=dt.date(2026, 12, 1),
    )
    assert len(lines) == 3  # two per airport at most
    assert Contract.objects.filter(airline="IB", airport="MAD").count() == 2
    assert Contract.objects.filter(airline="LH", airport="FRA").count() == 1
    offers = contract_offers(airline="IB", airport="MAD", check_in=dt.date(2026, 12, 1), nights=1, rooms=10)
    assert len(offers) == 2
    again = demo_contracts_seed(
        principal_for=supervisor_of,
        hotel_urns_for=lambda airline, airport: hotels.get((airline, airport), []),
        today=dt.date(2026, 12, 1),
    )
    assert again == [] and Contract.objects.count() == 3


def test_demo_seed_on_the_demo_catalog_contracts_its_nearest_hotels():
    for airline in ("IB", "LH"):
        hotels_seed_demo(airline=airline)
    lines = demo_contracts_seed(principal_for=supervisor_of, hotel_urns_for=catalog_hotel_urns)
    assert len(lines) == 4
    for contract in Contract.objects.all():
        hotel = Hotel.objects.get(airline=contract.airline, id=parse_urn(contract.hotel_urn, "hotel").id)
        assert hotel.airport == contract.airport


def test_demo_seed_without_hotels_makes_nothing():
    assert demo_contracts_seed(principal_for=supervisor_of, hotel_urns_for=lambda airline, airport: []) == []
    assert not Contract.objects.exists()
