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

import contextvars
import datetime as dt
import os
import random
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import structlog
from django.conf import settings
from django.db import connection, transaction
from django.db.models.functions import Now
from django.utils import timezone

from audit import services as audit
from booking import services as booking
from cases import events as case_events
from cases.models import SagaRun, SagaRunStatus, SagaStep, SagaStepStatus, SubCase
from nexa.platform.auth import Principal
from nexa.platform.outbox import publish
from nexa.platform.providers import (
    ProviderError,
    ProviderPermanentError,
    ProviderTransientError,
    ProviderUnavailable,
)
from nexa.platform.roles import Role
from nexa.platform.urns import format_urn

logger = structlog.get_logger(__name__)

SYSTEM_SAGA_ACTOR = "urn:nexa:system:saga"

# --- events (spec 000's graph:step:* table, plus the saga's own) -------------------------------------

SAGA_REQUESTED = "saga:requested"  # internal: triggers execution through the outbox (no rooms)
SAGA_FAILED = "saga:failed"
SAGA_COMPLETED = "saga:completed"
SAGA_CANCELLED = "saga:cancelled"
STEP_STARTED = "graph:step:started"
STEP_PROGRESS = "graph:step:progress"
STEP_COMPLETED = "graph:step:completed"

STEP_NAMES = {
    "MEAL": "meal.issue_card",
    "CASH": "cash.payout",
    "TRANSPORT": "transport.request_ride",
    "NOTIFY": "notify.passenger",
}
FAILURE_CATEGORIES = {"MEAL": "PAYMENT_FAILED", "CASH": "PAYMENT_FAILED", "TRANSPORT": "BOOKING_FAILED"}
PROVIDER_OF_KIND = {"MEAL": "psp", "CASH": "psp", "NOTIFY": "notifications"}
NOTIFY_TEMPLATE = "compensation_summary"


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


def system_principal(airline: str) -> Principal:
    """The saga acts as this principal (audit actor ``urn:nexa:system:saga``)."""
    return Principal(airline=airline, role=Role.ADMIN, operator_urn=SYSTEM_SAGA_ACTOR, subject="system:saga")


def _iso(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z") if value else None


def _now() -> dt.datetime:
    return timezone.now()


# --- planning -----------------------------------------------------------------------------------------


def plan(items: list[dict[str, Any]]) -> list[tuple[str, str, dict[str, Any]]]:
    """(name, kind, item) per step: one per item in request order, then notify."""
    steps = [(STEP_NAMES[item["type"]], item["type"], item) for item in items]
    steps.append((STEP_NAMES["NOTIFY"], "NOTIFY", {"type": "NOTIFY"}))
    return steps


def create_steps(run: SagaRun, items: list[dict[str, Any]], settled: list | None = None) -> list[SagaStep]:
    """One step per item (``settled[i]``: the item's amount in the settlement currency), then notify."""
    settled = list(settled or []) + [None] * (len(items) + 1)
    return SagaStep.objects.bulk_create(
        SagaStep(
            run=run, airline=run.airline, position=position, name=name, kind=kind, item=item,
            settled_amount=settled[position],
        )
        for position, (name, kind, item) in enumerate(plan(items))
    )  # fmt: skip


def publish_requested(run: SagaRun) -> None:
    """Inside the transaction that created (or re-armed) the run: the outbox relays it to the worker."""
    publish(
        SAGA_REQUESTED,
        {
            "sagaUrn": run.urn,
            "subCaseUrn": format_urn("subcase", run.sub_case_id),
            "caseUrn": format_urn("case", run.case_id),
        },
        [],
        airline=run.airline,
    )


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


# --- the lease ----------------------------------------------------------------------------------------


class LeaseLost(Exception):
    """This worker's lease on the run expired (another worker may hold it now): stop, write nothing."""


# The owner token of the lease this thread holds (set by :func:`execute`; one run per thread at a time).
_LEASE: contextvars.ContextVar[uuid.UUID | None] = contextvars.ContextVar("saga_lease", default=None)

_CLAIM_SQL = f"""
UPDATE {SagaRun._meta.db_table}
   SET lease_expires_at = statement_timestamp() + make_interval(secs => %s),
       lease_owner = %s,
       status = CASE WHEN status = %s THEN %s ELSE status END,
       started_at = COALESCE(started_at, statement_timestamp()),
       updated_at = statement_timestamp()
 WHERE id = %s AND status = ANY(%s)
   AND (lease_expires_at IS NULL OR lease_expires_at < statement_timestamp())
RETURNING id
"""  # noqa: S608 (table name from the model)

_ACTIVE = [
    SagaRunStatus.PENDING,
    SagaRunStatus.RUNNING,
    SagaRunStatus.COMPENSATING,
    SagaRunStatus.CANCELLING,
]


def _claim(run_id) -> uuid.UUID | None:
    """Take the run's lease if nobody holds it → the owner token, else ``None``."""
    token = uuid.uuid4()
    with connection.cursor() as cursor:
        cursor.execute(
            _CLAIM_SQL,
            [lease_seconds(), token, SagaRunStatus.PENDING, SagaRunStatus.RUNNING, run_id, list(_ACTIVE)],
        )
        return token if cursor.fetchone() is not None else None


def _token(token: uuid.UUID | None = None) -> uuid.UUID:
    token = token or _LEASE.get()
    if token is None:
        raise LeaseLost("no saga lease held by this thread")
    return token


def _renew(run_id, token: uuid.UUID | None = None) -> bool:
    """Extend the lease — only the owner's, and only while it has not expired. ``False``: lost."""
    return bool(
        SagaRun.objects.filter(pk=run_id, lease_owner=_token(token), lease_expires_at__gt=Now()).update(
            lease_expires_at=Now() + dt.timedelta(seconds=lease_seconds()), updated_at=Now()
        )
    )


def _release(run_id, token: uuid.UUID | None = None) -> bool:
    """Give the lease up — only the owner's: a worker whose lease expired cannot free its successor's."""
    return bool(
        SagaRun.objects.filter(pk=run_id, lease_owner=_token(token)).update(lease_expires_at=None, lease_owner=None)
    )


_HOLD_SQL = f"""
SELECT 1 FROM {SagaRun._meta.db_table}
 WHERE id = %s AND lease_owner = %s AND lease_expires_at > statement_timestamp()
   FOR SHARE
"""  # noqa: S608 (table name from the model)


def _hold(run_id, token: uuid.UUID | None = None) -> None:
    """Inside the transaction of a step or run write: the lease is still ours (unexpired), and stays
    ours until the commit (``FOR SHARE`` makes a claimer wait). Raises :class:`LeaseLost` otherwise."""
    with connection.cursor() as cursor:
        cursor.execute(_HOLD_SQL, [run_id, _token(token)])
        if cursor.fetchone() is None:
            raise LeaseLost(f"the lease on saga run {run_id} is no longer ours")


def _keep(run_id) -> None:
    """Before a provider call: renew the lease, or stop (:class:`LeaseLost`) when it is gone."""
    if not _renew(run_id):
        raise LeaseLost(f"the lease on saga run {run_id} is no longer ours")


def _lease_remaining(run_id) -> float | None:
    """Seconds until another worker's lease expires; ``None`` when the run is not active."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT status, extract(epoch FROM lease_expires_at - statement_timestamp())::float8 "  # noqa: S608
            f"FROM {SagaRun._meta.db_table} WHERE id = %s",
            [run_id],
        )
        row = cursor.fetchone()
    if row is None or row[0] not in _ACTIVE:
        return None
    return max(1.0, (row[1] or 0) + 1.0)


class _Heartbeat:
    """While a provider call runs: every :func:`heartbeat_seconds`, renew the run's lease and publish
    ``graph:step:progress`` ("waiting for psp: 10 s"), on a thread with its own database connection."""

    def __init__(self, run: SagaRun, step: SagaStep, provider: str):
        self.run, self.step, self.provider = run, step, provider
        self.token = _token()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._beat, name=f"saga-heartbeat-{step.pk}", daemon=True)
        self.started = time.monotonic()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=1.0)

    def _beat(self) -> None:
        from django.db import connections

        interval = heartbeat_seconds()
        while not self.stop.wait(interval):
            elapsed = round(time.monotonic() - self.started)
            try:
                with transaction.atomic():
                    if not _renew(self.run.pk, self.token):
                        logger.warning("saga.lease_lost", saga_urn=self.run.urn, step_urn=self.step.urn)
                        return
                    _publish(
                        STEP_PROGRESS,
                        self.run,
                        {
                            "caseUrn": self.run.case.urn,
                            "stepUrn": self.step.urn,
                            "progress": 0,
                            "message": f"waiting for {self.provider}: {elapsed} s",
                        },
                    )
            except Exception:  # e.g. no pooled connection free right now: beat again next interval
                logger.warning("saga.heartbeat_failed", step_urn=self.step.urn, exc_info=True)
            finally:
                # Between beats the connection goes back to the pool: a thread-pool worker has many
                # provider calls in flight, each with its own heartbeat.
                connections.close_all()


def _provider_name(step: SagaStep) -> str:
    if step.kind == "TRANSPORT":
        return str(step.item.get("provider", "transport")).lower()
    return PROVIDER_OF_KIND.get(step.kind, step.kind.lower())


# --- driving a run ------------------------------------------------------------------------------------


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
        entry.update(provider=PROVIDER_OF_KIND.get(step.kind, "internal"), code="internal_error", message=str(error))
    return entry


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
        step.status = SagaStepStatus.RUNNING
        step.started_at = step.started_at or _now()
        step.next_attempt_at = None
        step.save(update_fields=["attempts", "status", "started_at", "next_attempt_at", "updated_at"])
        _publish(
            STEP_STARTED,
            run,
            {"caseUrn": run.case.urn, "stepUrn": step.urn, "name": step.name, "startedAt": _iso(step.started_at)},
        )
        if step.attempts == 1:
            _audit(run, "saga.step_started", entity_urn=step.urn, after={"name": step.name, "status": "RUNNING"})

    try:
        with _Heartbeat(run, step, _provider_name(step)):
            result = _resolve_or_perform(run, step)
    except LeaseLost:
        raise
    except ProviderUnavailable as error:
        return _retry_or_fail(run, step, error, limit=unavailable_max_attempts(), delay=unavailable_wait_seconds())
    except ProviderTransientError as error:
        return _retry_or_fail(run, step, error, limit=max_attempts(), delay=backoff_seconds(step.attempts))
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
        if step.kind == "CASH":
            booking.wallet_credit_record(
                sub_case=run.sub_case,
                amount=step.item["amount"],
                currency=step.item["currency"],
                reference=step.idempotency_key,
                payout_id=str(result.get("payoutId", "")),
                actor=SYSTEM_SAGA_ACTOR,
                case_urn=run.case.urn,
            )
        step.status = SagaStepStatus.COMPLETED
        step.result = result
        step.error = None
        step.outcome_unknown = False
        step.completed_at = _now()
        step.attempt_log = [*step.attempt_log, _attempt_entry(step, "COMPLETED")]
        step.save(
            update_fields=["status", "result", "error", "outcome_unknown", "completed_at", "attempt_log", "updated_at"]
        )
        _publish(
            STEP_COMPLETED,
            run,
            {"caseUrn": run.case.urn, "stepUrn": step.urn, "completedAt": _iso(step.completed_at), "result": result},
        )
        _audit(run, "saga.step_completed", entity_urn=step.urn, after={"name": step.name, "result": result})
    return None


def _lookup(step: SagaStep) -> dict[str, Any] | None:
    """Ask the step's provider what became of the step's ORIGINAL key: the effect, or ``None`` when the
    provider confirms it never executed it. Provider errors propagate (still unknown); a lookup the
    provider refuses (any 4xx but "no such key") is not an answer either, so it is raised as transient:
    the step stays in doubt rather than being taken as never executed."""
    try:
        return booking.effect_lookup(
            kind=step.kind, idempotency_key=step.idempotency_key, provider=step.item.get("provider")
        )
    except ProviderPermanentError as error:
        raise ProviderTransientError(
            provider=error.provider, code=error.code, message=error.message, attempt_detail=error.attempt_detail
        ) from error


def _resolve_or_perform(run: SagaRun, step: SagaStep) -> dict[str, Any]:
    """A step whose outcome is unknown (an operator retry re-armed it) is first resolved under its
    original key: an effect the provider made is the step's result (no second call); only a step the
    provider confirms it never executed gets a new key (``…/retry-<n>``) and is performed."""
    if not step.outcome_unknown or step.kind == "NOTIFY":
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


def _perform(run: SagaRun, step: SagaStep) -> dict[str, Any]:
    """The provider call of one step, with the step's idempotency key. Returns plain JSON."""
    item, key, sub_case_urn = step.item, step.idempotency_key, run.sub_case.urn
    if step.kind == "MEAL":
        card = booking.meal_card_issue(
            idempotency_key=key,
            sub_case_urn=sub_case_urn,
            amount=item["amount"],
            currency=item["currency"],
            expires_at=item["expiresAt"],
        )
        return {"provider": "psp", **card}
    if step.kind == "CASH":
        payout = booking.cash_payout(
            idempotency_key=key,
            sub_case_urn=sub_case_urn,
            amount=item["amount"],
            currency=item["currency"],
            regulation=item["regulation"],
        )
        return {"provider": "psp", **payout}
    if step.kind == "TRANSPORT":
        ride = booking.transport_ride_request(
            idempotency_key=key,
            provider=item["provider"],
            sub_case_urn=sub_case_urn,
            pickup=item["pickup"],
            dropoff=item["dropoff"],
            pickup_at=item["pickupAt"],
        )
        return dict(ride)
    if step.kind == "NOTIFY":
        from notifications import services as notifications

        delivered = [
            {
                "type": s.kind,
                **{k: s.item[k] for k in ("amount", "currency", "provider") if s.item.get(k)},
                **({"etaMinutes": (s.result or {}).get("etaMinutes")} if s.kind == "TRANSPORT" else {}),
            }
            for s in run.steps.filter(status=SagaStepStatus.COMPLETED).exclude(kind="NOTIFY").order_by("position")
        ]
        outcome = notifications.notification_send_for_subcase(
            principal_or_system=system_principal(run.airline),
            sub_case_urn=sub_case_urn,
            template=NOTIFY_TEMPLATE,
            context={"caseUrn": run.case.urn, "sagaUrn": run.urn, "items": delivered},
            idempotency_key=key,
        )
        return dict(outcome or {})
    raise ValueError(f"unknown step kind {step.kind!r}")


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
        entry = _attempt_entry(step, "FAILED", error)
        step.status = SagaStepStatus.FAILED
        # A refusal is an answer: nothing was done. A timeout, 5xx, open circuit or crash is not: the
        # provider may have made the effect. The step is in doubt until resolved under its key.
        step.outcome_unknown = step.kind != "NOTIFY" and not isinstance(error, ProviderPermanentError)
        if step.outcome_unknown:
            entry["outcomeUnknown"] = True
        step.error = entry
        step.attempt_log = [*step.attempt_log, entry]
        step.completed_at = _now()
        step.next_attempt_at = None
        step.save(
            update_fields=[
                "status",
                "error",
                "outcome_unknown",
                "attempt_log",
                "completed_at",
                "next_attempt_at",
                "updated_at",
            ]
        )
        _audit(run, "saga.step_failed", entity_urn=step.urn, after={"name": step.name, "error": entry})
        if step.kind == "NOTIFY":
            return None
        category = "PROVIDER_UNAVAILABLE" if isinstance(error, ProviderUnavailable) else None
        if category is None and not isinstance(error, ProviderError):
            category = "INTERNAL_ERROR"
        # An operator's cancel that arrived meanwhile wins: the run still ends CANCELLED.
        SagaRun.objects.filter(pk=run.pk, status=SagaRunStatus.RUNNING).update(
            status=SagaRunStatus.COMPENSATING,
            failure_category=category or FAILURE_CATEGORIES.get(step.kind, "SAGA_FAILED"),
            failure={"step": step.name, "stepUrn": step.urn, **entry},
            updated_at=Now(),
        )
    return None  # execute() loops and compensates


# --- compensation ---------------------------------------------------------------------------------------


def _undo(run: SagaRun, step: SagaStep) -> dict[str, Any]:
    result, key = step.result or {}, step.compensation_key
    if step.kind == "MEAL":
        return {"provider": "psp", **booking.meal_card_void(idempotency_key=key, card_id=result["cardId"])}
    if step.kind == "CASH":
        return {"provider": "psp", **booking.cash_payout_reverse(idempotency_key=key, payout_id=result["payoutId"])}
    if step.kind == "TRANSPORT":
        provider = result.get("provider") or step.item["provider"]
        return dict(booking.transport_ride_cancel(idempotency_key=key, provider=provider, ride_id=result["rideId"]))
    raise ValueError(f"nothing to undo for {step.kind}")


def _in_doubt(step: SagaStep) -> bool:
    """A step that may have had an effect we never recorded: its last attempt ended in a timeout, 5xx,
    open circuit or crash (``outcome_unknown``), or a worker died mid-call (RUNNING)."""
    if step.kind == "NOTIFY":
        return False
    return step.outcome_unknown or (
        step.status in (SagaStepStatus.RUNNING, SagaStepStatus.PENDING) and step.attempts > 0
    )


def _resolved(run: SagaRun, step: SagaStep, found: dict[str, Any] | None) -> SagaStep:
    """Record what the provider said about a step in doubt: the effect it made (the step COMPLETED, a
    payout credited to the wallet ledger, so compensation undoes it) or that it never executed it."""
    with transaction.atomic():
        _hold(run.pk)
        locked = SagaStep.objects.select_for_update().get(pk=step.pk)
        if found is None:
            locked.status = SagaStepStatus.FAILED
            locked.attempt_log = [*locked.attempt_log, _attempt_entry(locked, "NOT_EXECUTED")]
        else:
            if locked.kind == "CASH":
                booking.wallet_credit_record(
                    sub_case=run.sub_case,
                    amount=locked.item["amount"],
                    currency=locked.item["currency"],
                    reference=locked.idempotency_key,
                    payout_id=str(found.get("payoutId", "")),
                    actor=SYSTEM_SAGA_ACTOR,
                    case_urn=run.case.urn,
                )
            locked.status = SagaStepStatus.COMPLETED
            locked.result = found
            locked.completed_at = _now()
            locked.attempt_log = [*locked.attempt_log, _attempt_entry(locked, "RESOLVED_EXECUTED")]
        locked.outcome_unknown = False
        locked.next_attempt_at = None
        locked.save()
        _audit(
            run,
            "saga.step_resolved",
            entity_urn=locked.urn,
            after={"name": locked.name, "executed": found is not None, "idempotencyKey": locked.idempotency_key},
        )
    return locked


def _unresolved(run: SagaRun, step: SagaStep) -> None:
    """The provider could not say (still failing after every attempt): the step stays in doubt. A failed
    run keeps it FAILED with ``outcome_unknown`` (an operator retry resolves it first); a cancel cannot
    finish with money possibly out, so there it is a COMPENSATION_FAILED for a human."""
    with transaction.atomic():
        _hold(run.pk)
        status = SagaStepStatus.COMPENSATION_FAILED if run.status == SagaRunStatus.CANCELLING else SagaStepStatus.FAILED
        SagaStep.objects.filter(pk=step.pk).update(
            status=status, outcome_unknown=True, next_attempt_at=None, updated_at=Now()
        )
        _audit(run, "saga.step_unresolved", entity_urn=step.urn, after={"name": step.name, "status": status})


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
        if step.status != SagaStepStatus.COMPLETED or step.kind == "NOTIFY":
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
            if step.kind == "CASH":
                booking.wallet_reversal_record(
                    sub_case=run.sub_case,
                    amount=step.item["amount"],
                    currency=step.item["currency"],
                    reference=step.compensation_key,
                    payout_id=str((step.result or {}).get("payoutId", "")),
                    actor=SYSTEM_SAGA_ACTOR,
                    case_urn=run.case.urn,
                )
            previous = step.compensation or {}
            SagaStep.objects.filter(pk=step.pk).update(
                status=SagaStepStatus.COMPENSATED,
                compensation={**previous, "result": undone, "at": _iso(_now())},
                compensated_at=Now(),
                updated_at=Now(),
            )
            _publish(
                STEP_PROGRESS,
                run,
                {"caseUrn": run.case.urn, "stepUrn": step.urn, "progress": 1, "message": f"{step.name} undone"},
            )
            _audit(run, "saga.step_compensated", entity_urn=step.urn, after={"name": step.name, "result": undone})
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
        SagaStep.objects.filter(pk=step.pk).update(
            status=SagaStepStatus.COMPENSATION_FAILED,
            compensation={**state, "error": {"code": code, "message": message, "at": _iso(_now())}},
            updated_at=Now(),
        )
        _audit(run, "saga.compensation_failed", entity_urn=step.urn, after={"name": step.name, "code": code})


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


def _finish_compensation(run: SagaRun) -> None:
    from cases import services  # services imports this module

    with transaction.atomic():
        _hold(run.pk)
        run = SagaRun.objects.select_for_update().select_related("case", "sub_case").get(pk=run.pk)
        cancelled = run.status == SagaRunStatus.CANCELLING
        final = SagaRunStatus.CANCELLED if cancelled else SagaRunStatus.FAILED
        SagaRun.objects.filter(pk=run.pk).update(status=final, finished_at=Now(), updated_at=Now())
        run.steps.filter(status=SagaStepStatus.PENDING, attempts=0, outcome_unknown=False).update(
            status=SagaStepStatus.SKIPPED, updated_at=Now()
        )
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
        services.subcase_send_to_review_by_system(
            airline=run.airline,
            sub_case_id=run.sub_case_id,
            reason=f"compensation saga {run.urn} failed: {run.failure_category}",
        )
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


# --- recovery --------------------------------------------------------------------------------------------


def stalled_run_ids(limit: int = 100) -> list:
    """Active runs nobody is driving: the worker's lease expired (it died mid-step), or no lease and no
    progress for ``NEXA_SAGA_IDLE_SECONDS`` (default 900 s, above any retry countdown; e.g. the task
    died on an unexpected error after releasing the lease)."""
    from django.db.models import Q

    idle = dt.timedelta(seconds=_setting("NEXA_SAGA_IDLE_SECONDS", 900))
    stalled = Q(lease_expires_at__lt=Now()) | Q(lease_expires_at__isnull=True, updated_at__lt=Now() - idle)
    return list(
        SagaRun.objects.filter(stalled, status__in=_ACTIVE).order_by("updated_at").values_list("pk", flat=True)[:limit]
    )


def resume_stalled(enqueue: Callable[[str], None], limit: int = 100) -> int:
    """Hand every stalled run to ``enqueue(saga_urn)``; returns how many."""
    ids = stalled_run_ids(limit)
    for run_id in ids:
        enqueue(SagaRun(pk=run_id).urn)
    return len(ids)


def subcase_for_run(run: SagaRun) -> SubCase:
    return run.sub_case
