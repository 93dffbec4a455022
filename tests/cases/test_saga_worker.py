"""The compensation saga end to end: the API accepts, the outbox hands the run to a REAL Celery worker
(``celery -A nexa worker`` subprocess) that calls the REAL provider simulators. Includes the crash
case: the worker is SIGKILLed in the middle of a provider call, another worker resumes the run, and
the simulator's ledger shows exactly one effect."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from cases.models import SagaRun, SagaStep
from nexa.celery import app as celery_app
from nexa.platform.models import OutboxEvent
from tests.cases.factories import CASH, MEAL, TRANSPORT, CaseFactory, SubCaseFactory
from tests.fixtures import BASE_DIR, WORKER_QUEUES, CeleryWorkerProcess

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("simulator_control")]

LEASE_SECONDS = 3
RUN_TIMEOUT = 60.0


def start_worker(subprocess_env, log_dir: Path, *, pool: str = "solo", concurrency: int = 1) -> CeleryWorkerProcess:
    celery_bin = Path(sys.executable).with_name("celery")
    if not celery_bin.exists():
        celery_bin = Path(shutil.which("celery") or "celery")
    hostname = f"nexa-saga-{os.getpid()}-{uuid.uuid4().hex[:8]}@tests"
    log_path = log_dir / f"{hostname.split('@')[0]}.log"
    env = {
        **subprocess_env,
        "NEXA_TEST_CELERY_WORKER": "1",
        "NEXA_SAGA_LEASE_SECONDS": str(LEASE_SECONDS),
        "NEXA_SAGA_BACKOFF_BASE_SECONDS": "0.2",
        "NEXA_SAGA_BACKOFF_MAX_SECONDS": "1",
        "NEXA_SAGA_HEARTBEAT_SECONDS": "0.5",
    }
    command = [
        str(celery_bin), "-A", "nexa", "worker", "-Q", WORKER_QUEUES, f"--pool={pool}", f"--concurrency={concurrency}",
        "--loglevel=INFO", "-n", hostname, "--without-heartbeat", "--without-mingle", "--without-gossip",
    ]  # fmt: skip
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(command, cwd=BASE_DIR, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    worker = CeleryWorkerProcess(process=process, hostname=hostname, log_path=log_path)
    deadline = time.monotonic() + 60
    while not worker.ping(timeout=0.5):
        if process.poll() is not None or time.monotonic() > deadline:
            worker.stop()
            pytest.fail(f"saga worker did not start:\n{worker.log_tail()}")
    return worker


@pytest.fixture
def workers(subprocess_env, tmp_path):
    celery_app.control.purge()
    started: list[CeleryWorkerProcess] = []

    def start(**options) -> CeleryWorkerProcess:
        worker = start_worker(subprocess_env, tmp_path, **options)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def compensate(client, sub_case, items):
    response = client.post(
        f"/v1/subcases/{sub_case.urn}/compensate",
        data=json.dumps({"version": 1, "items": items, "reason": "storm"}),
        content_type="application/json",
    )
    assert response.status_code == 202, response.content
    return response.json()


def wait_for(predicate, timeout=RUN_TIMEOUT, what="condition", worker=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}\n{worker.log_tail() if worker else ''}")


def run_status(saga_urn):
    return SagaRun.objects.get(pk=saga_urn.rsplit(":", 1)[1]).status


def test_happy_path_end_to_end_with_a_real_worker(client_for, workers, simulator_control):
    worker = workers()
    passenger = SubCaseFactory(case=CaseFactory(airline="IB"), airline="IB")
    client = client_for("IB")
    accepted = compensate(client, passenger, [MEAL, CASH, TRANSPORT])
    wait_for(lambda: run_status(accepted["sagaUrn"]) == "COMPLETED", what="the saga", worker=worker)

    progress = client.get(f"/v1/orchestration/cases/{passenger.case.urn}/progress").json()
    [run] = progress["runs"]
    assert run["status"] == "COMPLETED" and run["startedAt"] and run["finishedAt"]
    assert [(s["name"], s["status"], s["attempts"]) for s in run["steps"]] == [
        ("meal.issue_card", "COMPLETED", 1),
        ("cash.payout", "COMPLETED", 1),
        ("transport.request_ride", "COMPLETED", 1),
        ("notify.passenger", "COMPLETED", 1),
    ]
    assert len(simulator_control.psp.entries("card_issued")) == 1
    assert len(simulator_control.psp.entries("payout")) == 1
    assert len(simulator_control.transport.entries("ride_requested")) == 1

    wallet = client.get(f"/v1/subcases/{passenger.urn}/wallet").json()
    psp = httpx.get(f"{simulator_control.psp.url}/v1/wallets/{passenger.urn}", timeout=5).json()
    assert wallet["balances"] == {"EUR": "250.00"}
    assert {c: Decimal(a) for c, a in psp["balances"].items()} == {"EUR": Decimal("250.00")}
    assert [(e["kind"], e["amount"]) for e in wallet["entries"]] == [("CREDIT", "250.00")]


def test_many_sagas_at_once_on_make_runs_thread_pool_each_have_exactly_one_effect(
    client_for, workers, simulator_control
):
    """`make run` runs sagas on a thread pool (nexa.devstack.WORKER_POOL): many runs in flight in one
    process, each with its own database connection, must not step on each other."""
    from nexa import devstack

    worker = workers(pool=devstack.WORKER_POOL, concurrency=8)
    case = CaseFactory(airline="IB")
    passengers = [SubCaseFactory(case=case, airline="IB") for _ in range(16)]
    simulator_control.psp.control(latencyMs=[20, 80])
    client = client_for("IB")
    sagas = [compensate(client, passenger, [MEAL, CASH, TRANSPORT])["sagaUrn"] for passenger in passengers]

    wait_for(lambda: all(run_status(urn) == "COMPLETED" for urn in sagas), what="every saga", worker=worker)
    urns = {passenger.urn for passenger in passengers}
    for kind, ledger in (("card_issued", simulator_control.psp), ("payout", simulator_control.psp),
                         ("ride_requested", simulator_control.transport)):  # fmt: skip
        per_passenger = [entry.get("subCaseUrn") for entry in ledger.entries(kind)]
        assert sorted(per_passenger) == sorted(urns), kind
    assert SagaStep.objects.filter(run__sub_case__case=case, status="COMPLETED").count() == 16 * 4


def test_worker_killed_mid_payout_resumes_with_exactly_one_effect(client_for, workers, simulator_control):
    first = workers()
    passenger = SubCaseFactory(case=CaseFactory(airline="IB"), airline="IB")
    # The PSP applies the payout, then takes 8 s to answer: the worker dies inside the call.
    simulator_control.psp.control(latencyAfterMs=8000)
    accepted = compensate(client_for("IB"), passenger, [CASH])
    wait_for(lambda: simulator_control.psp.entries("payout"), what="the payout to reach the PSP", worker=first)
    step = SagaStep.objects.get(run__pk=accepted["sagaUrn"].rsplit(":", 1)[1], kind="CASH")
    assert (step.status, step.attempts) == ("RUNNING", 1)
    # While it waits on the PSP, the worker's heartbeat renews its lease and reports progress.
    wait_for(
        lambda: OutboxEvent.objects.filter(
            event="graph:step:progress", payload__stepUrn=step.urn, payload__message__startswith="waiting for psp"
        ).exists(),
        timeout=5,
        what="a heartbeat",
        worker=first,
    )
    first.process.send_signal(signal.SIGKILL)
    first.process.wait(timeout=10)

    simulator_control.psp.control(latencyAfterMs=0)
    second = workers()
    # The beat sweep finds the run whose worker died once its lease expires.
    time.sleep(LEASE_SECONDS + 0.5)
    celery_app.send_task("cases.tasks.saga_runs_resume_stalled", queue="saga")
    wait_for(lambda: run_status(accepted["sagaUrn"]) == "COMPLETED", what="the resumed saga", worker=second)

    step.refresh_from_db()
    assert step.status == "COMPLETED" and step.attempts == 2
    payouts = simulator_control.psp.entries("payout")
    assert len(payouts) == 1
    assert step.result["payoutId"] == payouts[0]["payoutId"]
    wallet = client_for("IB").get(f"/v1/subcases/{passenger.urn}/wallet").json()
    assert [(e["kind"], e["amount"], e["providerRef"]) for e in wallet["entries"]] == [
        ("CREDIT", "250.00", payouts[0]["payoutId"])
    ]


def test_refusal_end_to_end_goes_to_review_with_a_real_worker(client_for, workers, simulator_control):
    worker = workers()
    passenger = SubCaseFactory(case=CaseFactory(airline="IB"), airline="IB")
    simulator_control.psp.refuse({passenger.urn: "insufficient_funds"})
    accepted = compensate(client_for("IB"), passenger, [TRANSPORT, CASH])
    wait_for(lambda: run_status(accepted["sagaUrn"]) == "FAILED", what="the failed saga", worker=worker)
    passenger.refresh_from_db()
    assert passenger.status == "MANUAL_REVIEW"
    assert [e["type"] for e in simulator_control.transport.entries()] == ["ride_requested", "ride_cancelled"]
    run = client_for("IB").get(f"/v1/orchestration/cases/{passenger.case.urn}/progress").json()["runs"][0]
    assert run["category"] == "PAYMENT_FAILED"
    assert run["failure"]["code"] == "insufficient_funds" and run["failure"]["step"] == "cash.payout"


def test_cancel_while_a_step_runs_undoes_it_once_it_returns(client_for, workers, simulator_control):
    worker = workers()
    passenger = SubCaseFactory(case=CaseFactory(airline="IB"), airline="IB")
    simulator_control.psp.control(latencyMs=2000)
    accepted = compensate(client_for("IB"), passenger, [MEAL, CASH])
    run_id = accepted["sagaUrn"].rsplit(":", 1)[1]
    wait_for(
        lambda: SagaStep.objects.filter(run__pk=run_id, kind="MEAL", status="RUNNING").exists(),
        what="the card step to start",
        worker=worker,
    )
    response = client_for("IB", "OPS_SUPERVISOR").post(
        f"/v1/orchestration/runs/{accepted['sagaUrn']}/cancel", {"reason": "passenger left"}, format="json"
    )
    assert response.status_code == 202, response.content
    assert response.json()["status"] == "CANCELLING"
    wait_for(lambda: run_status(accepted["sagaUrn"]) == "CANCELLED", what="the cancelled saga", worker=worker)
    assert [e["type"] for e in simulator_control.psp.entries()] == ["card_issued", "card_voided"]
    steps = {s.kind: s.status for s in SagaStep.objects.filter(run__pk=run_id)}
    assert steps == {"MEAL": "COMPENSATED", "CASH": "SKIPPED", "NOTIFY": "SKIPPED"}
    passenger.refresh_from_db()
    assert passenger.status == "PENDING"


def test_a_paused_worker_past_its_lease_cannot_write_over_its_successor(client_for, workers, simulator_control):
    """Issue 9 §2: the first worker is paused (SIGSTOP: its heartbeat stops too) inside the payout call;
    its lease expires, a second worker takes the run over and finishes it. When the first wakes up, its
    call returns — and it writes nothing, nor releases the successor's lease."""
    from audit.models import AuditEntry

    first = workers()
    passenger = SubCaseFactory(case=CaseFactory(airline="IB"), airline="IB")
    simulator_control.psp.control(latencyAfterMs=4000)  # the payout is made, the answer takes 4 s
    accepted = compensate(client_for("IB"), passenger, [CASH])
    run_id = accepted["sagaUrn"].rsplit(":", 1)[1]
    wait_for(lambda: simulator_control.psp.entries("payout"), what="the payout to reach the PSP", worker=first)
    first.process.send_signal(signal.SIGSTOP)
    try:
        time.sleep(LEASE_SECONDS + 0.5)
        second = workers()
        celery_app.send_task("cases.tasks.saga_runs_resume_stalled", queue="saga")
        wait_for(lambda: run_status(accepted["sagaUrn"]) == "COMPLETED", what="the taken-over saga", worker=second)
        successor = SagaRun.objects.get(pk=run_id)
    finally:
        first.process.send_signal(signal.SIGCONT)
    wait_for(lambda: "saga.lease_lost" in first.log_path.read_text(errors="replace"), timeout=20,
             what="the paused worker to find its lease gone", worker=first)  # fmt: skip

    step = SagaStep.objects.get(run__pk=run_id, kind="CASH")
    assert step.status == "COMPLETED" and step.attempts == 2
    assert len(simulator_control.psp.entries("payout")) == 1
    completed = AuditEntry.objects.filter(action="saga.step_completed", entity_urn=step.urn)
    assert completed.count() == 1
    run = SagaRun.objects.get(pk=run_id)
    assert run.status == "COMPLETED" and run.updated_at == successor.updated_at
