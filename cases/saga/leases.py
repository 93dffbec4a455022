"""The lease through which one worker at a time drives a run (ARCHITECTURE §6, docs/compensation.md):
claim, renew, release, the ``FOR SHARE`` hold every write takes, and the heartbeat that renews it
during a long provider call."""

from __future__ import annotations

import contextvars
import datetime as dt
import threading
import time
import uuid

import structlog
from django.db import connection, connections, transaction
from django.db.models.functions import Now

from cases.models import SagaRun, SagaRunStatus, SagaStep
from cases.saga.common import STEP_PROGRESS, _publish, heartbeat_seconds, lease_seconds

logger = structlog.get_logger(__name__)


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
