"""Celery tasks of the cases domain: thin wrappers around :mod:`cases.saga` (ARCHITECTURE §6).

``saga_run_execute`` is the outbox consumer of ``saga:requested`` (registered in
``CasesConfig.ready``), so a run accepted by the API is never lost between commit and queueing.
It runs on the ``saga`` queue with ``acks_late``: a worker killed mid-step leaves the message
unacknowledged, and the step — persisted as RUNNING before its provider call — is re-run with the
same idempotency key. Transient waits become ``self.retry(countdown=…)``, always far below the
broker's visibility timeout.
"""

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from cases import saga, services
from nexa.platform.context import bound_context
from nexa.platform.urns import parse_urn

SAGA_QUEUE = "saga"
EXECUTE_TASK = "cases.tasks.saga_run_execute"
# Never schedule a countdown the broker could outlive: stay well below its visibility timeout.
MAX_COUNTDOWN_SECONDS = 300.0


def max_countdown() -> float:
    visibility = (getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", None) or {}).get("visibility_timeout", 3600)
    return min(MAX_COUNTDOWN_SECONDS, float(visibility) / 4)


@shared_task(
    name=EXECUTE_TASK,
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=None,  # bounded by the step attempt limits kept in PostgreSQL, not by Celery
    ignore_result=True,
    queue=SAGA_QUEUE,
)
def saga_run_execute(self, *, payload: dict | None = None, saga_urn: str | None = None, correlation_urn: str = "", **_):
    """Drive one saga run (from an outbox delivery's ``payload.sagaUrn``, or ``saga_urn`` on retries)."""
    urn = saga_urn or (payload or {}).get("sagaUrn")
    run_id = parse_urn(urn, "saga").id
    with bound_context(correlation_urn=correlation_urn or None, saga_urn=urn):
        wait = saga.execute(run_id)
    if wait is not None:
        raise self.retry(
            kwargs={"saga_urn": urn, "correlation_urn": correlation_urn},
            countdown=min(max(wait, 0.1), max_countdown()),
        )


@shared_task(name="cases.tasks.saga_runs_resume_stalled", ignore_result=True, queue=SAGA_QUEUE)
def saga_runs_resume_stalled() -> int:
    """Beat: re-queue runs whose worker died holding them (lease expired)."""
    return saga.resume_stalled(lambda urn: saga_run_execute.apply_async(kwargs={"saga_urn": urn}, queue=SAGA_QUEUE))


@shared_task(name="cases.tasks.reservations_release", ignore_result=True)
def reservations_release() -> dict:
    """Beat (default queue): release the rooms nobody needs (``cases.services.reservations_release_sweep``)."""
    return services.reservations_release_sweep(now=timezone.now())
