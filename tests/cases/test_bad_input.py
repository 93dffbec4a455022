"""Bad input on the cases routes is a 400 problem naming the field, never a 500 (issue 9 §5): integer
headers (X-Fencing-Token, Last-Event-ID) parsed strictly, impossible date-times in bodies, integers
past the database column, and the same for the airport search's limit."""

import json

import pytest

from cases.models import Case, SagaRun, SubCase
from nexa.platform.roles import Role
from operators import services as operators
from operators.socketio.replay import parse_offset
from tests.api_base import assert_problem
from tests.cases.factories import CaseFactory, SubCaseFactory
from tests.cases.test_transport_route import principal

pytestmark = pytest.mark.django_db

MEAL = {"type": "MEAL", "amount": "12.00", "currency": "EUR"}
# "²": str.isdigit() is true and int() raises ValueError (was a 500); "٣": int() reads 3; 2**63 and 2**64
# do not fit the bigint column; 0 is never granted; the rest are plainly malformed.
BAD_TOKENS = ["²", "٣", "\uff11", str(2**63), str(2**64), "9" * 5000, "0", "-1", "+1", "1.0", "", "1 2"]


def _messages(response, field: str) -> list[str]:
    body = assert_problem(response, 400, "validation-error")
    assert {error["field"] for error in body["errors"]} == {field}, body
    return [error["message"] for error in body["errors"]]


@pytest.fixture
def passenger():
    return SubCaseFactory(case=CaseFactory(airline="IB"), airline="IB")


# --- X-Fencing-Token ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("token", BAD_TOKENS)
def test_a_malformed_fencing_token_on_a_transition_is_a_400_naming_the_header(client_for, passenger, token):
    response = client_for("IB").post(
        f"/v1/subcases/{passenger.urn}/transition",
        data=json.dumps({"transition": "mark_grouped", "version": 1}),
        content_type="application/json",
        HTTP_X_FENCING_TOKEN=token,
    )
    assert _messages(response, "X-Fencing-Token") == [
        "must be an integer from 1 to 9223372036854775807 in ASCII digits"
    ]
    assert SubCase.objects.get(pk=passenger.pk).version == 1


@pytest.mark.parametrize("token", BAD_TOKENS)
def test_a_malformed_fencing_token_on_compensate_is_a_400_naming_the_header(client_for, passenger, token):
    response = client_for("IB").post(
        f"/v1/subcases/{passenger.urn}/compensate",
        data=json.dumps({"version": 1, "items": [MEAL], "reason": "delay"}),
        content_type="application/json",
        HTTP_X_FENCING_TOKEN=token,
    )
    _messages(response, "X-Fencing-Token")
    assert not SagaRun.objects.exists()


def test_the_largest_fencing_token_is_well_formed_and_merely_stale(client_for, passenger):
    me = "urn:nexa:user:ib-airport_operator"
    operators.subcase_lock(principal=principal(operator=me), sub_case_urn=passenger.urn)
    response = client_for("IB").post(
        f"/v1/subcases/{passenger.urn}/transition",
        data=json.dumps({"transition": "mark_grouped", "version": 1}),
        content_type="application/json",
        HTTP_X_FENCING_TOKEN=str(2**63 - 1),
    )
    assert_problem(response, 409, "stale-fencing-token")


# --- integers past the column ----------------------------------------------------------------------------


@pytest.mark.parametrize("version", [2**31, 2**63, 2**64 + 1])
def test_a_version_past_the_integer_column_is_a_400_naming_it(client_for, passenger, version):
    transition = client_for("IB").post(
        f"/v1/subcases/{passenger.urn}/transition",
        data=json.dumps({"transition": "mark_grouped", "version": version}),
        content_type="application/json",
    )
    compensate = client_for("IB").post(
        f"/v1/subcases/{passenger.urn}/compensate",
        data=json.dumps({"version": version, "items": [MEAL], "reason": "delay"}),
        content_type="application/json",
    )
    for response in (transition, compensate):
        assert _messages(response, "version") == ["Ensure this value is less than or equal to 2147483647."]


# --- date-times in bodies ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "departure", ["2026-11-22T12:99:00Z", "2026-02-30T10:00:00+01:00", "9999-12-31T23:59:59-23:59", "x" * 500]
)
def test_an_impossible_scheduled_departure_is_a_400_naming_it(client_for, departure):
    response = client_for("IB", Role.OPS_SUPERVISOR).post(
        "/v1/cases",
        data=json.dumps(
            {
                "airport": "MAD",
                "flightNumber": "IB3190",
                "flightDate": "2026-11-22",
                "scheduledDeparture": departure,
                "cause": "DELAY",
            }
        ),
        content_type="application/json",
    )
    assert _messages(response, "scheduledDeparture") == [
        "Must be an ISO 8601 date-time with a UTC offset, e.g. 2026-11-22T21:40:00+01:00."
    ]
    assert not Case.objects.exists()


def test_a_scheduled_departure_without_offset_keeps_its_precise_message(client_for):
    response = client_for("IB", Role.OPS_SUPERVISOR).post(
        "/v1/cases",
        data=json.dumps(
            {
                "airport": "MAD",
                "flightNumber": "IB3190",
                "flightDate": "2026-11-22",
                "scheduledDeparture": "2026-11-22T10:00:00",
                "cause": "DELAY",
            }
        ),
        content_type="application/json",
    )
    assert _messages(response, "scheduledDeparture") == ["Include a UTC offset, e.g. 2026-11-22T21:40:00+01:00 or …Z."]


@pytest.mark.parametrize("field", ["expiresAt", "pickupAt"])
def test_an_impossible_time_in_a_compensation_item_is_a_400_naming_it(client_for, passenger, field):
    transport = {
        "type": "TRANSPORT",
        "provider": "UBER",
        "pickup": {"lat": 40.47, "lng": -3.56},
        "dropoff": {"lat": 40.41, "lng": -3.70},
    }
    item = {**(MEAL if field == "expiresAt" else transport), field: "2030-01-01T12:99:00Z"}
    response = client_for("IB").post(
        f"/v1/subcases/{passenger.urn}/compensate",
        data=json.dumps({"version": 1, "items": [item], "reason": "delay"}),
        content_type="application/json",
    )
    assert _messages(response, f"items[0].{field}") == ["must be a date-time with a UTC offset"]
    assert not SagaRun.objects.exists()


@pytest.mark.parametrize("query", ["from=2026-11-22T12:99:00Z", "to=9999-12-31T23:59:59-23:59"])
def test_an_impossible_date_filter_on_the_case_list_is_a_400(client_for, query):
    response = client_for("IB").get(f"/v1/cases?{query}")
    assert assert_problem(response, 400, "validation-error")["errors"][0]["field"] == query.split("=")[0]


def test_the_last_representable_day_as_a_case_list_bound_is_not_a_500(client_for):
    case = CaseFactory(airline="IB")
    response = client_for("IB").get("/v1/cases", {"from": "0001-01-01", "to": "9999-12-31"})  # next day overflowed
    assert response.status_code == 200, response.content
    assert [item["urn"] for item in response.json()["items"]] == [case.urn]


def test_a_case_list_bound_with_an_offset_postgresql_refuses_is_not_a_500(client_for):
    response = client_for("IB").get("/v1/cases", {"from": "2026-06-01T00:00:00-23:59"})  # PostgreSQL: ±15:59 (a 500)
    assert response.status_code == 200, response.content


@pytest.mark.parametrize(
    "query",
    [
        {"from": "2026-06-01T00:00:00-23:59"},  # PostgreSQL refuses offsets past ±15:59 (was a 500)
        {"to": "2026-01-01T00:00:00+23:00"},
        {"from": "0001-01-01", "to": "9999-12-31T23:59:59Z"},
    ],
)
def test_audit_instants_with_offsets_postgresql_refuses_are_not_a_500(client_for, query):
    response = client_for("IB", Role.OPS_SUPERVISOR).get("/v1/audit", query)
    assert response.status_code == 200, response.content


def test_an_audit_instant_past_the_representable_range_is_a_400(client_for):
    response = client_for("IB", Role.OPS_SUPERVISOR).get("/v1/audit", {"to": "9999-12-31T23:59:59-01:00"})
    assert _messages(response, "to") == ["Out of range."]


# --- integer query parameters and headers elsewhere ----------------------------------------------------------


@pytest.mark.parametrize("limit", ["²", "٣", "9" * 5000, "0", "-1"])
def test_a_malformed_airport_search_limit_is_a_400(client_for, limit):
    response = client_for("IB").get("/v1/airports/search", {"q": "MAD", "limit": limit})
    assert _messages(response, "limit")


@pytest.mark.parametrize("offset", ["²", "٣", "9" * 5000, str(2**63), "-1"])
def test_a_malformed_last_event_id_is_a_400_naming_it(client_for, passenger, offset):
    response = client_for("IB").get(f"/v1/cases/{passenger.case.urn}/events", HTTP_LAST_EVENT_ID=offset)
    assert _messages(response, "Last-Event-ID")
    query = client_for("IB").get(f"/v1/cases/{passenger.case.urn}/events", {"lastEventId": offset})
    assert _messages(query, "lastEventId")


@pytest.mark.parametrize("offset", ["²", "٣", "9999999999999999999", "-1", 12, None])
def test_a_socket_replay_offset_is_ascii_digits_within_bigint(offset):
    assert parse_offset(offset) is None  # "²" raised ValueError; 19 nines overflowed the bigint column
    assert parse_offset("9223372036854775807") == 2**63 - 1


# --- manifest rows past their columns ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("row", "field"),
    [
        # validate_email accepts 320 characters; the column holds 254 (was a 500: DataError)
        ({"email": "a" * 64 + "@" + ("b" * 60 + ".") * 4 + "com"}, "passengers[0].email"),
        # U+0130 and U+017F match [a-z] under IGNORECASE and grow when case-folded: 9 characters for 8 (was a 500)
        ({"language": "\u0130\u0130\u0130-\u017f\u017f"}, "passengers[0].language"),
        ({"firstName": "A" * 101}, "passengers[0].firstName"),
    ],
)
def test_a_manifest_row_longer_than_its_column_is_a_400_naming_the_field(client_for, row, field):
    case = CaseFactory(airline="IB")
    response = client_for("IB", Role.OPS_SUPERVISOR).post(
        f"/v1/cases/{case.urn}/manifest",
        data=json.dumps({"passengers": [{"firstName": "Ana", "lastName": "Ruiz", "pnr": "ABC123", **row}]}),
        content_type="application/json",
    )
    _messages(response, field)
    assert not SubCase.objects.filter(case=case).exists()


# --- decimals (guards: these were already 400s) -------------------------------------------------------------


@pytest.mark.parametrize(
    "amount", ["1e999999999", "1E-999999999", "sNaN", "NaN", "Infinity", "-0", "0.001", 1e308, "9" * 5000]
)
def test_an_amount_with_a_huge_exponent_or_no_value_is_a_400_naming_it(client_for, passenger, amount):
    response = client_for("IB").post(
        f"/v1/subcases/{passenger.urn}/compensate",
        data=json.dumps({"version": 1, "items": [{**MEAL, "amount": amount}], "reason": "delay"}),
        content_type="application/json",
    )
    _messages(response, "items[0].amount")
    assert not SagaRun.objects.exists()
