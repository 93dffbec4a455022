"""Contracts in Django admin: read-only, filtered by airport, currency and current version, searched by hotel
URN, for the airline's supervisors only."""

import datetime

import pytest
from django.urls import reverse

from booking.models import Contract
from nexa.platform.roles import Role
from tests.admin_users import staff_operator

pytestmark = pytest.mark.django_db

CONTRACTS = reverse("admin:booking_contract_changelist")


def _contract(airline: str, airport: str, hotel: str, currency: str = "EUR") -> Contract:
    return Contract.objects.create(
        airline=airline,
        hotel_urn=f"urn:nexa:hotel:01937a00-0000-7000-8000-0000000000{hotel}",
        airport=airport,
        valid_from=datetime.date(2030, 1, 1),
        valid_to=datetime.date(2030, 12, 31),
        allotment=9,
        rate_amount=99,
        rate_currency=currency,
        release_hours=0,
        created_by="urn:nexa:user:someone",
    )


def test_supervisor_filters_and_searches_the_airlines_contracts(client):
    user, _ = staff_operator("IB", Role.OPS_SUPERVISOR)
    client.force_login(user)
    madrid = _contract("IB", "MAD", "a1")
    bilbao = _contract("IB", "BIO", "b2", currency="USD")
    lufthansa = _contract("LH", "MAD", "c3")

    def listed(params):
        response = client.get(CONTRACTS, params)
        assert response.status_code == 200
        return {row.pk for row in response.context["cl"].result_list}

    assert listed({}) == {madrid.pk, bilbao.pk}
    assert listed({"airport": "MAD"}) == {madrid.pk}
    assert listed({"rate_currency": "USD"}) == {bilbao.pk}
    assert listed({"q": "0000000000b2"}) == {bilbao.pk}
    assert listed({"q": lufthansa.hotel_urn}) == set()


def test_an_airport_operator_gets_no_contracts(client):
    user, _ = staff_operator("IB", Role.AIRPORT_OPERATOR)
    client.force_login(user)
    _contract("IB", "MAD", "a1")
    assert client.get(CONTRACTS).status_code == 403
