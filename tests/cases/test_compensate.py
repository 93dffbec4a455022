"""POST /v1/subcases/{urn}/compensate: validation, the 202 contract, dedupe by payload, idempotency
replay, OCC, entity locks and fencing tokens; the orchestration routes' platform contracts (role matrix,
tenant isolation, malformed URNs, audit) through the shared API test base."""

import json

import pytest

from cases import services
from cases.models import SagaRun, SagaRunStatus, SagaStep, SubCase, SubCaseStatus
from nexa.platform.auth import Principal
from nexa.platform.models import OutboxEvent
from nexa.platform.roles import Role
from operators import services as operators
from tests.api_base import APIContractTests, RouteContract, assert_problem
from tests.cases.factories import CASH, MEAL, TRANSPORT, CaseFactory, SubCaseFactory

pytestmark = pytest.mark.django_db

OPERATOR, SUPERVISOR = Role.AIRPORT_OPERATOR, Role.OPS_SUPERVISOR


def body(version=1, items=None, reason="Flight cancelled overnight"):
    return {"version": version, "items": items if items is not None else [MEAL, CASH, TRANSPORT], "reason": reason}


def compensate(client, sub_case, payload, **headers):
    return client.post(
        f"/v1/subcases/{sub_case.urn}/compensate", data=json.dumps(payload), content_type="application/json", **headers
    )


def principal(airline="IB", role=Role.OPS_SUPERVISOR, operator=None):
    operator = operator or f"urn:nexa:user:{airline.lower()}-{str(role).lower()}"
    return Principal(airline=airline, role=role, operator_urn=operator, subject=operator)


def make_run(sub_case, *, status=SagaRunStatus.PENDING, items=None, version=None):
    """A run created through the real service, then put in ``status`` (as the engine would)."""
    run, _ = services.subcase_compensate(
        principal=principal(sub_case.airline),
        sub_case_urn=sub_case.urn,
        expected_version=version or SubCase.objects.get(pk=sub_case.pk).version,
        items=items or [MEAL],
        reason="test",
    )
    SagaRun.objects.filter(pk=run.pk).update(status=status)
    run.refresh_from_db()
    return run


@pytest.fixture
def passenger():
    return SubCaseFactory(case=CaseFactory(airline="IB"), airline="IB")


# --- the route contracts ------------------------------------------------------------------------------


class TestOrchestrationAPIContract(APIContractTests):
    routes = (
        RouteContract(
            "compensate",
            "POST",
            "/v1/subcases/{subcase}/compensate",
            min_role=OPERATOR,
            expect_status=202,
            body=body(),
            audit_actions=("subcase.compensation_requested",),
            check=lambda response, objects: response.json()["status"] == "ACCEPTED",
        ),
        RouteContract(
            "progress",
            "GET",
            "/v1/orchestration/cases/{case}/progress",
            min_role=OPERATOR,
            check=lambda response, objects: (
                {run["sagaUrn"] for run in response.json()["runs"]}
                == {objects["failed_run"].urn, objects["pending_run"].urn}
            ),
        ),
        RouteContract(
            "retry",
            "POST",
            "/v1/orchestration/runs/{failed_run}/retry",
            min_role=SUPERVISOR,
            expect_status=202,
            body={"reason": "PSP back"},
            audit_actions=("saga.retried",),
            check=lambda response, objects: response.json()["status"] == "PENDING",
        ),
        RouteContract(
            "cancel",
            "POST",
            "/v1/orchestration/runs/{pending_run}/cancel",
            min_role=SUPERVISOR,
            expect_status=202,
            body={"reason": "passenger rebooked"},
            audit_actions=("saga.cancel_requested",),
            check=lambda response, objects: response.json()["status"] == "CANCELLING",
        ),
        RouteContract(
            "wallet",
            "GET",
            "/v1/subcases/{subcase}/wallet",
            min_role=OPERATOR,
            check=lambda response, objects: (
                response.json()
                == {
                    "subCaseUrn": objects["subcase"].urn,
                    "balances": {},
                    "entries": [],
                }
            ),
        ),
    )

    def make_objects(self, airline):
        case = CaseFactory(airline=airline)
        subcase = SubCaseFactory(case=case, airline=airline)
        other = SubCaseFactory(case=case, airline=airline)
        failed_run = make_run(other, status=SagaRunStatus.FAILED)
        pending_run = make_run(other, status=SagaRunStatus.PENDING)
        return {"case": case, "subcase": subcase, "failed_run": failed_run, "pending_run": pending_run}

    def assert_unchanged(self, objects, *, audit_rows, events):
        super().assert_unchanged(objects, audit_rows=audit_rows, events=events)
        assert SubCase.objects.get(pk=objects["subcase"].pk).version == 1
        assert SagaRun.objects.get(pk=objects["failed_run"].pk).status == SagaRunStatus.FAILED
        assert SagaRun.objects.get(pk=objects["pending_run"].pk).status == SagaRunStatus.PENDING


# --- 202 ---------------------------------------------------------------------------------------------------


def test_accepted_shape_location_and_one_transaction_of_rows(client_for, passenger):
    response = compensate(client_for("IB"), passenger, body())
    assert response.status_code == 202, response.content
    data = response.json()
    assert set(data) == {"correlationUrn", "sagaUrn", "status"}
    assert data["status"] == "ACCEPTED"
    assert data["correlationUrn"] == response["X-Correlation-Id"]
    assert data["sagaUrn"].startswith("urn:nexa:saga:")
    assert response["Location"] == f"/v1/orchestration/cases/{passenger.case.urn}/progress"

    run = SagaRun.objects.get()
    assert run.urn == data["sagaUrn"] and run.status == SagaRunStatus.PENDING
    assert run.requested_by == "urn:nexa:user:ib-airport_operator"
    steps = list(SagaStep.objects.filter(run=run).order_by("position"))
    assert [s.name for s in steps] == ["meal.issue_card", "cash.payout", "transport.request_ride", "notify.passenger"]
    assert all(s.status == "PENDING" and s.attempts == 0 for s in steps)
    assert steps[0].item["expiresAt"]  # default validity filled in
    assert steps[2].item["pickupAt"]
    # The sub-case version moved (OCC) but not its status; the outbox row will start the saga.
    passenger.refresh_from_db()
    assert passenger.version == 2 and passenger.status == SubCaseStatus.PENDING
    requested = OutboxEvent.objects.get(event="saga:requested")
    assert requested.payload == {"sagaUrn": run.urn, "subCaseUrn": passenger.urn, "caseUrn": passenger.case.urn}
    assert requested.rooms == []
    assert OutboxEvent.objects.filter(event="subcase:state-changed", payload__version=2).exists()


def test_the_outbox_hands_the_run_to_the_saga_consumer():
    from nexa.platform.outbox import _consumers_for

    assert [(c.task_name, c.queue) for c in _consumers_for("saga:requested")] == [
        ("cases.tasks.saga_run_execute", "saga")
    ]


# --- dedupe and idempotency -----------------------------------------------------------------------------


def test_same_payload_twice_is_the_same_saga(client_for, passenger):
    first = compensate(client_for("IB"), passenger, body())
    # Key order and whitespace do not make it a different payload.
    reordered = {"reason": "Flight cancelled overnight", "items": [MEAL, CASH, TRANSPORT], "version": 1}
    second = compensate(client_for("IB", Role.OPS_SUPERVISOR), passenger, reordered)
    assert second.status_code == 202, second.content
    assert second.json() == first.json()
    assert SagaRun.objects.count() == 1
    assert OutboxEvent.objects.filter(event="saga:requested").count() == 1
    passenger.refresh_from_db()
    assert passenger.version == 2


def test_same_payload_with_an_idempotency_key_is_the_same_saga_too(client_for, passenger):
    first = compensate(client_for("IB"), passenger, body())
    again = compensate(client_for("IB"), passenger, body(), HTTP_IDEMPOTENCY_KEY="k-1")
    assert again.status_code == 202
    assert again.json()["correlationUrn"] == first.json()["correlationUrn"]
    assert SagaRun.objects.count() == 1


def test_idempotency_key_replays_the_first_response(client_for, passenger):
    client = client_for("IB")
    first = compensate(client, passenger, body(), HTTP_IDEMPOTENCY_KEY="comp-42")
    replay = compensate(client, passenger, body(), HTTP_IDEMPOTENCY_KEY="comp-42")
    assert replay.status_code == 202
    assert replay["Idempotent-Replayed"] == "true"
    assert replay.content == first.content
    assert replay["Location"] == first["Location"]
    assert SagaRun.objects.count() == 1
    different = compensate(client, passenger, body(items=[MEAL]), HTTP_IDEMPOTENCY_KEY="comp-42")
    assert_problem(different, 422, "idempotency-key-reused")


def test_a_new_compensation_against_the_new_version_is_a_new_saga(client_for, passenger):
    first = compensate(client_for("IB"), passenger, body(items=[MEAL]))
    second = compensate(client_for("IB"), passenger, body(version=2, items=[MEAL]))
    assert second.status_code == 202
    assert second.json()["sagaUrn"] != first.json()["sagaUrn"]
    assert SagaRun.objects.count() == 2


# --- conflicts ---------------------------------------------------------------------------------------------


def test_stale_version_is_409_with_the_current_version(client_for, passenger):
    compensate(client_for("IB"), passenger, body(items=[MEAL]))
    response = compensate(client_for("IB"), passenger, body(items=[CASH]))
    problem = assert_problem(response, 409, "version-conflict")
    assert problem["version"] == 2
    assert SagaRun.objects.count() == 1


def test_locked_by_another_operator_is_409_with_locked_by(client_for, passenger):
    holder = principal(role=Role.AIRPORT_OPERATOR, operator="urn:nexa:user:holder")
    operators.subcase_lock(principal=holder, sub_case_urn=passenger.urn)
    response = compensate(client_for("IB"), passenger, body())
    problem = assert_problem(response, 409, "subcase-locked")
    assert problem["lockedBy"] == "urn:nexa:user:holder"
    assert problem["expiresInSeconds"] > 0
    assert SagaRun.objects.count() == 0
    assert SubCase.objects.get(pk=passenger.pk).version == 1


def test_the_lock_holder_compensates_with_its_fencing_token_and_a_stale_token_is_409(client_for, passenger):
    me = "urn:nexa:user:ib-airport_operator"
    grant = operators.subcase_lock(
        principal=principal(role=Role.AIRPORT_OPERATOR, operator=me), sub_case_urn=passenger.urn
    )
    stale = compensate(client_for("IB"), passenger, body(), HTTP_X_FENCING_TOKEN=str(grant.fencing_token + 1))
    assert_problem(stale, 409, "stale-fencing-token")
    assert SagaRun.objects.count() == 0
    ok = compensate(client_for("IB"), passenger, body(), HTTP_X_FENCING_TOKEN=str(grant.fencing_token))
    assert ok.status_code == 202, ok.content


def test_malformed_fencing_token_is_400(client_for, passenger):
    assert_problem(compensate(client_for("IB"), passenger, body(), HTTP_X_FENCING_TOKEN="abc"), 400, "validation-error")


@pytest.mark.parametrize("status", [SubCaseStatus.CANCELLED, SubCaseStatus.CLOSED])
def test_a_closed_or_cancelled_passenger_cannot_be_compensated(client_for, passenger, status):
    SubCase.objects.filter(pk=passenger.pk).update(status=status)
    problem = assert_problem(compensate(client_for("IB"), passenger, body()), 409, "subcase-not-compensable")
    assert problem["currentStatus"] == status


# --- validation --------------------------------------------------------------------------------------------


def errors_of(response):
    return {(e["field"], e["message"]) for e in response.json()["errors"]}


def fields_of(response):
    return {e["field"] for e in response.json()["errors"]}


def test_a_hotel_item_needs_an_offer_or_hotel_a_check_in_and_nights(client_for, passenger):
    # HOTEL is a valid item since issue 12 (tests/cases/test_booking_saga.py runs it); its fields are checked.
    response = compensate(client_for("IB"), passenger, body(items=[{"type": "HOTEL", "nights": 0}]))
    assert_problem(response, 400, "validation-error")
    assert fields_of(response) == {"items[0].offerId", "items[0].checkIn", "items[0].nights"}
    assert SagaRun.objects.count() == 0


@pytest.mark.parametrize(
    ("item", "field", "fragment"),
    [
        (
            {"type": "PIZZA", "amount": "5.00", "currency": "EUR"},
            "items[0].type",
            "must be one of MEAL, CASH, TRANSPORT",
        ),
        ({"type": "MEAL", "amount": "0", "currency": "EUR"}, "items[0].amount", "positive"),
        ({"type": "MEAL", "amount": "-3.00", "currency": "EUR"}, "items[0].amount", "positive"),
        ({"type": "MEAL", "amount": "abc", "currency": "EUR"}, "items[0].amount", "not a number"),
        ({"type": "MEAL", "amount": "1.005", "currency": "EUR"}, "items[0].amount", "two decimals"),
        ({"type": "MEAL", "currency": "EUR"}, "items[0].amount", "required"),
        ({"type": "MEAL", "amount": "10.00", "currency": "EUX"}, "items[0].currency", "ISO 4217"),
        ({"type": "MEAL", "amount": "10.00", "currency": "eur"}, "items[0].currency", "ISO 4217"),
        ({"type": "MEAL", "amount": "10.00"}, "items[0].currency", "required"),
        (
            {"type": "MEAL", "amount": "10.00", "currency": "EUR", "expiresAt": "2020-01-01T00:00:00Z"},
            "items[0].expiresAt",
            "future",
        ),
        ({"type": "CASH", "amount": "10.00", "currency": "EUR"}, "items[0].regulation", "required"),
        ({"type": "CASH", "amount": "10.00", "currency": "EUR", "regulation": "XX"}, "items[0].regulation", "one of"),
        ({**TRANSPORT, "provider": "BLABLACAR"}, "items[0].provider", "UBER, CABIFY"),
        ({k: v for k, v in TRANSPORT.items() if k != "pickup"}, "items[0].pickup", "required"),
        ({**TRANSPORT, "dropoff": {"address": "somewhere"}}, "items[0].dropoff", "lat and lng"),
        ({**TRANSPORT, "dropoff": {"lat": 123, "lng": 0}}, "items[0].dropoff", "within range"),
        ({**TRANSPORT, "amount": "20.00"}, "items[0].currency", "required"),
        ("MEAL", "items[0]", "object"),
    ],
)
def test_each_rule_is_named_in_errors(client_for, passenger, item, field, fragment):
    response = compensate(client_for("IB"), passenger, body(items=[item]))
    problem = assert_problem(response, 400, "validation-error")
    assert any(e["field"] == field and fragment in e["message"] for e in problem["errors"]), problem["errors"]
    assert SagaRun.objects.count() == 0


def test_every_violation_is_listed_at_once(client_for, passenger):
    items = [
        {"type": "MEAL", "amount": "-1", "currency": "XXX"},
        {"type": "CASH", "amount": "10.00", "currency": "EUR"},
        {"type": "HOTEL"},
    ]
    response = compensate(client_for("IB"), passenger, {"version": 1, "items": items, "reason": ""})
    assert_problem(response, 400, "validation-error")
    assert {"items[0].amount", "items[0].currency", "items[1].regulation", "items[2].offerId", "reason"} <= fields_of(
        response
    )


def test_empty_items_missing_version_and_reason(client_for, passenger):
    response = compensate(client_for("IB"), passenger, {"items": []})
    assert_problem(response, 400, "validation-error")
    assert {"version", "reason"} <= fields_of(response)
    response = compensate(client_for("IB"), passenger, {"version": 1, "items": [], "reason": "x"})
    assert ("items", "must be a non-empty list") in errors_of(response)


def test_default_limits_per_type_apply_to_the_sum_of_a_type(client_for, passenger):
    meals = [{"type": "MEAL", "amount": "30.00", "currency": "EUR"}] * 2  # 60 > 50
    response = compensate(client_for("IB"), passenger, body(items=[*meals, CASH]))
    problem = assert_problem(response, 422, "unprocessable")
    assert problem["errors"] == [
        {
            "field": "items",
            "message": "MEAL 60.00 EUR would exceed the airline's limit of 50.00 EUR per passenger per disruption "
            "(0.00 EUR already granted)",
        }
    ]
    ok = compensate(client_for("IB"), passenger, body(items=[{"type": "CASH", "amount": "600.00", "currency": "EUR",
                                                             "regulation": "EU261"}]))  # fmt: skip
    assert ok.status_code == 202, ok.content


def test_limits_are_configurable_per_airline(client_for, passenger):
    from decimal import Decimal

    from nexa.platform.models import TenantSettings

    TenantSettings.objects.create(airline="IB", cash_limit=Decimal("100.00"))
    lh_passenger = SubCaseFactory(case=CaseFactory(airline="LH", flight_number="LH1114"), airline="LH")
    cash = {"type": "CASH", "amount": "250.00", "currency": "EUR", "regulation": "EU261"}
    refused = compensate(client_for("IB"), passenger, body(items=[cash]))
    assert_problem(refused, 422, "unprocessable")
    assert "limit of 100.00 EUR" in refused.json()["errors"][0]["message"]
    assert compensate(client_for("LH"), lh_passenger, body(items=[cash])).status_code == 202


def test_transport_fare_cap_counts_against_the_transport_limit(client_for, passenger):
    response = compensate(
        client_for("IB"), passenger, body(items=[{**TRANSPORT, "amount": "151.00", "currency": "EUR"}])
    )
    assert_problem(response, 422, "unprocessable")


# --- retry and cancel in the wrong state ---------------------------------------------------------------


@pytest.mark.parametrize("status", ["PENDING", "RUNNING", "COMPLETED", "CANCELLED", "COMPENSATING"])
def test_retry_needs_a_failed_run(client_for, passenger, status):
    run = make_run(passenger, status=status)
    response = client_for("IB", SUPERVISOR).post(f"/v1/orchestration/runs/{run.urn}/retry", {}, format="json")
    problem = assert_problem(response, 409, "saga-run-state")
    assert problem["currentStatus"] == status


@pytest.mark.parametrize("status", ["FAILED", "CANCELLED", "CANCELLING", "COMPENSATING"])
def test_cancel_is_409_once_failed_or_cancelled(client_for, passenger, status):
    run = make_run(passenger, status=status)
    response = client_for("IB", SUPERVISOR).post(f"/v1/orchestration/runs/{run.urn}/cancel", {}, format="json")
    assert_problem(response, 409, "saga-run-state")


def test_retry_rearms_every_undone_step_under_a_fresh_idempotency_key(client_for, passenger):
    run = make_run(passenger, status=SagaRunStatus.FAILED, items=[MEAL, CASH])
    meal, cash, notify = run.steps.order_by("position")
    SagaStep.objects.filter(pk=meal.pk).update(status="COMPENSATED", attempts=1, result={"cardId": "c1"})
    SagaStep.objects.filter(pk=cash.pk).update(status="FAILED", attempts=1, error={"code": "insufficient_funds"})
    SagaStep.objects.filter(pk=notify.pk).update(status="SKIPPED")
    response = client_for("IB", SUPERVISOR).post(f"/v1/orchestration/runs/{run.urn}/retry", {}, format="json")
    assert response.status_code == 202, response.content
    data = response.json()
    assert data["status"] == "PENDING" and data["retries"] == 1
    steps = {s["name"]: s for s in data["steps"]}
    assert {s["status"] for s in steps.values()} == {"PENDING"}
    assert steps["meal.issue_card"]["idempotencyKey"] == f"{meal.urn}/retry-1"
    assert steps["cash.payout"]["idempotencyKey"] == f"{cash.urn}/retry-1"
    assert steps["notify.passenger"]["idempotencyKey"] == notify.urn  # never ran: its own URN is still unused
    assert OutboxEvent.objects.filter(event="saga:requested", payload__sagaUrn=run.urn).count() == 2


def test_retry_refuses_a_run_whose_compensation_failed(client_for, passenger):
    run = make_run(passenger, status=SagaRunStatus.FAILED)
    SagaStep.objects.filter(run=run, position=0).update(status="COMPENSATION_FAILED")
    response = client_for("IB", SUPERVISOR).post(f"/v1/orchestration/runs/{run.urn}/retry", {}, format="json")
    assert_problem(response, 409, "saga-run-compensation-failed")


# --- progress ---------------------------------------------------------------------------------------------


def test_progress_lists_runs_and_steps(client_for, passenger):
    accepted = compensate(client_for("IB"), passenger, body()).json()
    progress = client_for("IB").get(f"/v1/orchestration/cases/{passenger.case.urn}/progress")
    assert progress.status_code == 200
    [run] = progress.json()["runs"]
    assert run["sagaUrn"] == accepted["sagaUrn"]
    assert run["correlationUrn"] == accepted["correlationUrn"]
    assert run["subCaseUrn"] == passenger.urn and run["status"] == "PENDING"
    assert [(s["name"], s["status"], s["attempts"]) for s in run["steps"]] == [
        ("meal.issue_card", "PENDING", 0),
        ("cash.payout", "PENDING", 0),
        ("transport.request_ride", "PENDING", 0),
        ("notify.passenger", "PENDING", 0),
    ]
    assert all(s["stepUrn"].startswith("urn:nexa:step:") for s in run["steps"])
    assert {"startedAt", "completedAt", "result", "error", "attemptLog", "compensation"} <= set(run["steps"][0])


def test_openapi_documents_the_orchestration_routes(client):
    paths = client.get("/v1/openapi.json").json()["paths"]
    assert "post" in paths["/v1/subcases/{sub_case_urn}/compensate"]
    assert "get" in paths["/v1/orchestration/cases/{case_urn}/progress"]
    assert "post" in paths["/v1/orchestration/runs/{saga_urn}/retry"]
    assert "post" in paths["/v1/orchestration/runs/{saga_urn}/cancel"]
    assert "get" in paths["/v1/subcases/{sub_case_urn}/wallet"]


# --- concurrency (real threads, real PostgreSQL) ---------------------------------------------------------


def _in_threads(calls):
    """Run every call at once (one thread and database connection each); returns results or exceptions."""
    import threading

    from django.db import connection

    start = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(index, call):
        try:
            start.wait(timeout=10)
            results[index] = call()
        except Exception as exc:  # noqa: BLE001 (the test inspects every outcome)
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(index, call)) for index, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def _problem_slug(outcome) -> str | None:
    from nexa.platform.problems import Problem

    return outcome.slug if isinstance(outcome, Problem) else None


@pytest.mark.django_db(transaction=True)
def test_a_flight_is_compensated_in_parallel_with_case_transitions_and_nothing_deadlocks():
    """Compensations lock only their sub-case (not the case row); transitions lock the case first. Racing
    both on the same passengers: for each one exactly one write wins, the other gets a version conflict,
    and nothing fails otherwise (a lock-order deadlock would surface as a database error here)."""
    case = CaseFactory(airline="IB")
    passengers = [SubCaseFactory(case=case, airline="IB") for _ in range(6)]
    operator = principal(operator="urn:nexa:user:ib-racer")
    calls = []
    for passenger in passengers:
        calls.append(lambda p=passenger: services.subcase_compensate(
            principal=operator, sub_case_urn=p.urn, expected_version=1, items=[MEAL], reason="race"))  # fmt: skip
        calls.append(lambda p=passenger: services.subcase_transition(
            principal=operator, sub_case=p, transition="mark_grouped", expected_version=1))  # fmt: skip
    outcomes = _in_threads(calls)

    unexpected = [o for o in outcomes if isinstance(o, Exception) and _problem_slug(o) != "version-conflict"]
    assert not unexpected, unexpected
    for index, passenger in enumerate(passengers):
        compensated, grouped = outcomes[2 * index], outcomes[2 * index + 1]
        winners = [o for o in (compensated, grouped) if not isinstance(o, Exception)]
        assert len(winners) == 1, (compensated, grouped)
        passenger.refresh_from_db()
        assert passenger.version == 2
        assert SagaRun.objects.filter(sub_case=passenger).count() == (0 if isinstance(compensated, Exception) else 1)


@pytest.mark.django_db(transaction=True)
def test_the_same_payload_sent_at_once_makes_one_saga():
    passenger = SubCaseFactory(case=CaseFactory(airline="IB"), airline="IB")
    operator = principal()
    outcomes = _in_threads([
        lambda: services.subcase_compensate(
            principal=operator, sub_case_urn=passenger.urn, expected_version=1, items=[MEAL, CASH], reason="dup")
        for _ in range(6)
    ])  # fmt: skip
    assert not [o for o in outcomes if isinstance(o, Exception)], outcomes
    assert {run.pk for run, _created in outcomes} == {SagaRun.objects.get(sub_case=passenger).pk}
    assert sorted(created for _run, created in outcomes) == [False] * 5 + [True]
    passenger.refresh_from_db()
    assert passenger.version == 2
