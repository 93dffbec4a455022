"""What every part of the saga engine shares: its events, tunables, the system principal, audit and
publish, and the hook through which ``cases`` moves a failed run's sub-case to review."""

from __future__ import annotations

import datetime as dt
import os
import random
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.utils import timezone

from audit import services as audit
from cases import events as case_events
from cases.models import SagaRun
from nexa.platform.auth import Principal
from nexa.platform.outbox import publish
from nexa.platform.roles import Role

SYSTEM_SAGA_ACTOR = "urn:nexa:system:saga"

# --- events (spec 000's graph:step:* table, plus the saga's own) -------------------------------------

SAGA_REQUESTED = "saga:requested"  # internal: triggers execution through the outbox (no rooms)
SAGA_FAILED = "saga:failed"
SAGA_COMPLETED = "saga:completed"
SAGA_CANCELLED = "saga:cancelled"
STEP_STARTED = "graph:step:started"
STEP_PROGRESS = "graph:step:progress"
STEP_COMPLETED = "graph:step:completed"
# Internal (never sent to clients): a step status change spec 000 has no event for — FAILED, SKIPPED,
# COMPENSATION_FAILED, or a step in doubt resolved. {caseUrn, sagaUrn, stepUrn, name, status}
STEP_CHANGED = "saga:step:changed"


def _setting(name: str, default: float) -> float:
    """A tunable: Django setting, else environment variable (worker subprocesses), else default."""
    value = getattr(settings, name, None)
    if value is None:
        value = os.environ.get(name)
    return float(value) if value is not None else default


def max_attempts() -> int:
    return int(_setting("NEXA_SAGA_MAX_ATTEMPTS", 5))


def unavailable_max_attempts() -> int:
    return int(_setting("NEXA_SAGA_UNAVAILABLE_MAX_ATTEMPTS", 4))


def lease_seconds() -> float:
    return _setting("NEXA_SAGA_LEASE_SECONDS", 120)


def backoff_seconds(attempt: int) -> float:
    """1, 2, 4, 8 … s (capped at ``NEXA_SAGA_BACKOFF_MAX_SECONDS``) with ±20 % jitter."""
    base = _setting("NEXA_SAGA_BACKOFF_BASE_SECONDS", 1.0)
    cap = _setting("NEXA_SAGA_BACKOFF_MAX_SECONDS", 30.0)
    delay = min(cap, base * 2 ** max(0, attempt - 1))
    return round(delay * random.uniform(0.8, 1.2), 3)


def unavailable_wait_seconds() -> float:
    return _setting("NEXA_SAGA_UNAVAILABLE_WAIT_SECONDS", 30.0)


def heartbeat_seconds() -> float:
    """How often a long provider call renews the lease and publishes ``graph:step:progress``; kept
    below a third of the lease so a live worker never loses its run."""
    return min(_setting("NEXA_SAGA_HEARTBEAT_SECONDS", 5.0), lease_seconds() / 3)


def idle_seconds() -> float:
    return _setting("NEXA_SAGA_IDLE_SECONDS", 900)


def system_principal(airline: str) -> Principal:
    """The saga acts as this principal (audit actor ``urn:nexa:system:saga``)."""
    return Principal(airline=airline, role=Role.ADMIN, operator_urn=SYSTEM_SAGA_ACTOR, subject="system:saga")


def _iso(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z") if value else None


def _now() -> dt.datetime:
    return timezone.now()


def _publish(event: str, run: SagaRun, payload: dict[str, Any]) -> None:
    publish(event, payload, case_events.case_rooms(case_urn=run.case.urn, airline=run.airline), airline=run.airline)


def _audit(run: SagaRun, action: str, *, entity_urn: str | None = None, reason: str = "", **kw) -> None:
    audit.record(
        airline=run.airline,
        actor=SYSTEM_SAGA_ACTOR,
        action=action,
        entity_urn=entity_urn or run.urn,
        case_urn=run.case.urn,
        reason=reason,
        correlation_urn=run.correlation_urn,
        **kw,
    )


# --- the review hook ----------------------------------------------------------------------------------

# ``send_to_review(airline=, sub_case_id=, reason=)``: registered by ``cases`` at app ready
# (``CasesConfig.ready`` → ``cases.services.subcase_send_to_review_by_system``), so the engine, which
# the services import, never imports them back. Called inside the transaction that fails the run.
_send_to_review: Callable[..., Any] | None = None


def review_hook_register(send_to_review: Callable[..., Any]) -> None:
    """Register what moves a failed run's sub-case to MANUAL_REVIEW (one per process; the last wins)."""
    global _send_to_review  # a process-wide registration, set at app ready
    _send_to_review = send_to_review


def send_to_review(*, airline: str, sub_case_id, reason: str) -> None:
    if _send_to_review is None:
        raise RuntimeError("no review hook registered with the saga engine (CasesConfig.ready registers it)")
    _send_to_review(airline=airline, sub_case_id=sub_case_id, reason=reason)


# ``advance(airline=, sub_case_ids=, transition=, reason=)``: registered by ``cases`` at app ready
# (``cases.services.subcases_advance_by_system``). The booking kinds move their occupants along the FSM
# (BOOKING → BOOKED → NOTIFIED) through it, in the step's transaction, without importing the services.
_advance: Callable[..., Any] | None = None


def subcases_hook_register(advance: Callable[..., Any]) -> None:
    """Register what moves a run's passengers along their state machine (one per process)."""
    global _advance  # a process-wide registration, set at app ready
    _advance = advance


def subcases_advance(*, airline: str, sub_case_ids: list, transition: str | tuple[str, ...], reason: str) -> None:
    if _advance is None:
        raise RuntimeError("no sub-case hook registered with the saga engine (CasesConfig.ready registers it)")
    _advance(airline=airline, sub_case_ids=sub_case_ids, transition=transition, reason=reason)
