"""The compensation saga engine against the REAL provider simulators (separate HTTP processes), driven
in-process through :func:`cases.saga.execute` — exactly what the Celery task calls — so each scenario
is deterministic: happy path, permanent refusal → compensation in reverse → MANUAL_REVIEW and
``saga:failed``, transient errors then success, an open circuit, cancel and retry."""

import time
from decimal import Decimal

import pytest
from django.test import override_settings

from booking.models import WalletEntry
from booking.selectors import wallet_for_subcase
from cases import saga, services
from cases.models import SagaRun, SagaStep, SubCase, SubCaseStatus
from nexa.platform.auth import Principal
from nexa.platform.breakers import breaker_states
from nexa.platform.models import OutboxEvent
from nexa.platform.roles import Role
from tests.cases.factories import CASH, MEAL, CaseFactory, SubCaseFactory
from tests.cases.factories import TRANSPORT as UBER_TRANSPORT

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.usefixtures("simulator_control"),
]

TRANSPORT = {**UBER_TRANSPORT, "provider": "CABIFY"}
FAST = {
    "NEXA_SAGA_BACKOFF_BASE_SECONDS": 0.01,
    "NEXA_SAGA_BACKOFF_MAX_SECONDS": 0.05,
    "NEXA_SAGA_UNAVAILABLE_WAIT_SECONDS": 0.01,
}


def supervisor(airline="IB"):
    return Principal(airline=airline, role=Role.OPS_SUPERVISOR, operator_urn="urn:nexa:user:ib-sup", subject="ib-sup")


@pytest.fixture
def passenger():
    return SubCaseFactory(case=CaseFactory(airline="IB"), airline="IB", language="es")


def accept(sub_case, items):
    run, created = services.subcase_compensate(
        principal=supervisor(),
        sub_case_urn=sub_case.urn,
        expected_version=SubCase.objects.get(pk=sub_case.pk).version,
        items=items,
        reason="storm",
    )
    assert created
    return run


def drive(run, *, max_calls=50):
    """Call the engine like the task does, honouring its waits, until it has nothing more to do."""
    for _ in range(max_calls):
        wait = saga.execute(run.pk)
        if wait is None:
            run.refresh_from_db()
            return run
        time.sleep(min(wait, 0.2))
    raise AssertionError(f"{run.urn} still wants to run after {max_calls} calls")


def steps_of(run):
    return {step.kind: step for step in SagaStep.objects.filter(run=run)}


def events(name, run):
    return [e.payload for e in OutboxEvent.objects.filter(event=name).order_by("created_at") if
            e.payload.get("caseUrn") == run.case.urn]  # fmt: skip


def psp_balance(simulator_control, sub_case):
    import httpx

    answer = httpx.get(f"{simulator_control.psp.url}/v1/wallets/{sub_case.urn}", timeout=5).json()
    return {currency: Decimal(amount) for currency, amount in answer["balances"].items() if Decimal(amount)}


def ledger_balance(sub_case):
    view = wallet_for_subcase(principal=supervisor(), sub_case=sub_case)
    return {currency: Decimal(amount) for currency, amount in view.balances.items() if Decimal(amount)}


@override_settings(**FAST)
def test_happy_path_delivers_each_effect_once(simulator_control, passenger):
    run = drive(accept(passenger, [MEAL, CASH, TRANSPORT]))
    assert run.status == "COMPLETED" and run.finished_at is not None
    steps = steps_of(run)
    assert {kind: step.status for kind, step in steps.items()} == dict.fromkeys(
        ["MEAL", "CASH", "TRANSPORT", "NOTIFY"], "COMPLETED"
    )
    assert all(step.attempts == 1 for step in steps.values())

    [card] = simulator_control.psp.entries("card_issued")
    assert card["subCaseUrn"] == passenger.urn and Decimal(card["amount"]) == Decimal("25.00")
    assert steps["MEAL"].result["cardId"] == card["cardId"]
    [payout] = simulator_control.psp.entries("payout")
    assert steps["CASH"].result["payoutId"] == payout["payoutId"]
    [ride] = simulator_control.transport.entries("ride_requested")
    assert steps["TRANSPORT"].result["rideId"] == ride["rideId"] and ride["provider"] == "CABIFY"
    assert steps["NOTIFY"].result["subCaseUrn"] == passenger.urn

    # The wallet ledger has exactly the one credit, and agrees with the PSP.
    [credit] = WalletEntry.objects.filter(sub_case=passenger)
    assert (credit.kind, credit.amount, credit.provider_ref) == ("CREDIT", Decimal("250.00"), payout["payoutId"])
    assert ledger_balance(passenger) == psp_balance(simulator_control, passenger) == {"EUR": Decimal("250.00")}

    # graph:step:* events for every step, in order, with the spec's payload shapes.
    started = events(saga.STEP_STARTED, run)
    completed = events(saga.STEP_COMPLETED, run)
    assert [e["name"] for e in started] == ["meal.issue_card", "cash.payout", "transport.request_ride",
                                            "notify.passenger"]  # fmt: skip
    assert set(started[0]) == {"caseUrn", "stepUrn", "name", "startedAt"}
    assert set(completed[0]) == {"caseUrn", "stepUrn", "completedAt", "result"}
    assert [e["stepUrn"] for e in completed] == [e["stepUrn"] for e in started]
    assert completed[0]["result"]["cardId"] == card["cardId"]
    assert OutboxEvent.objects.filter(event=saga.SAGA_COMPLETED, payload__sagaUrn=run.urn).count() == 1
    # Running it again (a re-delivered message) changes nothing.
    assert saga.execute(run.pk) is None
    assert len(simulator_control.psp.entries()) == 2 and len(simulator_control.transport.entries()) == 1


@override_settings(**FAST)
def test_a_step_that_crashed_mid_call_is_repeated_with_the_same_key_and_has_one_effect(simulator_control, passenger):
    run = accept(passenger, [CASH])
    step = steps_of(run)["CASH"]
    # A worker made the payout, then died before recording it: the step is RUNNING with one attempt.
    from booking import services as booking

    booking.cash_payout(
        idempotency_key=step.idempotency_key, sub_case_urn=passenger.urn, amount="250.00", currency="EUR",
        regulation="EU261",
    )  # fmt: skip
    SagaStep.objects.filter(pk=step.pk).update(status="RUNNING", attempts=1)
    SagaRun.objects.filter(pk=run.pk).update(status="RUNNING")
    run = drive(run)
    assert run.status == "COMPLETED"
    assert len(simulator_control.psp.entries("payout")) == 1
    assert steps_of(run)["CASH"].attempts == 2
    assert ledger_balance(passenger) == psp_balance(simulator_control, passenger) == {"EUR": Decimal("250.00")}


@override_settings(**FAST)
def test_permanent_refusal_compensates_in_reverse_and_sends_the_passenger_to_review(simulator_control, passenger):
    simulator_control.transport.refuse({passenger.urn: "no_drivers_available"})
    run = drive(accept(passenger, [MEAL, CASH, TRANSPORT]))
    assert run.status == "FAILED"
    assert run.failure_category == "BOOKING_FAILED"
    steps = steps_of(run)
    assert {k: s.status for k, s in steps.items()} == {
        "MEAL": "COMPENSATED",
        "CASH": "COMPENSATED",
        "TRANSPORT": "FAILED",
        "NOTIFY": "SKIPPED",
    }
    assert steps["TRANSPORT"].error["code"] == "no_drivers_available"
    # Undone in reverse order: the payout is reversed before the card is voided.
    psp = [e["type"] for e in simulator_control.psp.entries()]
    assert psp == ["card_issued", "payout", "payout_reversed", "card_voided"]
    assert simulator_control.transport.entries("ride_requested") == []
    assert steps["CASH"].compensated_at < steps["MEAL"].compensated_at
    # The ledger carries the credit and its reversal and still agrees with the PSP (zero).
    assert sorted(WalletEntry.objects.filter(sub_case=passenger).values_list("kind", "amount")) == [
        ("CREDIT", Decimal("250.00")),
        ("REVERSAL", Decimal("-250.00")),
    ]
    assert ledger_balance(passenger) == psp_balance(simulator_control, passenger) == {}

    passenger.refresh_from_db()
    assert passenger.status == SubCaseStatus.MANUAL_REVIEW
    [failed] = OutboxEvent.objects.filter(event=saga.SAGA_FAILED)
    payload = failed.payload
    assert payload["caseUrn"] == passenger.case.urn and payload["subCaseUrn"] == passenger.urn
    assert payload["sagaUrn"] == run.urn and payload["category"] == "BOOKING_FAILED"
    [attempt] = payload["attempts"]
    assert attempt["step"] == "transport.request_ride" and attempt["provider"] == "cabify"
    assert attempt["code"] == "no_drivers_available" and attempt["message"] and attempt["at"]
    assert failed.rooms == [f"case:{passenger.case.urn}"]  # saga events go to the case room only
    from audit.models import AuditEntry

    review = AuditEntry.objects.get(action="subcase.send_to_review", entity_urn=passenger.urn)
    assert review.actor == saga.SYSTEM_SAGA_ACTOR and "BOOKING_FAILED" in review.reason


@pytest.mark.parametrize(("code", "category"), [("insufficient_funds", "PAYMENT_FAILED"),
                                                ("fraud_hold", "PAYMENT_FAILED")])  # fmt: skip
@override_settings(**FAST)
def test_psp_refusals_are_payment_failures_with_the_ride_cancelled(simulator_control, passenger, code, category):
    simulator_control.psp.refuse({passenger.urn: code})
    run = drive(accept(passenger, [TRANSPORT, CASH]))
    assert (run.status, run.failure_category) == ("FAILED", category)
    assert [e["type"] for e in simulator_control.transport.entries()] == ["ride_requested", "ride_cancelled"]
    assert steps_of(run)["TRANSPORT"].status == "COMPENSATED"
    assert steps_of(run)["CASH"].error["code"] == code
    assert SubCase.objects.get(pk=passenger.pk).status == SubCaseStatus.MANUAL_REVIEW
    assert WalletEntry.objects.filter(sub_case=passenger).count() == 0


@override_settings(**FAST)
def test_transient_errors_retry_with_backoff_then_succeed(simulator_control, passenger):
    run = accept(passenger, [MEAL])
    simulator_control.psp.error_rate(1.0, status=503)
    wait = saga.execute(run.pk)
    assert wait is not None and 0 < wait < 1
    step = steps_of(run)["MEAL"]
    assert (step.status, step.attempts) == ("RUNNING", 1)
    assert step.attempt_log[0]["outcome"] == "RETRY" and step.attempt_log[0]["httpStatus"] == 503
    progress = events(saga.STEP_PROGRESS, run)
    assert progress and progress[-1]["stepUrn"] == step.urn and "retrying" in progress[-1]["message"]
    simulator_control.psp.error_rate(0.0)
    run = drive(run)
    assert run.status == "COMPLETED"
    step = steps_of(run)["MEAL"]
    assert step.attempts == 2 and [a["outcome"] for a in step.attempt_log] == ["RETRY", "COMPLETED"]
    assert len(simulator_control.psp.entries("card_issued")) == 1


@override_settings(**FAST, NEXA_SAGA_MAX_ATTEMPTS=3)
def test_transient_errors_are_bounded_then_fail_to_review(simulator_control, passenger):
    simulator_control.psp.error_rate(1.0, status=502)
    run = drive(accept(passenger, [MEAL]))
    assert (run.status, run.failure_category) == ("FAILED", "PAYMENT_FAILED")
    assert steps_of(run)["MEAL"].attempts == 3
    [failed] = OutboxEvent.objects.filter(event=saga.SAGA_FAILED)
    assert len(failed.payload["attempts"]) == 3
    assert SubCase.objects.get(pk=passenger.pk).status == SubCaseStatus.MANUAL_REVIEW


@override_settings(**FAST, NEXA_SAGA_MAX_ATTEMPTS=10, NEXA_SAGA_UNAVAILABLE_MAX_ATTEMPTS=2, NEXA_BREAKER_FAIL_MAX=2)
def test_an_open_circuit_makes_the_saga_wait_then_fail_to_review(simulator_control, passenger):
    from nexa.platform import breakers

    breakers._breakers.clear()  # pick up the overridden NEXA_BREAKER_FAIL_MAX
    try:
        simulator_control.psp.outage()
        run = drive(accept(passenger, [CASH]))
        assert breaker_states()["psp"] == "open"
        assert (run.status, run.failure_category) == ("FAILED", "PROVIDER_UNAVAILABLE")
        codes = [a["code"] for a in steps_of(run)["CASH"].attempt_log]
        assert codes[-1] == "circuit_open" and "outage" in codes
        assert SubCase.objects.get(pk=passenger.pk).status == SubCaseStatus.MANUAL_REVIEW
    finally:
        breakers._breakers.clear()


@override_settings(**FAST)
def test_cancel_undoes_a_completed_run(simulator_control, passenger):
    run = drive(accept(passenger, [MEAL, CASH, TRANSPORT]))
    services.saga_run_cancel(principal=supervisor(), run=run, reason="passenger rebooked")
    run = drive(run)
    assert run.status == "CANCELLED"
    steps = steps_of(run)
    assert [steps[k].status for k in ("MEAL", "CASH", "TRANSPORT", "NOTIFY")] == [
        "COMPENSATED", "COMPENSATED", "COMPENSATED", "COMPLETED",
    ]  # fmt: skip
    assert [e["type"] for e in simulator_control.psp.entries()] == [
        "card_issued", "payout", "payout_reversed", "card_voided",
    ]  # fmt: skip
    assert [e["type"] for e in simulator_control.transport.entries()] == ["ride_requested", "ride_cancelled"]
    assert ledger_balance(passenger) == psp_balance(simulator_control, passenger) == {}
    assert OutboxEvent.objects.filter(event=saga.SAGA_CANCELLED, payload__sagaUrn=run.urn).count() == 1
    # A cancelled run is not sent to review: the operator decided.
    assert SubCase.objects.get(pk=passenger.pk).status == SubCaseStatus.PENDING


@override_settings(**FAST)
def test_cancel_before_any_step_skips_everything(simulator_control, passenger):
    run = accept(passenger, [MEAL])
    services.saga_run_cancel(principal=supervisor(), run=run)
    run = drive(run)
    assert run.status == "CANCELLED"
    assert {s.status for s in steps_of(run).values()} == {"SKIPPED"}
    assert simulator_control.psp.entries() == []


@override_settings(**FAST)
def test_retry_after_a_refusal_delivers_everything_once(simulator_control, passenger):
    simulator_control.psp.refuse({passenger.urn: "card_declined"})
    run = drive(accept(passenger, [TRANSPORT, MEAL]))
    assert run.status == "FAILED"
    simulator_control.psp.control(refuse={})
    services.saga_run_retry(principal=supervisor(), run=run, reason="PSP limit raised")
    run = drive(run)
    assert run.status == "COMPLETED" and run.retries == 1
    # The first ride was cancelled by the compensation; the retry booked one new ride and one card.
    assert [e["type"] for e in simulator_control.transport.entries()] == [
        "ride_requested", "ride_cancelled", "ride_requested",
    ]  # fmt: skip
    assert [e["type"] for e in simulator_control.psp.entries()] == ["card_issued"]
    steps = steps_of(run)
    assert steps["MEAL"].idempotency_key.endswith("/retry-1")
    assert steps["TRANSPORT"].result["rideId"] == simulator_control.transport.entries()[-1]["rideId"]


def test_stalled_runs_are_those_nobody_drives(passenger):
    import datetime as dt

    from django.db.models.functions import Now

    fresh = accept(passenger, [MEAL])
    dead_worker = accept(passenger, [CASH])
    alive_worker = accept(passenger, [TRANSPORT])
    forgotten = accept(passenger, [{**MEAL, "amount": "10.00"}])
    finished = accept(passenger, [{**MEAL, "amount": "11.00"}])
    SagaRun.objects.filter(pk=dead_worker.pk).update(status="RUNNING", lease_expires_at=Now() - dt.timedelta(seconds=1))
    SagaRun.objects.filter(pk=alive_worker.pk).update(
        status="RUNNING", lease_expires_at=Now() + dt.timedelta(seconds=60)
    )
    SagaRun.objects.filter(pk=forgotten.pk).update(updated_at=Now() - dt.timedelta(hours=1))
    SagaRun.objects.filter(pk=finished.pk).update(status="COMPLETED", lease_expires_at=Now() - dt.timedelta(seconds=1))
    assert set(saga.stalled_run_ids()) == {dead_worker.pk, forgotten.pk}
    queued = []
    assert saga.resume_stalled(queued.append) == 2
    assert set(queued) == {dead_worker.urn, forgotten.urn}
    assert fresh.pk not in saga.stalled_run_ids()


@override_settings(**FAST)
def test_an_operators_lock_does_not_stop_the_failed_saga_from_reaching_review(simulator_control, passenger):
    from operators import services as operators

    grant = operators.subcase_lock(principal=supervisor(), sub_case_urn=passenger.urn)
    simulator_control.psp.refuse({passenger.urn: "card_declined"})
    run, _ = services.subcase_compensate(
        principal=supervisor(), sub_case_urn=passenger.urn, expected_version=1, items=[MEAL], reason="storm",
        fencing_token=grant.fencing_token,
    )  # fmt: skip
    run = drive(run)
    assert run.status == "FAILED"
    passenger.refresh_from_db()
    assert passenger.status == SubCaseStatus.MANUAL_REVIEW
    # The lock itself is untouched: the operator still holds it.
    assert operators.subcase_lock(principal=supervisor(), sub_case_urn=passenger.urn).fencing_token == (
        grant.fencing_token
    )


# --- issue 9 §2: a step whose outcome is unknown is resolved under its ORIGINAL key ------------------------


def payouts(simulator_control):
    return simulator_control.psp.entries("payout")


def psp_recovers(simulator_control):
    """The PSP answers again, and its circuit (opened by the failures) has closed after its reset time."""
    from nexa.platform.breakers import breaker_reset

    simulator_control.psp.control(faultAfterProcessing={}, errorRate=0.0)
    breaker_reset("psp")


@override_settings(**FAST)
def test_a_payout_processed_then_lost_is_resolved_on_retry_and_paid_exactly_once(simulator_control, passenger):
    # The PSP makes the payout and then every answer is lost (5xx), lookups included: the step fails
    # with its outcome unknown and the compensation cannot resolve it either.
    simulator_control.psp.fault_after_processing({"*": 503})
    run = drive(accept(passenger, [CASH]))
    assert run.status == "FAILED"
    step = steps_of(run)["CASH"]
    assert (step.status, step.outcome_unknown) == ("FAILED", True)
    assert len(payouts(simulator_control)) == 1
    [failed] = OutboxEvent.objects.filter(event=saga.SAGA_FAILED, payload__sagaUrn=run.urn)
    assert failed.payload["outcomeUnknown"] == [step.urn]

    psp_recovers(simulator_control)
    services.saga_run_retry(principal=supervisor(), run=run, reason="PSP recovered")
    run = drive(run)
    assert run.status == "COMPLETED"
    step = steps_of(run)["CASH"]
    # Resolved under the original key: the payout the PSP made IS the step's result; no second payout.
    assert step.idempotency_key == step.urn and not step.outcome_unknown
    [payout] = payouts(simulator_control)
    assert step.result["payoutId"] == payout["payoutId"]
    [credit] = WalletEntry.objects.filter(sub_case=passenger)
    assert credit.provider_ref == payout["payoutId"]
    assert ledger_balance(passenger) == psp_balance(simulator_control, passenger) == {"EUR": Decimal("250.00")}


@override_settings(**FAST)
def test_a_step_the_provider_never_executed_is_retried_under_a_new_key_and_pays_once(simulator_control, passenger):
    simulator_control.psp.error_rate(1.0, status=503)  # refused before any effect, lookups too
    run = drive(accept(passenger, [CASH]))
    assert run.status == "FAILED" and steps_of(run)["CASH"].outcome_unknown
    assert payouts(simulator_control) == []

    psp_recovers(simulator_control)
    services.saga_run_retry(principal=supervisor(), run=run, reason="PSP recovered")
    run = drive(run)
    assert run.status == "COMPLETED"
    step = steps_of(run)["CASH"]
    # The PSP confirmed it never executed the original key: only then a new key.
    assert step.idempotency_key == f"{step.urn}/retry-1"
    assert "NOT_EXECUTED" in [entry["outcome"] for entry in step.attempt_log]
    [payout] = payouts(simulator_control)
    assert step.result["payoutId"] == payout["payoutId"]
    assert ledger_balance(passenger) == psp_balance(simulator_control, passenger) == {"EUR": Decimal("250.00")}


@override_settings(**FAST, NEXA_BREAKER_FAIL_MAX=50)
def test_a_failed_run_undoes_a_payout_whose_answer_was_lost(simulator_control, passenger):
    # Only the payout's answer is lost (its lookup and reversal answer): the compensation learns the
    # payout was made, records it in the ledger, and reverses it once.
    simulator_control.psp.fault_after_processing({"/v1/payouts": 503})
    run = drive(accept(passenger, [MEAL, CASH]))
    assert run.status == "FAILED"
    steps = steps_of(run)
    assert [steps[k].status for k in ("MEAL", "CASH")] == ["COMPENSATED", "COMPENSATED"]
    assert [e["type"] for e in simulator_control.psp.entries()] == [
        "card_issued", "payout", "payout_reversed", "card_voided",
    ]  # fmt: skip
    simulator_control.psp.fault_after_processing({})
    assert sorted(WalletEntry.objects.filter(sub_case=passenger).values_list("kind", flat=True)) == [
        "CREDIT", "REVERSAL",
    ]  # fmt: skip
    assert ledger_balance(passenger) == psp_balance(simulator_control, passenger) == {}


@override_settings(**FAST, NEXA_BREAKER_FAIL_MAX=50)
def test_cancel_undoes_a_payout_in_doubt_exactly_once(simulator_control, passenger):
    # The payout is made, its answer lost (and so is every replay of its key): the step is in doubt.
    simulator_control.psp.fault_after_processing({"/v1/payouts": "drop"})
    run = accept(passenger, [CASH])
    assert saga.execute(run.pk) is not None  # attempt 1 timed out; waiting to retry
    assert steps_of(run)["CASH"].status == "RUNNING"
    services.saga_run_cancel(principal=supervisor(), run=run, reason="passenger rebooked")
    run = drive(run)
    assert run.status == "CANCELLED"
    step = steps_of(run)["CASH"]
    assert step.status == "COMPENSATED" and not step.outcome_unknown
    assert [e["type"] for e in simulator_control.psp.entries()] == ["payout", "payout_reversed"]
    simulator_control.psp.fault_after_processing({})
    assert ledger_balance(passenger) == psp_balance(simulator_control, passenger) == {}
    # Driving it again changes nothing.
    assert saga.execute(run.pk) is None
    assert len(simulator_control.psp.entries()) == 2


@override_settings(**FAST, NEXA_BREAKER_FAIL_MAX=50)
def test_a_card_and_a_ride_in_doubt_are_resolved_by_key_and_undone_once(simulator_control, passenger):
    # A card, then (another passenger) a ride, are made and their answers lost on every attempt: each run
    # fails on its step in doubt; the compensation looks it up by key and undoes it exactly once.
    simulator_control.psp.fault_after_processing({"/v1/virtual-cards": 503})
    simulator_control.transport.fault_after_processing({"/api/v4/journey": "drop"})
    meal_run = drive(accept(passenger, [MEAL]))
    other = SubCaseFactory(case=passenger.case, airline="IB")
    ride_run = drive(accept(other, [TRANSPORT]))
    assert meal_run.status == ride_run.status == "FAILED"
    meal, ride = steps_of(meal_run)["MEAL"], steps_of(ride_run)["TRANSPORT"]
    assert (meal.status, meal.outcome_unknown, ride.status, ride.outcome_unknown) == (
        "COMPENSATED", False, "COMPENSATED", False,
    )  # fmt: skip
    [card] = simulator_control.psp.entries("card_issued")
    assert meal.result["cardId"] == card["cardId"]
    assert [e["type"] for e in simulator_control.psp.entries()] == ["card_issued", "card_voided"]
    [requested] = simulator_control.transport.entries("ride_requested")
    assert ride.result["rideId"] == requested["rideId"]
    assert [e["type"] for e in simulator_control.transport.entries()] == ["ride_requested", "ride_cancelled"]
