"""The console's booking section without a browser (Django's test client): what each role is offered and
allowed, a refusal shown beside the plan with its correlation URN, the plan's groups not placed, and the
printable voucher behind the tenant wall. The browser test (test_console_booking.py) works the whole flow."""

from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from cases import services as case_services
from cases.models import SagaRun, SubCaseStatus
from nexa.platform.auth import Principal
from nexa.platform.roles import Role
from tests.cases.booking_helpers import allocation_for, check_in_day, hotel, passengers, vendor_offer
from tests.cases.factories import CaseFactory
from tests.e2e.conftest import operator_urn

pytestmark = pytest.mark.django_db


def signed_in(username: str) -> Client:
    client = Client()
    client.force_login(get_user_model().objects.get(username=username))
    return client


@pytest.fixture
def planned(console_users):
    """An IB case with a PLANNED allocation of two passengers, and a group the engine could not place."""
    case = CaseFactory(airline="IB", airport="MAD")
    members = passengers(case, 2, first_name="Noa")
    day = check_in_day()
    allocation = allocation_for(case, [(members, [vendor_offer("IB", "mad-auditorium", check_in=day, rooms=2)])],
                                check_in=day)  # fmt: skip
    left = passengers(case, 1, status=SubCaseStatus.MANUAL_REVIEW, first_name="Iker")[0]
    allocation.plan["unallocated"] = [
        {
            "groupUrn": "urn:nexa:group:00000000-0000-4000-8000-000000000009",
            "groupLabel": "GRP-LEFT",
            "subCaseUrns": [left.urn],
            "category": "POLICY_VIOLATION",
            "reason": "no compliant room within 60 km",
        }
    ]
    allocation.save(update_fields=["plan"])
    return case, allocation, members


def test_the_section_shows_the_plan_and_offers_book_rooms_to_supervisors_only(console_users, planned):
    case, allocation, _ = planned
    url = f"/console/cases/{case.urn}/booking"
    supervisor = signed_in(console_users["supervisor"]).get(url).content.decode()
    assert allocation.urn in supervisor and "Hotel Auditorium Madrid" in supervisor and "book-rooms" in supervisor
    assert "GRP-LEFT" in supervisor and "POLICY_VIOLATION" in supervisor and "no compliant room" in supervisor
    assert "Iker" in supervisor and "Noa" in supervisor
    operator = signed_in(console_users["operator"]).get(url)
    assert operator.status_code == 200 and "Hotel Auditorium Madrid" in operator.content.decode()
    assert "book-rooms" not in operator.content.decode()
    assert signed_in(console_users["finance"]).get(url).status_code == 403
    assert signed_in(console_users["ux_operator"]).get(url).status_code == 404


def test_book_rooms_starts_the_sagas_and_a_second_one_is_refused_beside_the_plan(console_users, planned):
    case, allocation, members = planned
    url = f"/console/cases/{case.urn}/book-rooms"
    refused = signed_in(console_users["operator"]).post(url, {"allocation": allocation.urn}, HTTP_HX_REQUEST="true")
    assert refused.status_code == 403 and "OPS_SUPERVISOR" in refused.content.decode()
    assert not SagaRun.objects.filter(case=case).exists()

    supervisor = signed_in(console_users["supervisor"])
    answer = supervisor.post(url, {"allocation": allocation.urn}, HTTP_HX_REQUEST="true")
    assert answer.status_code == 200
    body = answer.content.decode()
    assert "1 room sagas started" in body and "hotel.hold" in body and "hotel.notify" in body
    assert {m.status for m in type(members[0]).objects.filter(case=case, first_name="Noa")} == {"BOOKING"}

    again = supervisor.post(url, {"allocation": allocation.urn}, HTTP_HX_REQUEST="true")
    assert again.status_code == 409 and again["HX-Retarget"] == "#booking-problem"
    text = again.content.decode()
    assert "allocation-not-planned" in text and "urn:nexa:correlation:" in text
    assert SagaRun.objects.filter(case=case).count() == 1

    malformed = supervisor.post(url, {"allocation": "nope"}, HTTP_HX_REQUEST="true")
    assert malformed.status_code == 400 and "allocation" in malformed.content.decode()


def test_allocate_needs_an_approved_wave_of_the_case(console_users, planned):
    case, allocation, _ = planned
    url = f"/console/cases/{case.urn}/allocate"
    answer = signed_in(console_users["supervisor"]).post(url, {"demand": allocation.plan["demandUrn"]})
    assert answer.status_code == 409 and "demand-not-approved" in answer.content.decode()


def test_the_printable_voucher_is_behind_the_tenant_wall(console_users, planned):
    case, _, _ = planned
    guests = passengers(case, 1, status=SubCaseStatus.GROUPED, first_name="Olaia", language="es")
    principal = Principal(
        airline="IB", role=Role.OPS_SUPERVISOR, operator_urn=operator_urn(console_users["supervisor"]), subject="t"
    )
    reservation = case_services.reservation_manual_book(
        principal=principal,
        case=case,
        hotel_id=hotel("IB", "mad-melia-barajas").pk,
        subcase_ids=[guest.pk for guest in guests],
        check_in=check_in_day(),
        nights=1,
        confirmation_number="MB-1234",
        amount=Decimal("95.00"),
        currency="EUR",
        reason="booked by phone",
    )
    section = signed_in(console_users["operator"]).get(f"/console/cases/{case.urn}/booking").content.decode()
    url = f"/console/reservations/{reservation.urn}/voucher"
    assert url in section and 'target="_blank"' in section
    voucher = signed_in(console_users["operator"]).get(url)
    assert voucher.status_code == 200 and voucher["Cache-Control"] == "private, no-store"
    html = voucher.content.decode()
    assert "Olaia" in html and "MB-1234" in html and "Confirmación" in html  # the guest's language
    assert "Confirmation" in signed_in(console_users["operator"]).get(url + "?lang=en").content.decode()
    assert signed_in(console_users["ux_operator"]).get(url).status_code == 404
