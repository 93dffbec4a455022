"""Every cases route against the platform contracts, through the shared API test base
(tests/api_base.py): 401 without a token, the role matrix of spec 000 (403 problem below the
minimum), 404 for another airline's objects, 400 for malformed URNs, audit rows for writes. Then
what is specific to the cases routes: tenant-scoped lists and dashboard, the OpenAPI document."""

import pytest

from cases.models import SubCase
from nexa.platform.roles import Role
from tests.api_base import APIContractTests, RouteContract, assert_problem
from tests.cases.factories import CaseFactory, SubCaseFactory, passenger_row

pytestmark = pytest.mark.django_db

OPERATOR, SUPERVISOR = Role.AIRPORT_OPERATOR, Role.OPS_SUPERVISOR


def _lists_only(airline_case):
    """A check: the list holds exactly the caller's airline's case."""

    def check(response, objects):
        return [item["urn"] for item in response.json()["items"]] == [objects[airline_case].urn]

    return check


class TestCasesAPIContract(APIContractTests):
    routes = (
        RouteContract("list cases", "GET", "/v1/cases", min_role=OPERATOR, check=_lists_only("case")),
        RouteContract(
            "declare",
            "POST",
            "/v1/cases",
            min_role=SUPERVISOR,
            expect_status=201,
            body={
                "airport": "BCN",
                "flightNumber": "IB2001",
                "flightDate": "2026-11-22",
                "scheduledDeparture": "2026-11-22T10:00:00Z",
                "cause": "DELAY",
            },
            audit_actions=("case.declared",),
            check=lambda response, objects: response.json()["flightNumber"] == "IB2001",
        ),
        RouteContract("dashboard", "GET", "/v1/cases/dashboard", min_role=OPERATOR),
        RouteContract(
            "case detail",
            "GET",
            "/v1/cases/{case}",
            min_role=OPERATOR,
            check=lambda response, objects: response.json()["urn"] == objects["case"].urn,
        ),
        RouteContract(
            "manifest",
            "GET",
            "/v1/cases/{case}/manifest",
            min_role=OPERATOR,
            check=lambda response, objects: [i["urn"] for i in response.json()["items"]] == [objects["subcase"].urn],
        ),
        RouteContract(
            "manifest append",
            "POST",
            "/v1/cases/{case}/manifest",
            min_role=SUPERVISOR,
            expect_status=201,
            body={"passengers": [passenger_row(7)]},
            audit_actions=("case.manifest_appended",),
            check=lambda response, objects: response.json()["added"] == 1,
        ),
        RouteContract(
            "passenger groups",
            "POST",
            "/v1/cases/{case}/passenger-groups",
            min_role=OPERATOR,
            expect_status=201,
            body={},
            audit_actions=("group.created", "subcase.mark_grouped"),
        ),
        RouteContract(
            "transition",
            "POST",
            "/v1/subcases/{subcase}/transition",
            min_role=OPERATOR,
            body={"transition": "mark_grouped", "version": 1},
            audit_actions=("subcase.mark_grouped", "case.status_changed"),
            check=lambda response, objects: response.json()["version"] == 2,
        ),
    )

    def make_objects(self, airline):
        """One case of ``airline`` with one PENDING passenger."""
        case = CaseFactory(airline=airline)
        return {"case": case, "subcase": SubCaseFactory(case=case, airline=airline)}

    def assert_unchanged(self, objects, *, audit_rows, events):
        super().assert_unchanged(objects, audit_rows=audit_rows, events=events)
        passenger = SubCase.objects.get(pk=objects["subcase"].pk)
        assert passenger.version == 1 and passenger.status == "PENDING" and passenger.group_id is None
        assert objects["case"].subcases.count() == 1


# --- route-specific -----------------------------------------------------------------------------------


@pytest.fixture
def world():
    """One IB case with a passenger, and the same for LH."""
    ib_passenger = SubCaseFactory(case=CaseFactory(airline="IB"), airline="IB")
    lh_passenger = SubCaseFactory(case=CaseFactory(airline="LH", flight_number="LH1114"), airline="LH")
    return {"IB": ib_passenger, "LH": lh_passenger}


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
