"""The step-kind registry (issue 10, "one step engine"): a kind the engine has never heard of is one
class registered in the test, and the engine runs it end to end — performed, its failure categorised,
undone in a failed run, its neighbours skipped — with every step status change audited and published.
Driven in-process through :func:`cases.saga.execute`, exactly what the Celery task calls."""

import time

import pytest
from django.test import override_settings

from audit.models import AuditEntry
from cases import saga
from cases.models import SagaRun, SagaStep, SubCaseStatus
from nexa.platform.models import OutboxEvent
from nexa.platform.providers import ProviderPermanentError
from notifications.models import Notification
from tests.cases.factories import CaseFactory, SubCaseFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("simulator_control")]

FAST = {"NEXA_SAGA_BACKOFF_BASE_SECONDS": 0.01, "NEXA_SAGA_BACKOFF_MAX_SECONDS": 0.05}
calls: list[tuple[str, str]] = []


class Lounge(saga.StepKind):
    """A throwaway kind: a lounge pass, issued and revoked by an imaginary provider."""

    kind, step_name, provider_name, failure_category = "LOUNGE", "lounge.issue_pass", "lounge", "LOUNGE_FAILED"

    def perform(self, run, step):
        calls.append(("issue", step.idempotency_key))
        if step.item.get("refuse"):
            raise ProviderPermanentError(provider="lounge", code="lounge_full", message="no seats left")
        return {"provider": "lounge", "passId": f"pass-{step.position}"}

    def undo(self, run, step):
        calls.append(("revoke", step.compensation_key))
        return {"provider": "lounge", "revoked": step.result["passId"]}


@pytest.fixture
def lounge():
    calls.clear()
    saga.register(Lounge)
    yield Lounge
    saga.unregister(Lounge.kind)


@pytest.fixture
def passenger():
    return SubCaseFactory(case=CaseFactory(airline="IB"), airline="IB", language="es")


def start(sub_case, items):
    """A run of ``items`` created as the services create one (the compensate route validates only the
    item types it sells, so a throwaway kind goes in directly)."""
    run = SagaRun.objects.create(
        airline=sub_case.airline, case=sub_case.case, sub_case=sub_case, payload={"items": items, "reason": "test"},
        payload_hash=f"{len(items)}-{time.monotonic_ns()}", correlation_urn="urn:nexa:correlation:test",
        requested_by="urn:nexa:user:test",
    )  # fmt: skip
    saga.create_steps(run, items)
    return run


def drive(run, *, max_calls=50):
    for _ in range(max_calls):
        wait = saga.execute(run.pk)
        if wait is None:
            run.refresh_from_db()
            return run
        time.sleep(min(wait, 0.2))
    raise AssertionError(f"{run.urn} still wants to run after {max_calls} calls")


def steps_of(run):
    return list(SagaStep.objects.filter(run=run).order_by("position"))


def events(name, run):
    return [e.payload for e in OutboxEvent.objects.filter(event=name).order_by("created_at") if
            e.payload.get("caseUrn") == run.case.urn]  # fmt: skip


@override_settings(**FAST)
def test_a_kind_registered_in_one_class_runs_end_to_end(lounge, passenger):
    assert saga.STEP_NAMES["LOUNGE"] == "lounge.issue_pass"
    run = drive(start(passenger, [{"type": "LOUNGE", "amount": "30.00", "currency": "EUR"}]))

    assert run.status == "COMPLETED"
    pass_step, notify = steps_of(run)
    assert (pass_step.name, pass_step.status, pass_step.result) == (
        "lounge.issue_pass",
        "COMPLETED",
        {"provider": "lounge", "passId": "pass-0"},
    )
    assert calls == [("issue", pass_step.idempotency_key)]
    assert notify.status == "COMPLETED"
    assert [e["name"] for e in events(saga.STEP_STARTED, run)] == ["lounge.issue_pass", "notify.passenger"]
    assert events(saga.STEP_COMPLETED, run)[0]["result"] == {"provider": "lounge", "passId": "pass-0"}
    assert AuditEntry.objects.filter(action="saga.step_completed", entity_urn=pass_step.urn).count() == 1
    # The notice lists what the new kind delivered, as it does for the built-in ones.

    notices = list(Notification.objects.filter(sub_case=passenger))
    assert notices
    assert all({"type": "LOUNGE", "amount": "30.00", "currency": "EUR"} in n.context["items"] for n in notices)


@override_settings(**FAST)
def test_a_failing_kind_fails_the_run_undoes_the_done_and_skips_the_rest_audited_and_published(lounge, passenger):
    run = drive(start(passenger, [{"type": "LOUNGE"}, {"type": "LOUNGE", "refuse": True}, {"type": "LOUNGE"}]))

    assert (run.status, run.failure_category) == ("FAILED", "LOUNGE_FAILED")
    done, refused, never, notify = steps_of(run)
    assert [s.status for s in (done, refused, never, notify)] == ["COMPENSATED", "FAILED", "SKIPPED", "SKIPPED"]
    assert calls == [
        ("issue", done.idempotency_key),
        ("issue", refused.idempotency_key),
        ("revoke", done.compensation_key),
    ]
    assert refused.error["code"] == "lounge_full" and refused.outcome_unknown is False
    assert done.compensation["result"] == {"provider": "lounge", "revoked": "pass-0"}

    # Every status change is audited …
    def audited(action):
        return list(
            AuditEntry.objects.filter(action=action, case_urn=run.case.urn).values_list("entity_urn", flat=True)
        )

    assert audited("saga.step_failed") == [refused.urn]
    assert sorted(audited("saga.step_skipped")) == sorted([never.urn, notify.urn])
    assert audited("saga.step_compensated") == [done.urn]
    skipped = AuditEntry.objects.get(action="saga.step_skipped", entity_urn=never.urn)
    assert skipped.actor == saga.SYSTEM_SAGA_ACTOR and skipped.after == {
        "name": "lounge.issue_pass",
        "status": "SKIPPED",
    }

    # … and published: spec 000's events where it has one, else the internal saga:step:changed.
    changed = events(saga.STEP_CHANGED, run)
    assert sorted((e["stepUrn"], e["status"]) for e in changed) == sorted(
        [(refused.urn, "FAILED"), (never.urn, "SKIPPED"), (notify.urn, "SKIPPED")]
    )
    assert {e["name"] for e in changed} == {"lounge.issue_pass", "notify.passenger"}
    assert set(changed[0]) == {"caseUrn", "sagaUrn", "stepUrn", "name", "status"}
    [undone] = [e for e in events(saga.STEP_PROGRESS, run) if e["progress"] == 1]
    assert undone == {
        "caseUrn": run.case.urn,
        "stepUrn": done.urn,
        "progress": 1,
        "message": "lounge.issue_pass undone",
    }

    # The failed run moved the sub-case to review (through the hook cases registers) and said so.
    passenger.refresh_from_db()
    assert passenger.status == SubCaseStatus.MANUAL_REVIEW
    [failed] = OutboxEvent.objects.filter(event=saga.SAGA_FAILED, payload__sagaUrn=run.urn)
    assert failed.payload["failedStep"] == "lounge.issue_pass" and failed.payload["category"] == "LOUNGE_FAILED"


def test_the_registry_refuses_a_kind_twice_and_forgets_an_unregistered_one(lounge):
    with pytest.raises(ValueError, match="already registered"):
        saga.register(Lounge)
    saga.unregister("LOUNGE")
    assert "LOUNGE" not in saga.STEP_NAMES
    with pytest.raises(KeyError):
        saga.plan([{"type": "LOUNGE"}])
    saga.register(Lounge)  # the fixture unregisters it again


def test_cases_registers_the_review_hook_the_engine_calls_when_a_run_fails():
    from cases import services
    from cases.saga import common

    assert common._send_to_review is services.subcase_send_to_review_by_system
