"""The console's server side without a browser (Django's test client): who may do what, the tenant wall,
the presence-channel token, the language preference. The browser tests (test_console_screens.py,
test_console_live.py) show the same through the pages."""

import datetime as dt

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from cases import services as case_services
from cases.models import DemandKind, DemandStatus, SubCaseStatus
from nexa.console.models import ConsolePreference
from nexa.console.views import SOCKET_TOKEN_TTL_SECONDS
from nexa.platform.auth import authenticate_token
from nexa.platform.roles import Role
from operators.models import Operator
from tests.cases.factories import CaseFactory, PassengerGroupFactory, SubCaseFactory
from tests.e2e.conftest import operator_urn

pytestmark = pytest.mark.django_db


def signed_in(username: str) -> Client:
    client = Client()
    client.force_login(get_user_model().objects.get(username=username))
    return client


@pytest.fixture
def pending_wave(console_users):
    from nexa.platform.auth import Principal

    case = CaseFactory(airline="IB")
    group = PassengerGroupFactory(case=case)
    SubCaseFactory(case=case, group=group, status=SubCaseStatus.GROUPED)
    principal = Principal(
        airline="IB", role=Role.AIRPORT_OPERATOR, operator_urn=operator_urn(console_users["operator"]), subject="t"
    )
    return case_services.demand_request(
        principal=principal, case=case, kind=DemandKind.INITIAL, check_in=dt.date.today(), nights=1, reason="r"
    )


def test_signed_out_pages_send_to_the_console_sign_in():
    answer = Client().get("/console/")
    assert answer.status_code == 302
    assert answer["Location"] == "/console/sign-in?next=/console/"
    assert Client().get("/").headers["Location"] == "/console/"


def test_the_sign_in_form_signs_in_and_sign_out_signs_out(console_users):
    client = Client()
    answer = client.post(
        "/console/sign-in",
        {"username": console_users["operator"], "password": "nexa-e2e-password", "next": "/console/"},
    )
    assert answer.status_code == 302 and answer["Location"] == "/console/"
    assert client.get("/console/").status_code == 200
    assert client.post("/console/sign-out").status_code == 302
    assert client.get("/console/").status_code == 302


def test_the_socket_token_is_a_short_lived_token_of_the_signed_in_operator(console_users):
    answer = signed_in(console_users["supervisor"]).get("/console/socket-token")
    assert answer.status_code == 200
    assert answer["Cache-Control"] == "no-store"
    principal = authenticate_token(answer.json()["token"])
    assert (principal.airline, principal.role, principal.operator_urn) == (
        "IB",
        Role.OPS_SUPERVISOR,
        operator_urn(console_users["supervisor"]),
    )
    lifetime = principal.expires_at - dt.datetime.now(dt.UTC)
    assert dt.timedelta(seconds=0) < lifetime <= dt.timedelta(seconds=SOCKET_TOKEN_TTL_SECONDS)


def test_no_token_and_no_page_without_an_active_operator(console_users):
    Operator.objects.filter(operator_urn=operator_urn(console_users["operator"])).update(active=False)
    client = signed_in(console_users["operator"])
    assert client.get("/console/socket-token").status_code == 403
    page = client.get("/console/")
    assert page.status_code == 403
    assert b"No active operator profile" in page.content


def test_an_operator_cannot_approve_a_wave(console_users, pending_wave):
    answer = signed_in(console_users["operator"]).post(f"/console/demand/{pending_wave.urn}/approve")
    assert answer.status_code == 403
    pending_wave.refresh_from_db()
    assert pending_wave.status == DemandStatus.PENDING_APPROVAL


def test_a_supervisor_approves_and_the_wave_is_approved(console_users, pending_wave):
    answer = signed_in(console_users["supervisor"]).post(
        f"/console/demand/{pending_wave.urn}/approve", headers={"HX-Request": "true"}
    )
    assert answer.status_code == 200
    pending_wave.refresh_from_db()
    assert pending_wave.status == DemandStatus.APPROVED
    assert pending_wave.resolved_by == operator_urn(console_users["supervisor"])


def test_another_airlines_wave_and_case_are_not_found(console_users, pending_wave):
    ux = signed_in(console_users["ux_operator"])
    assert ux.get(f"/console/cases/{pending_wave.case.urn}").status_code == 404
    Operator.objects.filter(operator_urn=operator_urn(console_users["ux_operator"])).update(role=Role.OPS_SUPERVISOR)
    assert ux.post(f"/console/demand/{pending_wave.urn}/approve").status_code == 404
    pending_wave.refresh_from_db()
    assert pending_wave.status == DemandStatus.PENDING_APPROVAL


def test_a_malformed_urn_in_the_address_is_not_found_not_a_server_error(console_users, pending_wave):
    supervisor = signed_in(console_users["supervisor"])
    assert supervisor.get("/console/cases/not-a-urn").status_code == 404
    assert supervisor.get(f"/console/cases/{pending_wave.urn}").status_code == 404  # a URN of another kind
    assert supervisor.post("/console/demand/urn:nexa:demand:nope/approve").status_code == 404


def test_the_language_is_stored_for_the_user_and_only_a_known_one(console_users):
    client = signed_in(console_users["operator"])
    assert client.post("/console/language", {"language": "es", "next": "https://evil.example/"})["Location"] == (
        "/console/"
    )
    assert ConsolePreference.objects.get(user__username=console_users["operator"]).language == "es"
    assert "Panel" in client.get("/console/").content.decode()
    client.post("/console/language", {"language": "xx"})
    assert ConsolePreference.objects.get(user__username=console_users["operator"]).language == "es"
