"""GET /v1/cases/dashboard: cases, operators and audit sections fetched concurrently; one failing
and one hanging section become partialFailures while the rest renders.

Sections run in their own threads with their own database connections, so these tests commit
their data (transactional database) instead of hiding it in the test's transaction.
"""

import datetime as dt
import threading
import time

import pytest
from django.db.models.functions import Now

from cases.services import case_declare
from nexa.dashboard import DASHBOARD_SECTIONS, LATEST_AUDIT_ACTIONS
from nexa.platform.auth import Principal
from nexa.platform.problems import downstream_unavailable_problem
from nexa.platform.roles import Role
from operators.models import Operator, OperatorSession
from operators.services import operator_session_open
from tests.audit.db_plugin import _audit_rows_purged_before_flush  # noqa: F401 - autouse fixture
from tests.audit.factories import AuditEntryFactory

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/v1/cases/dashboard"
DEPARTURE = dt.datetime(2026, 3, 10, 21, 30, tzinfo=dt.UTC)


def supervisor(airline: str) -> Principal:
    return Principal(
        airline=airline,
        role=Role.OPS_SUPERVISOR,
        operator_urn=f"urn:nexa:user:{airline.lower()}-sup",
        subject=f"{airline}-sup",
    )


def declare(airline: str, flight_number: str, airport: str = "MAD", passengers: int = 0):
    return case_declare(
        principal=supervisor(airline),
        airport=airport,
        flight_number=flight_number,
        flight_date=DEPARTURE.date(),
        scheduled_departure=DEPARTURE,
        cause="CANCELLATION",
        passengers=[{"firstName": f"Ana{i}", "lastName": "Garcia", "pnr": f"PNR{i:03d}"} for i in range(passengers)],
    )


@pytest.fixture
def extra_section(monkeypatch):
    """Register an extra dashboard section for one test (the registry is restored afterwards)."""

    def register(name, section):
        monkeypatch.setitem(DASHBOARD_SECTIONS, name, section)

    return register


@pytest.fixture
def hanging_section():
    """A section that blocks until the test ends, then is released (no thread outlives the test)."""
    release = threading.Event()

    def section(principal):
        release.wait(30)
        return {"late": True}

    yield section
    release.set()


def failing_section(principal):
    raise RuntimeError("vendor exploded with internals")


# --- roles -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", list(Role))
def test_role_matrix(client_for, role):
    response = client_for("IB", role).get(URL)
    if role is Role.FINANCE_AUDIT:
        assert response.status_code == 403
        assert response["Content-Type"] == "application/problem+json"
    else:
        assert response.status_code == 200, response.content


def test_token_required(client):
    assert client.get(URL).status_code == 401


# --- content and tenancy ---------------------------------------------------------------------------


def test_sections_show_only_the_callers_airline(client_for):
    madrid = declare("IB", "IB3170", "MAD", passengers=2)
    declare("IB", "IB0456", "BCN")
    declare("LH", "LH1114", "FRA", passengers=3)
    Operator.objects.create(operator_urn="urn:nexa:user:ana", airline="IB", role="AIRPORT_OPERATOR", display_name="Ana")
    Operator.objects.create(operator_urn="urn:nexa:user:bo", airline="IB", role="OPS_SUPERVISOR", display_name="Bo")
    Operator.objects.create(
        operator_urn="urn:nexa:user:gone", airline="IB", role="AIRPORT_OPERATOR", display_name="Gone", active=False
    )
    Operator.objects.create(operator_urn="urn:nexa:user:lh", airline="LH", role="ADMIN", display_name="Lena")
    # Live sockets: Ana (IB) and Lena (LH); Bo's only session went stale.
    sockets = (("IB", "ana", Role.AIRPORT_OPERATOR), ("LH", "lh", Role.ADMIN), ("IB", "bo", Role.OPS_SUPERVISOR))
    for airline, operator, role in sockets:
        urn = f"urn:nexa:user:{operator}"
        principal = Principal(airline=airline, role=role, operator_urn=urn, subject=urn)
        operator_session_open(principal=principal, session_id=f"s-{operator}", server_instance="test")
    OperatorSession.objects.filter(session_id="s-bo").update(last_seen_at=Now() - dt.timedelta(hours=1))

    response = client_for("IB", Role.AIRPORT_OPERATOR).get(URL)
    assert response.status_code == 200
    body = response.json()
    assert body["partialFailures"] == []

    counts = body["cases"]["counts"]
    assert counts["total"] == 2
    assert {entry["airport"] for entry in counts["byAirport"]} == {"MAD", "BCN"}
    oldest = body["cases"]["oldestOpen"]
    assert oldest[0]["urn"] == madrid.urn
    assert {case["flightNumber"] for case in oldest} == {"IB3170", "IB0456"}
    # Instants go on the wire like every other route's: UTC with a Z (nexa.platform.instants.iso).
    assert oldest[0]["scheduledDeparture"] == "2026-03-10T21:30:00Z"
    assert all(case["openSince"].endswith("Z") for case in oldest)

    assert body["operators"] == {
        "operators": [
            {"operatorUrn": "urn:nexa:user:ana", "displayName": "Ana", "role": "AIRPORT_OPERATOR"},
            {"operatorUrn": "urn:nexa:user:bo", "displayName": "Bo", "role": "OPS_SUPERVISOR"},
        ],
        "online": ["urn:nexa:user:ana"],
    }

    latest = body["audit"]["latest"]
    assert latest, "declaring cases writes audit rows"
    assert {entry["caseUrn"] for entry in latest} <= {madrid.urn, *(c["urn"] for c in oldest)}
    assert all(entry["actor"] == "urn:nexa:user:ib-sup" for entry in latest)
    assert latest[0].keys() == {"urn", "actor", "action", "entityUrn", "caseUrn", "createdAt"}
    assert all(entry["createdAt"].endswith("Z") and "+00:00" not in entry["createdAt"] for entry in latest)
    assert [entry["createdAt"] for entry in latest] == sorted((entry["createdAt"] for entry in latest), reverse=True)


def test_audit_section_is_the_latest_twenty(client_for):
    entries = [
        AuditEntryFactory(created_at=dt.datetime(2026, 3, 10, 12, minute, tzinfo=dt.UTC)) for minute in range(25)
    ]
    latest = client_for().get(URL).json()["audit"]["latest"]
    assert len(latest) == LATEST_AUDIT_ACTIONS == 20
    assert [entry["urn"] for entry in latest] == [entry.urn for entry in reversed(entries)][:20]


# --- partial failures ------------------------------------------------------------------------------


def test_one_failing_and_one_hanging_section(client_for, settings, extra_section, hanging_section):
    settings.NEXA_COMPOSITION_TIMEOUT_SECONDS = 0.5
    declare("IB", "IB3170")
    extra_section("review", failing_section)
    extra_section("booking", hanging_section)

    started = time.perf_counter()
    response = client_for().get(URL)
    elapsed = time.perf_counter() - started

    assert response.status_code == 200
    assert 0.5 <= elapsed < 1.5  # answered at the timeout, not when the hung section ends (30 s)
    body = response.json()
    assert body["partialFailures"] == [
        {"domain": "review", "status": "error", "detail": "The review section failed."},
        {"domain": "booking", "status": "timeout", "detail": "The booking section did not answer within 0.5 s."},
    ]
    assert body["review"] is None and body["booking"] is None
    assert body["cases"]["counts"]["total"] == 1
    assert body["operators"]["online"] == []
    assert body["audit"]["latest"][0]["action"]
    assert "internals" not in response.content.decode()


def test_a_section_with_an_open_circuit_reports_its_problem_status(client_for, extra_section):
    def booking(principal):
        raise downstream_unavailable_problem("booking")

    extra_section("booking", booking)
    body = client_for().get(URL).json()
    assert body["partialFailures"] == [
        {"domain": "booking", "status": "503", "detail": "The booking circuit is open; try again later."}
    ]


def test_sections_run_concurrently(client_for, extra_section):
    def sleeper(name):
        def section(principal):
            time.sleep(0.3)
            return {"slept": name, "airline": principal.airline}

        return section

    for name in ("review", "booking", "notifications"):
        extra_section(name, sleeper(name))
    started = time.perf_counter()
    body = client_for("IB").get(URL).json()
    elapsed = time.perf_counter() - started
    assert body["review"] == {"slept": "review", "airline": "IB"}
    assert body["partialFailures"] == []
    assert 0.3 <= elapsed < 0.75  # one sleep, not three (0.9 s)
