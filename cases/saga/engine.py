"""The compensation saga engine (ARCHITECTURE §6): plan, step execution, compensation.

A run (:class:`~cases.models.SagaRun`) has ordered steps, one per requested item (MEAL → a
single-use virtual card, CASH → a payout into the passenger's wallet plus a ledger credit, TRANSPORT
→ a ride), then ``notify``. The Celery task :func:`cases.tasks.saga_run_execute` calls
:func:`execute`, which drives the run as far as it can and returns how long to wait before it
should be called again (a transient provider error or an open circuit), or ``None``.

Exactly-once effects:

* A worker holds a run through a **lease** (``lease_expires_at``, database clock): one worker at a time.
  A run whose worker died is picked up again once the lease expires (re-delivered message, or the
  stalled-run sweep :func:`resume_stalled`).
* Every provider call carries the step's idempotency key (its URN), and the step's state is committed
  **before** the call (RUNNING, attempt counted, ``graph:step:started``) and **after** it
  (COMPLETED with the result, ``graph:step:completed``). A step found RUNNING after a crash is simply
  called again with the same key: the provider answers with the effect it already made.

Failures:

* Transient errors and unexpected exceptions retry with exponential backoff, at most
  ``NEXA_SAGA_MAX_ATTEMPTS`` attempts; an open circuit (:class:`ProviderUnavailable`) waits
  ``NEXA_SAGA_UNAVAILABLE_WAIT_SECONDS`` between attempts, at most ``NEXA_SAGA_UNAVAILABLE_MAX_ATTEMPTS``.
* A permanent refusal (or exhausted attempts) fails the step: the completed steps are compensated in
  reverse (void the card, reverse the payout and its ledger credit, cancel the ride), the run becomes
  FAILED, the sub-case goes to MANUAL_REVIEW and ``saga:failed`` carries the category and every attempt.
* The ``notify`` step never undoes money or rides: when it fails for good the step is FAILED and the
  run still completes (the notifications module surfaces it for manual resend).
"""

from __future__ import annotations

import datetime as dt

import structlog
from django.db import transaction
from django.db.models.functions import Now

from cases.models import SagaRun, SagaRunStatus, SagaStep, SagaStepStatus
from cases.saga.common import (
    SAGA_COMPLETED,
    STEP_COMPLETED,
    STEP_PROGRESS,
    STEP_STARTED,
    _audit,
    _iso,
    _now,
    _publish,
    backoff_seconds,
    max_attempts,
    unavailable_max_attempts,
    unavailable_wait_seconds,
)
from cases.saga.kinds import kind_of
from cases.saga.leases import _LEASE, LeaseLost, _claim, _Heartbeat, _hold, _keep, _lease_remaining, _release
from cases.saga.resolution import _resolve_or_perform
from cases.saga.transitions import _attempt_entry, step_status_set
from cases.saga.undo import _compensate
from nexa.platform.providers import (
    ProviderError,
    ProviderPermanentError,
    ProviderTransientError,
    ProviderUnavailable,
)

logger = structlog.get_logger(__name__)


def execute(run_id) -> float | None:
    """Drive the run as far as possible. Returns seconds to wait before calling again, or ``None``
    when the run needs nothing more from this call (finished, or not active)."""
    token = _claim(run_id)
    if token is None:
        return _lease_remaining(run_id)  # another worker holds it (or held it and died): look again later
    lease = _LEASE.set(token)
    try:
        while True:
            run = SagaRun.objects.select_related("case", "sub_case").get(pk=run_id)
            if run.status in (SagaRunStatus.COMPENSATING, SagaRunStatus.CANCELLING):
                return _compensate(run)
            if run.status != SagaRunStatus.RUNNING:
                return None
            step = run.steps.filter(status__in=[SagaStepStatus.PENDING, SagaStepStatus.RUNNING]).first()
            if step is None:
                _complete(run)
                return None
            _keep(run.pk)
            wait = _run_step(run, step)
            if wait is not None:
                return wait
    except LeaseLost:
        # Paused past the lease (GC, SIGSTOP, a slow call): another worker may drive the run now; what
        # this one learnt from its last call is dropped, the successor resolves it under the same key.
        logger.warning("saga.lease_lost", saga_urn=SagaRun(pk=run_id).urn)
        return None
    finally:
        _release(run_id, token)
        _LEASE.reset(lease)


def _waiting(step: SagaStep) -> float | None:
    if step.next_attempt_at is None:
        return None
    remaining = (step.next_attempt_at - _now()).total_seconds()
    return remaining if remaining > 0.05 else None


def _run_step(run: SagaRun, step: SagaStep) -> float | None:
    wait = _waiting(step)
    if wait is not None:
        return wait  # re-delivered before its backoff elapsed
    with transaction.atomic():
        _hold(run.pk)
        step = SagaStep.objects.select_for_update().get(pk=step.pk)
        if step.status not in (SagaStepStatus.PENDING, SagaStepStatus.RUNNING):
            return None
        step.attempts += 1
        started_at = step.started_at or _now()
        step_status_set(
            run,
            step,
            SagaStepStatus.RUNNING,
            # A step started again (a retry after backoff, or after a crash) was audited at its first start.
            action="saga.step_started" if step.attempts == 1 else None,
            after={"name": step.name, "status": "RUNNING"},
            event=(
                STEP_STARTED,
                {"caseUrn": run.case.urn, "stepUrn": step.urn, "name": step.name, "startedAt": _iso(started_at)},
            ),
            attempts=step.attempts,
            started_at=started_at,
            next_attempt_at=None,
        )

    try:
        with _Heartbeat(run, step, kind_of(step).provider(step)):
            result = _resolve_or_perform(run, step)
    except LeaseLost:
        raise
    except ProviderUnavailable as error:
        return _retry_or_fail(run, step, error, limit=unavailable_max_attempts(), delay=unavailable_wait_seconds())
    except ProviderTransientError as error:
        limit = kind_of(step).max_attempts(step) or max_attempts()
        return _retry_or_fail(run, step, error, limit=limit, delay=backoff_seconds(step.attempts))
    except ProviderPermanentError as error:
        return _step_failed(run, step, error)
    except Exception as error:
        logger.exception("saga.step_error", saga_urn=run.urn, step_urn=step.urn)
        return _retry_or_fail(run, step, error, limit=max_attempts(), delay=backoff_seconds(step.attempts))

    with transaction.atomic():
        _hold(run.pk)
        step = SagaStep.objects.select_for_update().get(pk=step.pk)
        if step.status == SagaStepStatus.COMPLETED:
            return None
        kind_of(step).completed(run, step, result)
        completed_at = _now()
        step_status_set(
            run,
            step,
            SagaStepStatus.COMPLETED,
            action="saga.step_completed",
            after={"name": step.name, "result": result},
            event=(
                STEP_COMPLETED,
                {"caseUrn": run.case.urn, "stepUrn": step.urn, "completedAt": _iso(completed_at), "result": result},
            ),
            result=result,
            error=None,
            outcome_unknown=False,
            completed_at=completed_at,
            attempt_log=[*step.attempt_log, _attempt_entry(step, "COMPLETED")],
        )
    return None


def _retry_or_fail(run: SagaRun, step: SagaStep, error: Exception, *, limit: int, delay: float) -> float | None:
    if step.attempts >= limit:
        return _step_failed(run, step, error)
    with transaction.atomic():
        _hold(run.pk)
        step = SagaStep.objects.select_for_update().get(pk=step.pk)
        step.next_attempt_at = _now() + dt.timedelta(seconds=delay)
        entry = _attempt_entry(step, "RETRY", error)
        step.attempt_log = [*step.attempt_log, entry]
        step.error = entry
        step.save(update_fields=["next_attempt_at", "attempt_log", "error", "updated_at"])
        _publish(
            STEP_PROGRESS,
            run,
            {
                "caseUrn": run.case.urn,
                "stepUrn": step.urn,
                "progress": 0,
                "message": f"attempt {step.attempts} failed ({entry.get('code')}); retrying in {delay:.0f} s",
            },
        )
    return delay


def _step_failed(run: SagaRun, step: SagaStep, error: Exception) -> float | None:
    """A step failed for good. ``notify`` only records it; any other step fails the run and compensates."""
    with transaction.atomic():
        _hold(run.pk)
        step = SagaStep.objects.select_for_update().get(pk=step.pk)
        kind = kind_of(step)
        # A kind may run the step again with another item (a hotel hold: the next offer) instead of failing.
        item = kind.fallback(run, step, error) if kind.compensable else None
        if item is not None:
            return _rearm(run, step, item, error)
        entry = _attempt_entry(step, "FAILED", error)
        # A refusal is an answer: nothing was done. A timeout, 5xx, open circuit or crash is not: the
        # provider may have made the effect. The step is in doubt until resolved under its key.
        outcome_unknown = kind.compensable and not isinstance(error, ProviderPermanentError)
        if outcome_unknown:
            entry["outcomeUnknown"] = True
        step_status_set(
            run,
            step,
            SagaStepStatus.FAILED,
            action="saga.step_failed",
            after={"name": step.name, "error": entry},
            error=entry,
            outcome_unknown=outcome_unknown,
            attempt_log=[*step.attempt_log, entry],
            completed_at=_now(),
            next_attempt_at=None,
        )
        if not kind.compensable:
            return None
        if not outcome_unknown:
            kind.failed(run, step)
        category = "PROVIDER_UNAVAILABLE" if isinstance(error, ProviderUnavailable) else None
        if category is None and not isinstance(error, ProviderError):
            category = "INTERNAL_ERROR"
        # An operator's cancel that arrived meanwhile wins: the run still ends CANCELLED.
        SagaRun.objects.filter(pk=run.pk, status=SagaRunStatus.RUNNING).update(
            status=SagaRunStatus.COMPENSATING,
            failure_category=category or kind.failure_category,
            failure={"step": step.name, "stepUrn": step.urn, **entry},
            updated_at=Now(),
        )
    return None  # execute() loops and compensates


def _rearm(run: SagaRun, step: SagaStep, item: dict, error: Exception) -> None:
    """The step runs again with ``item`` under a fresh key (``generation`` + 1): what the previous item's
    calls did is the kind's to resolve (it keeps their keys in ``item``). Caller's transaction."""
    entry = _attempt_entry(step, "FALLBACK", error)
    step_status_set(
        run,
        step,
        SagaStepStatus.PENDING,
        action="saga.step_fallback",
        after={"name": step.name, "error": entry},
        item=item,
        generation=step.generation + 1,
        attempts=0,
        outcome_unknown=False,
        error=entry,
        attempt_log=[*step.attempt_log, entry],
        next_attempt_at=None,
    )
    return None


def _complete(run: SagaRun) -> None:
    with transaction.atomic():
        _hold(run.pk)
        updated = SagaRun.objects.filter(pk=run.pk, status=SagaRunStatus.RUNNING).update(
            status=SagaRunStatus.COMPLETED, finished_at=Now(), updated_at=Now()
        )
        if not updated:
            return
        _audit(run, "saga.completed", before={"status": "RUNNING"}, after={"status": "COMPLETED"})
        _publish(SAGA_COMPLETED, run, {"caseUrn": run.case.urn, "subCaseUrn": run.sub_case.urn, "sagaUrn": run.urn})
