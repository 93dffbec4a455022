"""Every cases route against the platform contracts: 401 without a token, the role matrix of
spec 000 (403 problem below the minimum), 404 for another airline's objects, 400 for malformed URNs."""

from dataclasses import dataclass

import pytest
from rest_framework.test import APIClient

from nexa.platform.roles import Role
from tests.cases.factories import CaseFactory, SubCaseFactory, passenger_row

pytestmark = pytest.mark.django_db

OPERATOR_PLUS = {Role.ADMIN, Role.OPS_SUPERVISOR, Role.AIRPORT_OPERATOR}
SUPERVISOR_PLUS = {Role.ADMIN, Role.OPS_SUPERVISOR}


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # {case} / {subcase} are filled in
    allowed: frozenset
    success: int
    body: dict | None = None


ROUTES = {
    "list cases": Route("get", "/v1/cases", frozenset(OPERATOR_PLUS), 200),
    "declare": Route(
        "post",
        "/v1/cases",
        frozenset(SUPERVISOR_PLUS),
        201,
        {
            "airport": "BCN",
            "flightNumber": "IB2001",
            "flightDate": "2026-11-22",
            "scheduledDeparture": "2026-11-22T10:00:00Z",
            "cause": "DELAY",
        },
    ),
    "dashboard": Route("get", "/v1/cases/dashboard", frozenset(OPERATOR_PLUS), 200),
    "case detail": Route("get", "/v1/cases/{case}", frozenset(OPERATOR_PLUS), 200),
    "manifest": Route("get", "/v1/cases/{case}/manifest", frozenset(OPERATOR_PLUS), 200),
    "manifest append": Route(
        "post", "/v1/cases/{case}/manifest", frozenset(SUPERVISOR_PLUS), 201, {"passengers": [passenger_row(7)]}
    ),
    "passenger groups": Route("post", "/v1/cases/{case}/passenger-groups", frozenset(OPERATOR_PLUS), 201, {}),
    "transition": Route(
        "post",
        "/v1/subcases/{subcase}/transition",
        frozenset(OPERATOR_PLUS),
        200,
        {"transition": "mark_grouped", "version": 1},
    ),
}
URN_ROUTES = {name: route for name, route in ROUTES.items() if "{" in route.path}


@pytest.fixture
def world():
    """One IB case with a passenger, and the same for LH."""
    ib_passenger = SubCaseFactory(case=CaseFactory(airline="IB"), airline="IB")
    lh_passenger = SubCaseFactory(case=CaseFactory(airline="LH", flight_number="LH1114"), airline="LH")
    return {"IB": ib_passenger, "LH": lh_passenger}


def call(client: APIClient, route: Route, passenger):
    path = route.path.format(case=passenger.case.urn, subcase=passenger.urn)
    if route.method == "get":
        return client.get(path)
    return client.post(path, route.body, format="json")


def assert_problem(response, status: int, slug: str):
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["type"].endswith("/" + slug)


@pytest.mark.parametrize("name", ROUTES)
@pytest.mark.parametrize("role", list(Role))
def test_role_matrix(client_for, world, name, role):
    route = ROUTES[name]
    response = call(client_for("IB", role), route, world["IB"])
    if role in route.allowed:
        assert response.status_code == route.success, response.content
    else:
        assert_problem(response, 403, "forbidden")
        assert str(role) in response.json()["detail"]


@pytest.mark.parametrize("name", ROUTES)
def test_no_token_is_401(world, name):
    assert_problem(call(APIClient(), ROUTES[name], world["IB"]), 401, "unauthorized")


@pytest.mark.parametrize("name", URN_ROUTES)
def test_another_airlines_objects_are_404(client_for, world, name):
    route = URN_ROUTES[name]
    response = call(client_for("IB", Role.ADMIN), route, world["LH"])
    assert_problem(response, 404, "not-found")
    world["LH"].refresh_from_db()
    assert world["LH"].version == 1 and world["LH"].status == "PENDING"  # nothing changed either


@pytest.mark.parametrize("name", URN_ROUTES)
def test_malformed_urns_are_400(client_for, name):
    route = URN_ROUTES[name]
    path = route.path.format(case="urn:nexa:case:not-a-uuid", subcase="urn:nexa:case:01a20000-0000-7000-8000-0000")
    client = client_for("IB", Role.ADMIN)
    response = client.get(path) if route.method == "get" else client.post(path, route.body, format="json")
    assert_problem(response, 400, "validation-error")


def test_wrong_kind_of_urn_is_400(client_for, world):
    response = client_for("IB").get(f"/v1/cases/{world['IB'].urn}")
    assert_problem(response, 400, "validation-error")
    assert "expected a urn:nexa:case" in response.json()["detail"]


def test_case_list_holds_only_the_callers_airline(client_for, world):
    listed = [item["urn"] for item in client_for("IB").get("/v1/cases").json()["items"]]
    assert listed == [world["IB"].case.urn]


# The dashboard reads its sections on their own connections, so the rows must be committed.
@pytest.mark.django_db(transaction=True)
def test_dashboard_cases_section_holds_only_the_callers_airline(client_for, world):
    response = client_for("IB").get("/v1/cases/dashboard")
    assert response.status_code == 200, response.content
    section = response.json()["cases"]
    assert section["counts"]["total"] == 1
    assert section["counts"]["byAirport"] == [
        {"airport": "MAD", "total": 1, "byStatus": {**dict.fromkeys(section["counts"]["byStatus"], 0), "OPEN": 1}}
    ]
    assert [entry["urn"] for entry in section["oldestOpen"]] == [world["IB"].case.urn]


def test_openapi_documents_every_route(client):
    schema = client.get("/v1/openapi.json").json()
    paths = schema["paths"]
    expected = {
        "/v1/cases": {"get", "post"},
        "/v1/cases/dashboard": {"get"},
        "/v1/cases/{case_urn}": {"get"},
        "/v1/cases/{case_urn}/manifest": {"get", "post"},
        "/v1/cases/{case_urn}/passenger-groups": {"post"},
        "/v1/subcases/{sub_case_urn}/transition": {"post"},
    }
    for path, methods in expected.items():
        assert methods <= set(paths[path]), path
    list_params = {p["name"] for p in paths["/v1/cases"]["get"]["parameters"]}
    assert {"status", "airport", "from", "to", "limit", "cursor"} <= list_params
    declare = paths["/v1/cases"]["post"]
    assert "201" in declare["responses"] and "requestBody" in declare
    assert "PassengerRowRequest" in schema["components"]["schemas"]
