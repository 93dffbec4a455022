"""POST /v1/transport/cases/{case_urn}/transfers/request: validation naming fields, sub-cases and groups
of this case only, group expansion, dedupe, entity locks; the platform contracts through the shared API
test base (role matrix, tenant isolation, malformed URNs, audit); and the happy path end to end with a
REAL Celery worker and the REAL transport simulator, whose ledger shows exactly one ride per sub-case."""

import json
import time

import pytest

from cases import saga, services
from cases.models import SagaRun, SagaRunStatus, SagaStep, SubCaseStatus
from nexa.platform.auth import Principal
from nexa.platform.models import OutboxEvent
from nexa.platform.roles import Role
from nexa.platform.urns import format_urn, new_id, parse_urn
from operators import services as operators
from tests.api_base import APIContractTests, RouteContract, assert_problem
from tests.cases.factories import CaseFactory, PassengerGroupFactory, SubCaseFactory

pytestmark = pytest.mark.django_db

PICKUP = {"lat": 40.4719, "lng": -3.5626, "address": "MAD T4"}
DROPOFF = {"lat": 40.4168, "lng": -3.7038, "address": "Hotel Centro"}
RUN_TIMEOUT = 60.0


def route(case) -> str:
    return f"/v1/transport/cases/{case.urn}/transfers/request"


def request_transfers(client, case, **body):
    payload = {"pickup": PICKUP, "dropoff": DROPOFF, **body}
    return client.post(route(case), data=json.dumps(payload), content_type="application/json")


def fields(response) -> set[str]:
    return {error["field"] for error in assert_problem(response, 400, "validation-error")["errors"]}


def principal(airline="IB", role=Role.AIRPORT_OPERATOR, operator=None):
    operator = operator or f"urn:nexa:user:{airline.lower()}-{str(role).lower()}"
    return Principal(airline=airline, role=role, operator_urn=operator, subject=operator)


@pytest.fixture
def case():
    return CaseFactory(airline="IB")


# --- the route contracts ------------------------------------------------------------------------------


def _contract_check(response, objects) -> bool:
    answer = response.json()
    transfers = answer["transfers"]
    expected = {objects["subcase"].urn, objects["member"].urn}
    return (
        answer["correlationUrn"].startswith("urn:nexa:correlation:")
        and response["Location"] == f"/v1/orchestration/cases/{objects['case'].urn}/progress"
        and {t["subCaseUrn"] for t in transfers} == expected
        and all(parse_urn(t["transferUrn"], "transfer") and parse_urn(t["sagaUrn"], "saga") for t in transfers)
    )


class TestTransportAPIContract(APIContractTests):
    routes = (
        RouteContract(
            "transfers-request",
            "POST",
            "/v1/transport/cases/{case}/transfers/request",
            min_role=Role.AIRPORT_OPERATOR,
            expect_status=202,
            body=lambda objects: {
                "subCaseUrns": [objects["subcase"].urn],
                "groupUrns": [objects["group"].urn],
                "pickup": PICKUP,
                "dropoff": DROPOFF,
                "provider": "CABIFY",
            },
            audit_actions=("transport.transfers_requested",),
            check=_contract_check,
        ),
    )

    def make_objects(self, airline):
        case = CaseFactory(airline=airline)
        group = PassengerGroupFactory(case=case)
        return {
            "case": case,
            "subcase": SubCaseFactory(case=case),
            "group": group,
            "member": SubCaseFactory(case=case, group=group),
        }


# --- validation ----------------------------------------------------------------------------------------


def test_every_invalid_field_is_named(client_for, case):
    client = client_for("IB")
    response = client.post(route(case), data=json.dumps({}), content_type="application/json")
    assert fields(response) == {"subCaseUrns", "pickup", "dropoff"}

    passenger = SubCaseFactory(case=case)
    bad = request_transfers(
        client,
        case,
        subCaseUrns=[passenger.urn],
        pickup={"lat": 95, "lng": 0},
        dropoff="Hotel",
        pickupAt="2030-01-01T10:00:00",
        provider="BOLT",
    )
    assert fields(bad) == {"pickup", "dropoff", "pickupAt", "provider"}
    past = request_transfers(client, case, subCaseUrns=[passenger.urn], pickupAt="2020-01-01T10:00:00+01:00")
    assert fields(past) == {"pickupAt"}
    assert not SagaRun.objects.exists()


def test_malformed_and_wrong_kind_urns_in_the_body_are_400(client_for, case):
    passenger = SubCaseFactory(case=case)
    response = request_transfers(
        client_for("IB"), case, subCaseUrns=[passenger.urn, "not-a-urn", case.urn], groupUrns="urn:nexa:group:x"
    )
    body = assert_problem(response, 400, "validation-error")
    assert {e["field"] for e in body["errors"]} == {"subCaseUrns[1]", "subCaseUrns[2]", "groupUrns"}
    assert any("expected a urn:nexa:subcase" in e["message"] for e in body["errors"])


# --- bad input is a 400, never a 500 (issue 9 §5) -------------------------------------------------------


def _raw_transfers(client, case, text: str):
    return client.post(route(case), data=text, content_type="application/json")


@pytest.mark.parametrize(
    "pickup_at",
    [
        "2024-01-01T12:99:00Z",  # was a 500: parse_datetime raises ValueError for an impossible minute
        "2030-13-01T10:00:00Z",
        "2030-02-30T10:00:00+01:00",
        "9999-12-31T23:59:59-23:59",  # was a 500: OverflowError converting to UTC
        "x" * 5000,
    ],
)
def test_an_impossible_pickup_time_is_a_400_naming_pickup_at(client_for, case, pickup_at):
    passenger = SubCaseFactory(case=case)
    response = request_transfers(client_for("IB"), case, subCaseUrns=[passenger.urn], pickupAt=pickup_at)
    errors = assert_problem(response, 400, "validation-error")["errors"]
    assert errors == [{"field": "pickupAt", "message": "must be a date-time with a UTC offset"}]
    assert not SagaRun.objects.exists()


@pytest.mark.parametrize(
    "lat",
    ["1e308", "-91", "90.0000001", '"NaN"', '"Infinity"', '"1e400"', "-1e-400", "true", "null", "[]"],
)
def test_extreme_coordinates_are_a_400_naming_the_place(client_for, case, lat):
    passenger = SubCaseFactory(case=case)
    text = json.dumps({"subCaseUrns": [passenger.urn], "dropoff": DROPOFF, "pickup": {"lng": 0, "lat": "LAT"}})
    response = _raw_transfers(client_for("IB"), case, text.replace('"LAT"', lat))
    if lat == "-1e-400":  # underflows to -0.0: a valid latitude
        assert response.status_code == 202, response.content
        return
    errors = assert_problem(response, 400, "validation-error")["errors"]
    assert [error["field"] for error in errors] == ["pickup"]
    assert not SagaRun.objects.exists()


@pytest.mark.parametrize(
    "lat",
    ["NaN", "Infinity", "-Infinity", "1e400", "1" + "0" * 400, "1" + "0" * 5000],
    ids=["NaN", "Inf", "-Inf", "1e400", "10**400", "10**5000"],
)
def test_non_json_numbers_as_coordinates_are_a_400(client_for, case, lat):
    passenger = SubCaseFactory(case=case)
    text = json.dumps({"subCaseUrns": [passenger.urn], "dropoff": DROPOFF, "pickup": {"lng": 0, "lat": "LAT"}})
    response = _raw_transfers(client_for("IB"), case, text.replace('"LAT"', lat))
    errors = assert_problem(response, 400, "malformed-body")["errors"]
    assert errors[0]["field"] == "body"
    assert not SagaRun.objects.exists()


@pytest.mark.parametrize("address", ["MAD\x00T4", "MAD \ud800"], ids=["NUL", "lone-surrogate"])
def test_an_unstorable_character_in_the_address_is_a_400_naming_it(client_for, case, address):
    passenger = SubCaseFactory(case=case)
    response = request_transfers(
        client_for("IB"), case, subCaseUrns=[passenger.urn], pickup={**PICKUP, "address": address}
    )
    errors = assert_problem(response, 400, "malformed-body")["errors"]
    assert [error["field"] for error in errors] == ["pickup.address"]
    assert not SagaRun.objects.exists()


def test_sub_cases_and_groups_of_another_case_are_400(client_for, case):
    mine = SubCaseFactory(case=case)
    elsewhere = SubCaseFactory(case=CaseFactory(airline="IB"))
    foreign = SubCaseFactory(case=CaseFactory(airline="LH"))
    other_group = PassengerGroupFactory(case=CaseFactory(airline="IB"))
    response = request_transfers(
        client_for("IB"),
        case,
        subCaseUrns=[mine.urn, elsewhere.urn, foreign.urn, format_urn("subcase", new_id())],
        groupUrns=[other_group.urn],
    )
    body = assert_problem(response, 400, "validation-error")
    assert {e["field"] for e in body["errors"]} == {
        "subCaseUrns[1]",
        "subCaseUrns[2]",
        "subCaseUrns[3]",
        "groupUrns[0]",
    }
    assert not SagaRun.objects.exists()


def test_another_airlines_case_is_404(client_for):
    foreign_case = CaseFactory(airline="LH")
    foreign = SubCaseFactory(case=foreign_case)
    response = request_transfers(client_for("IB", Role.ADMIN), foreign_case, subCaseUrns=[foreign.urn])
    assert_problem(response, 404, "not-found")
    assert not SagaRun.objects.exists()


# --- what is created -----------------------------------------------------------------------------------


def test_groups_expand_to_their_members_each_sub_case_once(client_for, case):
    group = PassengerGroupFactory(case=case)
    members = [SubCaseFactory(case=case, group=group) for _ in range(3)]
    SubCaseFactory(case=case, group=group, status=SubCaseStatus.CANCELLED)  # skipped: no ride for them
    alone = SubCaseFactory(case=case)
    response = request_transfers(
        client_for("IB"),
        case,
        subCaseUrns=[members[0].urn, alone.urn],
        groupUrns=[group.urn],
        pickupAt="2030-01-01T10:00:00+01:00",
    )
    assert response.status_code == 202, response.content
    transfers = response.json()["transfers"]
    assert [t["subCaseUrn"] for t in transfers] == [m.urn for m in members] + [alone.urn]

    runs = SagaRun.objects.filter(case=case)
    assert runs.count() == 4
    assert {run.correlation_urn for run in runs} == {response.json()["correlationUrn"]}
    for transfer in transfers:
        run = SagaRun.objects.get(pk=parse_urn(transfer["sagaUrn"], "saga").id)
        [step] = run.steps.all()
        assert (step.name, step.kind, step.status) == ("transport.request_ride", "TRANSPORT", "PENDING")
        assert format_urn("transfer", step.id) == transfer["transferUrn"]
        assert step.item["provider"] == "UBER"  # the default preference
        assert step.item["pickup"] == PICKUP and step.item["dropoff"] == DROPOFF
        assert step.item["pickupAt"] == "2030-01-01T09:00:00+00:00"
        assert run.sub_case.urn == transfer["subCaseUrn"] and run.sub_case.version == 1  # versions untouched
    requested = OutboxEvent.objects.filter(event=saga.SAGA_REQUESTED)
    assert {e.payload["sagaUrn"] for e in requested} == {t["sagaUrn"] for t in transfers}


def test_a_named_sub_case_that_cannot_travel_is_409(client_for, case):
    closed = SubCaseFactory(case=case, status=SubCaseStatus.CLOSED)
    body = assert_problem(
        request_transfers(client_for("IB"), case, subCaseUrns=[closed.urn]), 409, "subcase-not-compensable"
    )
    assert body["subCaseUrns"] == [closed.urn]


def test_the_same_request_again_returns_the_same_transfers_until_the_run_is_cancelled(client_for, case):
    client = client_for("IB")
    passenger = SubCaseFactory(case=case)
    first = request_transfers(client, case, subCaseUrns=[passenger.urn], provider="CABIFY")
    again = request_transfers(client, case, subCaseUrns=[passenger.urn], provider="CABIFY")
    assert first.status_code == again.status_code == 202
    assert again.json() == first.json()
    assert SagaRun.objects.count() == 1 and SagaStep.objects.count() == 1

    other = request_transfers(client, case, subCaseUrns=[passenger.urn], provider="UBER")
    assert (
        other.status_code == 202 and other.json()["transfers"][0]["sagaUrn"] != first.json()["transfers"][0]["sagaUrn"]
    )

    [transfer] = first.json()["transfers"]
    run = SagaRun.objects.get(pk=parse_urn(transfer["sagaUrn"], "saga").id)
    services.saga_run_cancel(principal=principal(role=Role.OPS_SUPERVISOR), run=run, reason="rebooked")
    SagaRun.objects.filter(pk=run.pk).update(status=SagaRunStatus.CANCELLED)
    renewed = request_transfers(client, case, subCaseUrns=[passenger.urn], provider="CABIFY")
    assert renewed.status_code == 202
    assert renewed.json()["transfers"][0]["sagaUrn"] not in (
        transfer["sagaUrn"],
        other.json()["transfers"][0]["sagaUrn"],
    )
    assert SagaRun.objects.filter(sub_case=passenger).count() == 3


def test_a_sub_case_locked_by_another_operator_is_409(client_for, case):
    group = PassengerGroupFactory(case=case)
    free, locked = SubCaseFactory(case=case, group=group), SubCaseFactory(case=case, group=group)
    holder = principal(operator="urn:nexa:user:ib-someone-else")
    operators.subcase_lock(principal=holder, sub_case_urn=locked.urn)
    body = assert_problem(request_transfers(client_for("IB"), case, groupUrns=[group.urn]), 409, "subcase-locked")
    assert body["lockedBy"] == holder.operator_urn
    assert not SagaRun.objects.filter(sub_case=free).exists()


# --- end to end ------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_rides_end_to_end_with_a_real_worker_one_ride_per_sub_case(
    client_for, celery_worker_process, simulator_control
):
    case = CaseFactory(airline="IB")
    group = PassengerGroupFactory(case=case)
    members = [SubCaseFactory(case=case, group=group) for _ in range(3)]
    alone = SubCaseFactory(case=case)
    client = client_for("IB")
    response = request_transfers(client, case, subCaseUrns=[alone.urn], groupUrns=[group.urn], provider="CABIFY")
    assert response.status_code == 202, response.content
    accepted = response.json()
    sagas = {t["sagaUrn"] for t in accepted["transfers"]}
    assert len(sagas) == 4

    deadline = time.monotonic() + RUN_TIMEOUT
    while time.monotonic() < deadline:
        progress = client.get(response["Location"]).json()
        if {run["sagaUrn"] for run in progress["runs"] if run["status"] == "COMPLETED"} == sagas:
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"transfers not completed: {progress}\n{celery_worker_process.log_tail()}")

    for run in progress["runs"]:
        [step] = run["steps"]
        assert (step["name"], step["status"], step["attempts"]) == ("transport.request_ride", "COMPLETED", 1)
        assert step["result"]["provider"] == "CABIFY" and step["result"]["status"] == "REQUESTED"
    rides = simulator_control.transport.entries("ride_requested")
    assert sorted(ride["subCaseUrn"] for ride in rides) == sorted(s.urn for s in [*members, alone])
    assert {ride["provider"] for ride in rides} == {"CABIFY"}
    steps = {s["result"]["rideId"] for run in progress["runs"] for s in run["steps"]}
    assert steps == {ride["rideId"] for ride in rides}

    # graph:step:* as for sagas: started and completed once per transfer, keyed by the transfer's step.
    transfer_steps = {format_urn("step", parse_urn(t["transferUrn"], "transfer").id) for t in accepted["transfers"]}
    for event in (saga.STEP_STARTED, saga.STEP_COMPLETED):
        published = [e.payload for e in OutboxEvent.objects.filter(event=event, payload__caseUrn=case.urn)]
        assert sorted(p["stepUrn"] for p in published) == sorted(transfer_steps)

    # The same request again is the same transfers: no second ride.
    again = request_transfers(client, case, subCaseUrns=[alone.urn], groupUrns=[group.urn], provider="CABIFY")
    assert again.status_code == 202 and again.json() == accepted
    time.sleep(0.5)
    assert len(simulator_control.transport.entries("ride_requested")) == 4


def test_an_open_provider_circuit_is_503_and_creates_nothing(client_for, case, simulator_control):
    from nexa.platform.breakers import breaker_for

    passenger = SubCaseFactory(case=case)
    breaker_for("transport-cabify").open()
    response = request_transfers(client_for("IB"), case, subCaseUrns=[passenger.urn], provider="CABIFY")
    body = assert_problem(response, 503, "downstream-unavailable")
    assert body["failedDomain"] == "transport-cabify" and response["Retry-After"] == "30"
    assert not SagaRun.objects.exists()
    # The other provider's circuit is closed: the same passenger can still get an Uber.
    assert request_transfers(client_for("IB"), case, subCaseUrns=[passenger.urn]).status_code == 202
