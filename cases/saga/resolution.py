"""Steps in doubt (docs/compensation.md, "Steps in doubt"): a step whose last attempt ended in a timeout,
5xx, open circuit or crash may have had its effect. Before it is compensated or retried it is resolved
with its provider under its ORIGINAL key — a status lookup, never a new call."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from cases.models import SagaRun, SagaRunStatus, SagaStep, SagaStepStatus
from cases.saga.common import _now
from cases.saga.kinds import kind_of
from cases.saga.leases import _hold
from cases.saga.transitions import _attempt_entry, step_status_set
from nexa.platform.providers import ProviderPermanentError, ProviderTransientError


def _in_doubt(step: SagaStep) -> bool:
    """A step that may have had an effect we never recorded: its last attempt ended in a timeout, 5xx,
    open circuit or crash (``outcome_unknown``), or a worker died mid-call (RUNNING)."""
    if not kind_of(step).compensable:
        return False
    return step.outcome_unknown or (
        step.status in (SagaStepStatus.RUNNING, SagaStepStatus.PENDING) and step.attempts > 0
    )


def _lookup(step: SagaStep) -> dict[str, Any] | None:
    """Ask the step's provider what became of the step's ORIGINAL key: the effect, or ``None`` when the
    provider confirms it never executed it. Provider errors propagate (still unknown); a lookup the
    provider refuses (any 4xx but "no such key") is not an answer either, so it is raised as transient:
    the step stays in doubt rather than being taken as never executed."""
    try:
        return kind_of(step).lookup(step)
    except ProviderPermanentError as error:
        raise ProviderTransientError(
            provider=error.provider, code=error.code, message=error.message, attempt_detail=error.attempt_detail
        ) from error


def _perform(run: SagaRun, step: SagaStep) -> dict[str, Any]:
    """The provider call of one step, with the step's idempotency key. Returns plain JSON."""
    return kind_of(step).perform(run, step)


def _resolve_or_perform(run: SagaRun, step: SagaStep) -> dict[str, Any]:
    """A step whose outcome is unknown (an operator retry re-armed it) is first resolved under its
    original key: an effect the provider made is the step's result (no second call); only a step the
    provider confirms it never executed gets a new key (``…/retry-<n>``) and is performed."""
    if not step.outcome_unknown or not kind_of(step).compensable:
        return _perform(run, step)
    found = _lookup(step)
    if found is not None:
        return found
    with transaction.atomic():
        _hold(run.pk)
        locked = SagaStep.objects.select_for_update().get(pk=step.pk)
        locked.generation += 1
        locked.outcome_unknown = False
        locked.attempt_log = [*locked.attempt_log, _attempt_entry(locked, "NOT_EXECUTED")]
        locked.save(update_fields=["generation", "outcome_unknown", "attempt_log", "updated_at"])
    step.generation, step.outcome_unknown, step.attempt_log = locked.generation, False, locked.attempt_log
    return _perform(run, step)


def _resolved(run: SagaRun, step: SagaStep, found: dict[str, Any] | None) -> SagaStep:
    """Record what the provider said about a step in doubt: the effect it made (the step COMPLETED, a
    payout credited to the wallet ledger, so compensation undoes it) or that it never executed it."""
    with transaction.atomic():
        _hold(run.pk)
        locked = SagaStep.objects.select_for_update().get(pk=step.pk)
        after = {"name": locked.name, "executed": found is not None, "idempotencyKey": locked.idempotency_key}
        common = {"outcome_unknown": False, "next_attempt_at": None}
        if found is None:
            kind_of(locked).failed(run, locked)
            log = [*locked.attempt_log, _attempt_entry(locked, "NOT_EXECUTED")]
            return step_status_set(
                run, locked, SagaStepStatus.FAILED, action="saga.step_resolved", after=after, attempt_log=log, **common
            )
        kind_of(locked).completed(run, locked, found)
        log = [*locked.attempt_log, _attempt_entry(locked, "RESOLVED_EXECUTED")]
        return step_status_set(
            run,
            locked,
            SagaStepStatus.COMPLETED,
            action="saga.step_resolved",
            after=after,
            result=found,
            completed_at=_now(),
            attempt_log=log,
            **common,
        )


def _unresolved(run: SagaRun, step: SagaStep) -> None:
    """The provider could not say (still failing after every attempt): the step stays in doubt. A failed
    run keeps it FAILED with ``outcome_unknown`` (an operator retry resolves it first); a cancel cannot
    finish with money possibly out, so there it is a COMPENSATION_FAILED for a human."""
    with transaction.atomic():
        _hold(run.pk)
        status = SagaStepStatus.COMPENSATION_FAILED if run.status == SagaRunStatus.CANCELLING else SagaStepStatus.FAILED
        locked = SagaStep.objects.select_for_update().get(pk=step.pk)
        step_status_set(
            run,
            locked,
            status,
            action="saga.step_unresolved",
            after={"name": locked.name, "status": status},
            outcome_unknown=True,
            next_attempt_at=None,
        )
