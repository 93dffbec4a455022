"""The one way a saga step's status changes (:func:`step_status_set`), and the attempt-log entry."""

from __future__ import annotations

from typing import Any

from django.db.models.functions import Now

from cases.models import SagaRun, SagaStep
from cases.saga.common import STEP_CHANGED, _audit, _iso, _now, _publish
from cases.saga.kinds import kind_of
from nexa.platform.providers import ProviderError


def step_status_set(
    run: SagaRun,
    step: SagaStep,
    status: str,
    *,
    action: str | None,
    after: dict[str, Any] | None = None,
    event: tuple[str, dict[str, Any]] | None = None,
    **fields: Any,
) -> SagaStep:
    """Set ``step``'s status (and ``fields``), audit it as ``action`` and publish it — every step status
    change of the engine goes through here. Call it inside the write's transaction, lease held
    (``_hold``) and the step row locked. ``event``: spec 000's event for this change (``graph:step:started``,
    ``graph:step:completed``, ``graph:step:progress``) with its payload; without one the internal
    ``saga:step:changed`` is published. ``action=None`` only for a change that is not one (a RUNNING step
    started again: its first start was audited)."""
    step.status = status
    for name, value in fields.items():
        setattr(step, name, value)
    step.updated_at = Now()
    step.save(update_fields=["status", *fields, "updated_at"])
    if action is not None:
        after = after if after is not None else {"name": step.name, "status": status}
        _audit(run, action, entity_urn=step.urn, after=after)
    if event is None:
        event = (
            STEP_CHANGED,
            {"caseUrn": run.case.urn, "sagaUrn": run.urn, "stepUrn": step.urn, "name": step.name, "status": status},
        )
    _publish(event[0], run, event[1])
    return step


def _attempt_entry(step: SagaStep, outcome: str, error: ProviderError | Exception | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"attempt": step.attempts, "at": _iso(_now()), "outcome": outcome}
    if isinstance(error, ProviderError):
        entry.update(
            provider=error.provider,
            code=error.code,
            message=error.message,
            httpStatus=error.attempt_detail.get("httpStatus"),
        )
    elif error is not None:
        entry.update(provider=kind_of(step).provider_name or "internal", code="internal_error", message=str(error))
    return entry
