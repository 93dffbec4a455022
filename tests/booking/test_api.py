"""GET /v1/airports/search: roles, the result shape and validation of q/limit."""

import pytest

from nexa.platform.roles import Role
from tests.api_base import APIContractTests, RouteContract

pytestmark = pytest.mark.django_db

ALLOWED = {Role.ADMIN, Role.OPS_SUPERVISOR, Role.AIRPORT_OPERATOR}


@pytest.mark.parametrize("role", list(Role))
def test_role_matrix(client_for, role):
    response = client_for("IB", role).get("/v1/airports/search", {"q": "MAD"})
    if role in ALLOWED:
        assert response.status_code == 200
    else:
        assert response.status_code == 403
        assert response["Content-Type"] == "application/problem+json"


def test_requires_a_token(client):
    response = client.get("/v1/airports/search", {"q": "MAD"})
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"


def test_search_by_iata_renders_the_airport(client_for):
    response = client_for().get("/v1/airports/search", {"q": "mad", "limit": 3})
    assert response.status_code == 200
    items = response.json()["items"]
    assert len(items) == 3
    assert items[0] == {
        "iata": "MAD",
        "icao": "LEMD",
        "name": "Madrid Barajas International Airport",
        "city": "Madrid",
        "country": "ES",
        "latitude": pytest.approx(40.4936, abs=0.01),
        "longitude": pytest.approx(-3.56676, abs=0.01),
        "timeZone": "Europe/Madrid",
    }


@pytest.mark.parametrize(
    ("query", "expected"),
    [("LHR", "LHR"), ("egll", "LHR"), ("Heathrow", "LHR"), ("Zurich", "ZRH"), ("barajas", "MAD")],
)
def test_search_by_code_name_and_city(client_for, query, expected):
    response = client_for().get("/v1/airports/search", {"q": query})
    assert response.status_code == 200
    assert expected in [item["iata"] for item in response.json()["items"]]


def test_the_catalog_is_the_same_for_every_airline(client_for):
    """Reference data, not tenant-owned: every airline sees the same catalog."""
    iberia = client_for("IB").get("/v1/airports/search", {"q": "London"}).json()
    lufthansa = client_for("LH").get("/v1/airports/search", {"q": "London"}).json()
    assert iberia == lufthansa


def test_no_match_is_an_empty_list(client_for):
    response = client_for().get("/v1/airports/search", {"q": "qqqzzzxx"})
    assert response.status_code == 200
    assert response.json() == {"items": []}


@pytest.mark.parametrize("params", [{}, {"q": ""}, {"q": "   "}, {"q": "x" * 101}])
def test_missing_empty_or_too_long_q_is_a_400_naming_q(client_for, params):
    response = client_for().get("/v1/airports/search", params)
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert [error["field"] for error in response.json()["errors"]] == ["q"]


@pytest.mark.parametrize("limit", ["0", "101", "-1", "ten", "2.5"])
def test_bad_limit_is_a_400_naming_limit(client_for, limit):
    response = client_for().get("/v1/airports/search", {"q": "MAD", "limit": limit})
    assert response.status_code == 400
    assert [error["field"] for error in response.json()["errors"]] == ["limit"]


class TestAirportsAPIContract(APIContractTests):
    routes = (
        RouteContract(
            "search",
            "GET",
            "/v1/airports/search?q=MAD",
            min_role=Role.AIRPORT_OPERATOR,
            check=lambda response, objects: response.json()["items"][0]["iata"] == "MAD",
        ),
    )

    def make_objects(self, airline):
        return {}  # the airport catalog is shared by every airline
