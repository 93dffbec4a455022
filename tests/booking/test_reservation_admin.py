"""Reservations in Django admin: read-only, filtered by status and source, found by confirmation number,
for the airline's operators only."""

import pytest
from django.urls import reverse

from booking.models import ReservationSource, ReservationStatus
from nexa.platform.roles import Role
from tests.admin_users import staff_operator
from tests.booking.factories import ReservationFactory
from tests.cases.factories import CaseFactory, SubCaseFactory

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:booking_reservation_changelist")


@pytest.fixture
def rows():
    return {
        "confirmed": ReservationFactory(confirmation_number="IB-CONF-1", rooms=[[SubCaseFactory()]]),
        "cancelled": ReservationFactory(
            confirmation_number="IB-CONF-2",
            status=ReservationStatus.CANCELLED,
            source=ReservationSource.VENDOR,
            rooms=[[SubCaseFactory()]],
        ),
        "foreign": ReservationFactory(case=CaseFactory(airline="LH"), confirmation_number="LH-CONF-9", rooms=[]),
    }


def test_operator_filters_searches_and_cannot_change(client, rows):
    user, _ = staff_operator("IB", Role.OPS_SUPERVISOR)
    client.force_login(user)
    listing = client.get(CHANGELIST)
    assert listing.status_code == 200
    assert "IB-CONF-1" in listing.text and "IB-CONF-2" in listing.text and "LH-CONF-9" not in listing.text
    cancelled = client.get(CHANGELIST, {"status__exact": "CANCELLED"}).text
    assert "IB-CONF-2" in cancelled and "IB-CONF-1" not in cancelled
    vendor = client.get(CHANGELIST, {"source__exact": "VENDOR"}).text
    assert "IB-CONF-2" in vendor and "IB-CONF-1" not in vendor
    found = client.get(CHANGELIST, {"q": "IB-CONF-1"}).text
    assert "IB-CONF-1" in found and "IB-CONF-2" not in found

    change = reverse("admin:booking_reservation_change", args=[rows["confirmed"].pk])
    page = client.get(change)
    assert page.status_code == 200 and 'name="confirmation_number"' not in page.text  # read-only
    client.post(change, {"confirmation_number": "HACKED"})
    rows["confirmed"].refresh_from_db()
    assert rows["confirmed"].confirmation_number == "IB-CONF-1"
    foreign = reverse("admin:booking_reservation_change", args=[rows["foreign"].pk])
    assert client.get(foreign).status_code in (302, 404)


def test_reservations_by_airport_flight_number_and_pnr(client):
    user, _ = staff_operator("IB", Role.OPS_SUPERVISOR)
    client.force_login(user)
    madrid_case = CaseFactory(airport="MAD", flight_number="IB3166")
    madrid = ReservationFactory(
        case=madrid_case, confirmation_number="MAD-CONF", rooms=[[SubCaseFactory(case=madrid_case, pnr="PNRMAD")]]
    )
    bilbao = ReservationFactory(case=CaseFactory(airport="BIO", flight_number="IB0427"), confirmation_number="BIO-CONF")
    ReservationFactory(
        case=CaseFactory(airline="LH", airport="MAD", flight_number="LH3166"), confirmation_number="LH-X"
    )

    def listed(params):
        response = client.get(CHANGELIST, params)
        assert response.status_code == 200
        return {row.confirmation_number for row in response.context["cl"].result_list}

    assert listed({"case__airport": "MAD"}) == {madrid.confirmation_number}
    assert listed({"q": "3166"}) == {"MAD-CONF"}
    assert listed({"q": "PNRMAD"}) == {"MAD-CONF"}
    assert listed({"case__airport": "BIO"}) == {bilbao.confirmation_number}
