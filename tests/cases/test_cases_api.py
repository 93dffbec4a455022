"""Declaring, listing and reading cases over HTTP."""

import datetime as dt
import threading

import pytest
from django.db import connection
from django.test import override_settings

from audit.models import AuditEntry
from cases.models import Case, CaseStatus, SubCase, SubCaseStatus
from nexa.platform.models import OutboxEvent
from nexa.platform.roles import Role
from tests.cases.factories import CaseFactory, SubCaseFactory, declaration, passenger_row

pytestmark = pytest.mark.django_db


@pytest.fixture
def supervisor(client_for):
    return client_for("IB", Role.OPS_SUPERVISOR, "urn:nexa:user:ib-sup")


@pytest.fixture
def operator(client_for):
    return client_for("IB", Role.AIRPORT_OPERATOR)


def error_fields(response) -> list[str]:
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/problem+json"
    return [error["field"] for error in response.json()["errors"]]


# --- declare ---------------------------------------------------------------------------------------


def test_declare_creates_the_case_with_its_manifest(supervisor):
    body = declaration(flightNumber="ib 3166", passengers=[passenger_row(1), passenger_row(2, tier="BUSINESS")])
    response = supervisor.post("/v1/cases", body, format="json")

    assert response.status_code == 201, response.content
    data = response.json()
    assert response["Location"] == f"/v1/cases/{data['urn']}"
    assert data["urn"].startswith("urn:nexa:case:")
    assert data["airline"] == "IB" and data["airport"] == "MAD" and data["flightNumber"] == "IB3166"
    assert data["status"] == "OPEN" and data["version"] == 1
    assert data["declaredBy"] == "urn:nexa:user:ib-sup"
    assert data["retentionUntil"] == "2027-02-20"  # flight date + 90 days
    assert data["passengerCount"] == 2 and data["counts"]["PENDING"] == 2

    case = Case.objects.get()
    assert SubCase.objects.filter(case=case).count() == 2
    assert list(AuditEntry.objects.filter(case_urn=case.urn).values_list("action", flat=True).order_by("action")) == [
        "case.declared",
        "case.manifest_appended",
    ]
    event = OutboxEvent.objects.get(event="case:updated")
    assert event.payload["caseUrn"] == case.urn and event.payload["counts"]["PENDING"] == 2
    assert event.rooms == [f"case:{case.urn}", "airline:IB"]


@override_settings(NEXA_PASSENGER_DATA_RETENTION_DAYS=30)
def test_retention_follows_the_setting(supervisor):
    response = supervisor.post("/v1/cases", declaration(), format="json")
    assert response.json()["retentionUntil"] == "2026-12-22"


def test_duplicate_open_declaration_is_409_pointing_at_the_existing_case(supervisor):
    first = supervisor.post("/v1/cases", declaration(), format="json").json()
    response = supervisor.post("/v1/cases", declaration(note="again"), format="json")
    assert response.status_code == 409
    assert response.json()["type"].endswith("/duplicate-case")
    assert response.json()["existingCaseUrn"] == first["urn"]
    assert Case.objects.count() == 1


def test_a_closed_case_does_not_block_a_new_declaration(supervisor):
    CaseFactory(flight_number="IB3166", status=CaseStatus.CLOSED)
    assert supervisor.post("/v1/cases", declaration(), format="json").status_code == 201


def test_same_flight_in_another_airline_is_not_a_duplicate(supervisor):
    CaseFactory(airline="LH", flight_number="IB3166")
    assert supervisor.post("/v1/cases", declaration(), format="json").status_code == 201


@pytest.mark.parametrize(
    ("overrides", "fields"),
    [
        ({"airport": "ZZZ"}, ["airport"]),
        ({"airport": "MADRID"}, ["airport"]),
        ({"cause": "STRIKE"}, ["cause"]),
        ({"flightNumber": "not a flight"}, ["flightNumber"]),
        ({"flightDate": "2026-13-01"}, ["flightDate"]),
        ({"scheduledDeparture": "tomorrow"}, ["scheduledDeparture"]),
        ({"scheduledDeparture": "2026-11-22T21:40:00"}, ["scheduledDeparture"]),  # no UTC offset
        ({"scheduledDeparture": "2026-12-25T21:40:00Z"}, ["scheduledDeparture"]),  # far from the flight date
        ({"airport": None, "cause": None}, ["airport", "cause"]),
    ],
)
def test_invalid_declarations_are_400_naming_the_fields(supervisor, overrides, fields):
    response = supervisor.post("/v1/cases", declaration(**overrides), format="json")
    assert sorted(error_fields(response)) == sorted(fields)
    assert Case.objects.count() == 0


def test_invalid_passenger_in_a_declaration_creates_nothing(supervisor):
    body = declaration(passengers=[passenger_row(1), passenger_row(2, email="nope")])
    assert error_fields(supervisor.post("/v1/cases", body, format="json")) == ["passengers[1].email"]
    assert Case.objects.count() == 0 and SubCase.objects.count() == 0


def test_departure_near_midnight_local_time_is_accepted(supervisor):
    # 00:30 local in Madrid on the 23rd is 23:30 UTC on the 22nd: one day of tolerance either way.
    body = declaration(flightDate="2026-11-23", scheduledDeparture="2026-11-22T23:30:00Z")
    assert supervisor.post("/v1/cases", body, format="json").status_code == 201


@pytest.mark.django_db(transaction=True)
def test_concurrent_duplicate_declarations_one_wins_one_409(client_for):
    """Both requests pass the "already open?" check; the partial unique index decides."""
    barrier = threading.Barrier(2)
    results: list[int] = []
    bodies: list[dict] = []

    def declare():
        client = client_for("IB", Role.OPS_SUPERVISOR)
        barrier.wait()
        response = client.post("/v1/cases", declaration(), format="json")
        results.append(response.status_code)
        bodies.append(response.json())
        connection.close()

    threads = [threading.Thread(target=declare) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [201, 409]
    winner = next(body for body in bodies if "urn" in body)
    loser = next(body for body in bodies if "existingCaseUrn" in body)
    assert loser["existingCaseUrn"] == winner["urn"]
    assert Case.objects.count() == 1


def test_idempotency_key_replays_the_declaration(supervisor):
    headers = {"HTTP_IDEMPOTENCY_KEY": "declare-ib3166"}
    first = supervisor.post("/v1/cases", declaration(), format="json", **headers)
    again = supervisor.post("/v1/cases", declaration(), format="json", **headers)
    assert first.status_code == again.status_code == 201
    assert again["Idempotent-Replayed"] == "true" and again.content == first.content
    assert Case.objects.count() == 1


# --- detail ----------------------------------------------------------------------------------------


def test_detail_counts_sub_cases_by_status(operator):
    case = CaseFactory(status=CaseStatus.IN_PROGRESS)
    SubCaseFactory.create_batch(2, case=case)
    SubCaseFactory(case=case, status="GROUPED")
    data = operator.get(f"/v1/cases/{case.urn}").json()
    assert data["urn"] == case.urn and data["status"] == "IN_PROGRESS"
    assert data["passengerCount"] == 3
    assert data["counts"]["PENDING"] == 2 and data["counts"]["GROUPED"] == 1 and data["counts"]["BOOKED"] == 0
    assert set(data["counts"]) == set(SubCaseStatus.values)


def test_unknown_case_is_404(operator):
    response = operator.get("/v1/cases/urn:nexa:case:01a20000-0000-7000-8000-000000000000")
    assert response.status_code == 404


# --- list ------------------------------------------------------------------------------------------


def at(day: int, hour: int = 12) -> dt.datetime:
    return dt.datetime(2026, 11, day, hour, tzinfo=dt.UTC)


@pytest.fixture
def listed_cases():
    return {
        "mad_open": CaseFactory(airport="MAD", scheduled_departure=at(20)),
        "bcn_open": CaseFactory(airport="BCN", scheduled_departure=at(21)),
        "mad_closed": CaseFactory(airport="MAD", scheduled_departure=at(22), status=CaseStatus.CLOSED),
        "mad_late": CaseFactory(airport="MAD", scheduled_departure=at(22, 23)),
    }


def urns(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [item["urn"] for item in response.json()["items"]]


def test_list_newest_departure_first(operator, listed_cases):
    c = listed_cases
    assert urns(operator.get("/v1/cases")) == [
        c["mad_late"].urn,
        c["mad_closed"].urn,
        c["bcn_open"].urn,
        c["mad_open"].urn,
    ]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"status": "CLOSED"}, ["mad_closed"]),
        ({"status": "OPEN", "airport": "MAD"}, ["mad_late", "mad_open"]),
        ({"airport": "bcn"}, ["bcn_open"]),
        ({"from": "2026-11-21"}, ["mad_late", "mad_closed", "bcn_open"]),
        ({"to": "2026-11-21"}, ["bcn_open", "mad_open"]),  # a date covers the whole day
        # [from, to): a date-time to is exclusive on every list route (nexa.platform.filters) …
        ({"from": "2026-11-21T12:00:00Z", "to": "2026-11-22T12:00:00+00:00"}, ["bcn_open"]),
        ({"to": "2026-11-22T13:00:00+01:00"}, ["bcn_open", "mad_open"]),
        ({"to": "2026-11-22T12:00:00.000001Z"}, ["mad_closed", "bcn_open", "mad_open"]),
        # … and a date is its whole UTC day, as from and as to.
        ({"from": "2026-11-22", "to": "2026-11-22"}, ["mad_late", "mad_closed"]),
    ],
)
def test_list_filters(operator, listed_cases, params, expected):
    assert urns(operator.get("/v1/cases", params)) == [listed_cases[name].urn for name in expected]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "DONE"}, "status"),
        ({"status": "open"}, "status"),
        ({"airport": "XXX"}, "airport"),
        ({"airport": "MADX"}, "airport"),
        ({"from": "yesterday"}, "from"),
        ({"to": "2026-11-22T10:00:00"}, "to"),  # no offset
        ({"from": "2026-11-22", "to": "2026-11-20"}, "to"),
        ({"limit": "0"}, "limit"),
        ({"cursor": "garbage"}, "cursor"),
    ],
)
def test_invalid_filter_values_are_400_naming_the_parameter(operator, params, field):
    assert error_fields(operator.get("/v1/cases", params)) == [field]


def test_pagination_walks_every_case_once_and_ignores_later_inserts(operator):
    created = [CaseFactory(scheduled_departure=at(1) + dt.timedelta(hours=i)) for i in range(23)]
    seen: list[str] = []
    params = {"limit": 5}
    pages = 0
    while True:
        body = operator.get("/v1/cases", params).json()
        seen += [item["urn"] for item in body["items"]]
        pages += 1
        if pages == 1:
            CaseFactory(scheduled_departure=at(1))  # inserted mid-walk: not in this walk
        if not body["hasMore"]:
            assert body["nextCursor"] is None
            break
        params["cursor"] = body["nextCursor"]
    assert pages == 5
    assert seen == [case.urn for case in reversed(created)]


def test_cursor_is_bound_to_its_filters(operator, listed_cases):
    body = operator.get("/v1/cases", {"airport": "MAD", "limit": 1}).json()
    response = operator.get("/v1/cases", {"airport": "BCN", "limit": 1, "cursor": body["nextCursor"]})
    assert error_fields(response) == ["cursor"]
