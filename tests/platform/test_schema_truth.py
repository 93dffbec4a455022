"""The schema tells the truth (issue 9 §6): what /v1/openapi.json states is what the server enforces.

Static checks of the served schema, and one regression test for each server bug the fuzzer found.
The live fuzzer itself is tests/e2e/test_schemathesis.py.
"""

import re
import uuid

import pytest
from rest_framework.test import APIClient

from nexa.platform.auth import Principal
from nexa.platform.idempotency import parse_idempotency_key
from nexa.platform.openapi import NON_BLANK
from nexa.platform.problems import Problem
from nexa.platform.roles import Role
from nexa.platform.urns import InvalidUrn, is_opaque_urn, new_urn, parse_urn
from tests.cases.factories import CaseFactory, SubCaseFactory

pytestmark = pytest.mark.django_db

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    with django_db_blocker.unblock():
        return APIClient().get("/v1/openapi.json").json()


def matches(pattern: str, value: str) -> bool:
    """ECMA-262 semantics for the schema's pattern: its ``$`` does not match before a final newline."""
    return re.search(pattern[:-1] + r"\Z" if pattern.endswith("$") else pattern, value) is not None


def _operations(schema):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            yield path, method, operation


def _parameter(operation, name):
    return next(p for p in operation["parameters"] if p["name"] == name)


# --- the schema --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("parameter", "kind"), [("case_urn", "case"), ("sub_case_urn", "subcase"), ("saga_urn", "saga")]
)
def test_urn_path_parameters_carry_the_pattern_the_server_parses(schema, parameter, kind):
    found = 0
    for path, _, operation in _operations(schema):
        if "{" + parameter + "}" not in path:
            continue
        found += 1
        pattern = _parameter(operation, parameter)["schema"]["pattern"]
        assert matches(pattern, new_urn(kind))
        for wrong in (new_urn("group"), f"urn:nexa:{kind}:{uuid.uuid4()}".upper(), new_urn(kind) + "\n", "0"):
            assert not matches(pattern, wrong)
            with pytest.raises(InvalidUrn):
                parse_urn(wrong, kind)
    assert found


def test_opaque_urn_parameters_match_the_server(schema):
    pattern = _parameter(schema["paths"]["/v1/operators/{operator_urn}/deactivate"]["post"], "operator_urn")["schema"]
    for value in ("urn:nexa:user:ib-ops", "urn:x", "urn:" + "a" * 251):
        assert matches(pattern["pattern"], value) and len(value) <= pattern["maxLength"] and is_opaque_urn(value)
    for value in ("user:x", "urn:a\nb", "urn:\x00", "urn:" + "a" * 252):
        assert not (matches(pattern["pattern"], value) and len(value) <= pattern["maxLength"])
        assert not is_opaque_urn(value)


def test_limit_is_bounded_on_every_list(schema):
    limits = [
        _parameter(op, "limit")["schema"]
        for _, _, op in _operations(schema)
        if "parameters" in op and any(p["name"] == "limit" for p in op["parameters"])
    ]
    assert len(limits) >= 6
    assert all(limit["minimum"] == 1 and limit["maximum"] in (100, 200) for limit in limits)


def test_q_has_a_minimum_length(schema):
    q = _parameter(schema["paths"]["/v1/airports/search"]["get"], "q")["schema"]
    assert q["minLength"] == 1 and q["maxLength"] == 100 and q["pattern"] == NON_BLANK


@pytest.mark.parametrize(
    ("key", "valid"),
    [
        ("4f1c2b8e-6a7d-4e2f-9b3c-1d5e7f9a0b2c", True),
        ("k", True),
        ("a" * 255, True),
        ("a" * 256, False),
        ('"quoted key"', True),
        ('"with \\" escape"', True),
        ('"bad \\n escape"', False),
        ('""', False),
        ('"open', False),
        ("bare space", False),
        ("é", False),
    ],
)
def test_idempotency_key_pattern_is_what_the_server_parses(schema, key, valid):
    header = _parameter(schema["paths"]["/v1/cases"]["post"], "Idempotency-Key")["schema"]
    stated = matches(header["pattern"], key) and header["minLength"] <= len(key) <= header["maxLength"]
    try:
        parse_idempotency_key(key)
        accepted = True
    except Problem:
        accepted = False
    assert stated is valid and accepted is valid


def test_every_problem_is_documented_as_problem_json(schema):
    for path, method, operation in _operations(schema):
        responses = operation["responses"]
        wanted = {"400", "401", "403", "429"} | ({"404"} if "{" in path else set())
        if method == "post":
            wanted |= {"409", "413", "415", "422", "503"}
        assert wanted <= set(responses), (method, path)
        for status, response in responses.items():
            if status.startswith(("4", "5")):
                assert set(response["content"]) == {PROBLEM}, (method, path, status)
                assert response["content"][PROBLEM]["schema"] == {"$ref": "#/components/schemas/Problem"}
    problem = schema["components"]["schemas"]["Problem"]
    assert {"errors", "lockedBy", "expiresInSeconds", "version", "failedDomain"} <= set(problem["properties"])
    assert set(problem["required"]) == {"type", "title", "status", "detail", "instance"}


def test_request_bodies_state_enums_patterns_and_examples(schema):
    components = schema["components"]["schemas"]
    notify = components["NotificationSendRequest"]["properties"]
    assert notify["subCaseUrns"]["minItems"] == 1
    assert notify["subCaseUrns"]["items"]["pattern"].startswith("^urn:nexa:subcase:")
    items = components["CompensateRequestRequest"]["properties"]["items"]
    assert items["minItems"] == 1 and {o["title"] for o in items["items"]["oneOf"]} == {"MEAL", "CASH", "TRANSPORT"}
    assert items["items"]["example"]["type"] == "MEAL"
    assert components["CompensateRequestRequest"]["properties"]["reason"] == {
        "type": "string",
        "pattern": NON_BLANK,
        "maxLength": 2000,
    }
    assert components["PassengerRowRequest"]["additionalProperties"] is False
    assert components["CaseDeclareRequest"]["properties"]["flightNumber"]["example"] == "IB3166"
    for path in ("/v1/cases", "/v1/subcases/{sub_case_urn}/compensate"):
        assert schema["paths"][path]["post"]["requestBody"]["content"]["application/json"]["examples"], path


# --- server bugs the fuzzer found (each failed before) ---------------------------------------------------


def test_a_urn_with_a_trailing_newline_is_not_a_urn():
    urn = new_urn("case")
    with pytest.raises(InvalidUrn):
        parse_urn(urn + "\n", "case")


def test_passenger_groups_refuse_a_body_that_is_not_an_object(client_for):
    case = CaseFactory()
    SubCaseFactory(case=case)
    response = client_for("IB", Role.AIRPORT_OPERATOR).post(
        f"/v1/cases/{case.urn}/passenger-groups", [None, None], format="json"
    )
    assert response.status_code == 400, response.content  # was 201: grouped automatically
    assert response["Content-Type"] == PROBLEM


def test_a_number_is_not_a_string(client_for):
    response = client_for("IB", Role.ADMIN).post(
        "/v1/operators/urn:nexa:user:ib-someone/deactivate", {"reason": -414}, format="json"
    )
    assert response.status_code == 400, response.content  # was 200: DRF read -414 as "-414"
    assert response.json()["errors"][0]["field"] == "reason"


def test_a_string_is_not_an_integer(client_for):
    sub_case = SubCaseFactory()
    response = client_for("IB", Role.AIRPORT_OPERATOR).post(
        f"/v1/subcases/{sub_case.urn}/transition", {"transition": "cancel", "version": "1"}, format="json"
    )
    assert response.status_code == 400, response.content
    assert response.json()["errors"][0]["field"] == "version"


def test_deactivating_an_operator_urn_longer_than_a_display_name(client_for):
    operator_urn = "urn:" + "0" * 251  # 255 characters: a valid operator URN, longer than a display name
    response = client_for("IB", Role.ADMIN).post(
        f"/v1/operators/{operator_urn}/deactivate", {"reason": "fuzz"}, format="json"
    )
    # Was a 500 (value too long for display_name) when deactivation created the profile; identity is now
    # (airline, URN) and a URN without a profile in the airline is a 404 that creates nothing.
    assert response.status_code == 404, response.content
    from operators.models import Operator

    assert not Operator.objects.filter(operator_urn=operator_urn).exists()


def test_a_profile_made_for_an_operator_urn_longer_than_a_display_name_cuts_the_name():
    from operators.models import Operator
    from operators.services import operator_session_open

    operator_urn = "urn:" + "0" * 251
    principal = Principal(airline="IB", role=Role.AIRPORT_OPERATOR, operator_urn=operator_urn, subject=operator_urn)
    operator_session_open(principal=principal, session_id="long-urn-session", server_instance="test")
    assert len(Operator.objects.get(airline="IB", operator_urn=operator_urn).display_name) == 200


@pytest.mark.parametrize(
    "path",
    [
        "/v1/audit?from=2754-10-08T15:38:01%2B16:42",
        "/v1/audit?to=2754-10-08T15:38:01%2B16:42",
        "/v1/cases?from=2754-10-08T15:38:01%2B16:42",
    ],
)
def test_utc_offsets_beyond_postgresql_range_are_not_a_500(client_for, path):
    response = client_for("IB", Role.OPS_SUPERVISOR).get(path)
    assert response.status_code == 200, response.content  # was 500: time zone displacement out of range


def test_an_instant_before_the_first_representable_one_in_utc_is_a_400_not_a_500(client_for):
    # 0001-01-01T00:00+23:59 is in year 0 in UTC: out of range, named (issue 9 §5), never a 500.
    response = client_for("IB", Role.OPS_SUPERVISOR).get("/v1/audit?from=0001-01-01T00:00:00%2B23:59")
    assert response.status_code == 400, response.content
    assert response.json()["errors"] == [{"field": "from", "message": "Out of range."}]


def test_a_nul_in_a_json_string_is_a_400_not_a_500(client_for):
    case = CaseFactory()
    response = client_for("IB", Role.OPS_SUPERVISOR).post(
        f"/v1/cases/{case.urn}/manifest",
        '{"passengers": [{"firstName": "A\\u0000", "lastName": "B", "pnr": "ABC123"}]}',
        content_type="application/json",
    )
    assert response.status_code == 400, response.content  # was 500: PostgreSQL text cannot contain NUL
    assert response.json()["type"].endswith("/malformed-body")


def test_an_impossible_time_in_a_declaration_is_a_400_not_a_500(client_for):
    body = {
        "airport": "MAD",
        "flightNumber": "IB3166",
        "flightDate": "2026-11-22",
        "scheduledDeparture": "2024-01-01T12:99:00Z",
        "cause": "CANCELLATION",
    }
    response = client_for("IB", Role.OPS_SUPERVISOR).post("/v1/cases", body, format="json")
    assert response.status_code == 400, response.content  # was 500: parse_datetime raised ValueError
    assert response.json()["errors"][0]["field"] == "scheduledDeparture"
