"""Compensation: undo a failed or cancelled run's completed steps in reverse, then finish it (FAILED or
CANCELLED). A failed run's sub-case goes to MANUAL_REVIEW through the review hook (``common``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import transaction
from django.db.models.functions import Now

from cases.models import SagaRun, SagaRunStatus, SagaStep, SagaStepStatus
from cases.saga.common import (
    SAGA_CANCELLED,
    SAGA_FAILED,
    STEP_PROGRESS,
    _audit,
    _iso,
    _now,
    _publish,
    backoff_seconds,
    max_attempts,
    send_to_review,
    unavailable_max_attempts,
    unavailable_wait_seconds,
)
from cases.saga.kinds import kind_of
from cases.saga.leases import LeaseLost, _hold, _keep
from cases.saga.resolution import _in_doubt, _lookup, _resolved, _unresolved
from cases.saga.transitions import step_status_set
from nexa.platform.providers import ProviderError, ProviderTransientError, ProviderUnavailable


def _undo(run: SagaRun, step: SagaStep) -> dict[str, Any]:
    return kind_of(step).undo(run, step)


def _compensate(run: SagaRun) -> float | None:
    """Undo completed steps in reverse order, then finish the run (FAILED or CANCELLED). A step in doubt
    is first resolved with its provider under its original key (a status lookup, never a new call)."""
    steps = list(run.steps.order_by("-position"))
    for step in steps:
        if _in_doubt(step) and step.status != SagaStepStatus.COMPENSATION_FAILED:
            try:
                _keep(run.pk)
                found = _lookup(step)
            except (ProviderTransientError, ProviderUnavailable) as error:
                wait = _compensation_retry(run, step, error, give_up=_unresolved)
                if wait is not None:
                    return wait
                continue
            step = _resolved(run, step, found)
        if step.status != SagaStepStatus.COMPLETED or not kind_of(step).compensable:
            continue
        try:
            _keep(run.pk)
            undone = _undo(run, step)
        except (ProviderTransientError, ProviderUnavailable) as error:
            wait = _compensation_retry(run, step, error)
            if wait is not None:
                return wait
            continue
        except LeaseLost:
            raise
        except Exception as error:  # noqa: BLE001 (refused, or our own bug: a human must look)
            _compensation_failed(run, step, error)
            continue
        with transaction.atomic():
            _hold(run.pk)
            locked = SagaStep.objects.select_for_update().get(pk=step.pk)
            kind_of(locked).undone(run, locked)
            step_status_set(
                run,
                locked,
                SagaStepStatus.COMPENSATED,
                action="saga.step_compensated",
                after={"name": locked.name, "result": undone},
                event=(
                    STEP_PROGRESS,
                    {"caseUrn": run.case.urn, "stepUrn": locked.urn, "progress": 1, "message": f"{locked.name} undone"},
                ),
                compensation={**(locked.compensation or {}), "result": undone, "at": _iso(_now())},
                compensated_at=Now(),
            )
    _finish_compensation(run)
    return None


def _compensation_retry(
    run: SagaRun, step: SagaStep, error: ProviderError, give_up: Callable[[SagaRun, SagaStep], None] | None = None
) -> float | None:
    state = dict(step.compensation or {})
    attempts = int(state.get("attempts", 0)) + 1
    log = [*state.get("attemptLog", []), {"at": _iso(_now()), "provider": error.provider, "code": error.code,
                                          "message": error.message}]  # fmt: skip
    limit = unavailable_max_attempts() if isinstance(error, ProviderUnavailable) else max_attempts()
    if attempts >= limit:
        if give_up is not None:
            with transaction.atomic():
                _hold(run.pk)
                SagaStep.objects.filter(pk=step.pk).update(
                    compensation={**state, "attempts": attempts, "attemptLog": log}, updated_at=Now()
                )
            give_up(run, step)
            return None
        _compensation_failed(run, step, error, state={**state, "attempts": attempts, "attemptLog": log})
        return None
    with transaction.atomic():
        _hold(run.pk)
        SagaStep.objects.filter(pk=step.pk).update(
            compensation={**state, "attempts": attempts, "attemptLog": log}, updated_at=Now()
        )
    return unavailable_wait_seconds() if isinstance(error, ProviderUnavailable) else backoff_seconds(attempts)


def _compensation_failed(run: SagaRun, step: SagaStep, error: Exception, state: dict | None = None) -> None:
    state = dict(state if state is not None else (step.compensation or {}))
    code = error.code if isinstance(error, ProviderError) else "internal_error"
    message = error.message if isinstance(error, ProviderError) else str(error)
    with transaction.atomic():
        _hold(run.pk)
        locked = SagaStep.objects.select_for_update().get(pk=step.pk)
        step_status_set(
            run,
            locked,
            SagaStepStatus.COMPENSATION_FAILED,
            action="saga.compensation_failed",
            after={"name": locked.name, "code": code},
            compensation={**state, "error": {"code": code, "message": message, "at": _iso(_now())}},
        )


def _attempts_of(run: SagaRun) -> list[dict[str, Any]]:
    """Every provider error of the run, oldest first: [{step, provider, code, message, at}]."""
    attempts = []
    for step in run.steps.order_by("position"):
        for entry in step.attempt_log:
            if entry.get("outcome") in ("RETRY", "FAILED"):
                attempts.append(
                    {
                        "step": step.name,
                        "stepUrn": step.urn,
                        "provider": entry.get("provider"),
                        "code": entry.get("code"),
                        "message": entry.get("message"),
                        "at": entry.get("at"),
                    }
                )
    return attempts


def run_sub_case_ids(run: SagaRun) -> list:
    """The passengers a run acts for, lead first: what each step's kind names (default: the run's sub-case)."""
    ids: list = []
    for step in run.steps.order_by("position"):
        for sub_case_id in kind_of(step).sub_case_ids(run, step):
            if sub_case_id not in ids:
                ids.append(sub_case_id)
    return ids or [run.sub_case_id]


def _finish_compensation(run: SagaRun) -> None:
    with transaction.atomic():
        _hold(run.pk)
        run = SagaRun.objects.select_for_update().select_related("case", "sub_case").get(pk=run.pk)
        cancelled = run.status == SagaRunStatus.CANCELLING
        final = SagaRunStatus.CANCELLED if cancelled else SagaRunStatus.FAILED
        SagaRun.objects.filter(pk=run.pk).update(status=final, finished_at=Now(), updated_at=Now())
        never_started = run.steps.select_for_update().filter(
            status=SagaStepStatus.PENDING, attempts=0, outcome_unknown=False
        )
        for step in never_started.order_by("position"):
            step_status_set(run, step, SagaStepStatus.SKIPPED, action="saga.step_skipped")
        steps = {s.status for s in run.steps.all()}
        unresolved = SagaStepStatus.COMPENSATION_FAILED in steps
        in_doubt = [s.urn for s in run.steps.filter(outcome_unknown=True)]
        if cancelled:
            _audit(run, "saga.cancelled", before={"status": "CANCELLING"}, after={"status": final})
            _publish(SAGA_CANCELLED, run, {"caseUrn": run.case.urn, "subCaseUrn": run.sub_case.urn, "sagaUrn": run.urn})
            return
        attempts = _attempts_of(run)
        _audit(
            run,
            "saga.failed",
            before={"status": "COMPENSATING"},
            after={"status": final, "category": run.failure_category, "compensationFailed": unresolved},
        )
        # Every passenger the run acted for (a group's room saga names each occupant), not only its lead.
        for sub_case_id in run_sub_case_ids(run):
            send_to_review(
                airline=run.airline,
                sub_case_id=sub_case_id,
                reason=f"compensation saga {run.urn} failed: {run.failure_category}",
            )
        for kind in {s.kind: kind_of(s) for s in run.steps.order_by("position")}.values():
            kind.run_failed(run)
        _publish(
            SAGA_FAILED,
            run,
            {
                "caseUrn": run.case.urn,
                "subCaseUrn": run.sub_case.urn,
                "sagaUrn": run.urn,
                "category": run.failure_category,
                "failedStep": (run.failure or {}).get("step"),
                "compensationFailed": unresolved,
                "outcomeUnknown": in_doubt,
                "attempts": attempts,
            },
        )
