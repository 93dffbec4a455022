"""Celery tasks of the review domain: thin outbox consumers (registered in ``ReviewConfig.ready``).

Each receives an outbox delivery (``event_id``, ``event``, ``payload``, ``airline``, ``correlation_urn``
…) and hands it to :func:`review.services.review_item_from_event`, which is idempotent by the event's URN:
the outbox delivers at least once, and a redelivery answers the item the first delivery made.

On the ``sla`` queue: ``review_sla_sweep`` (beat, ``CELERY_BEAT_SCHEDULE["review-sla-sweep"]``) and
``review_page_deliver``, the consumer of ``review:escalated`` that delivers the escalation's page.
"""

from celery import shared_task
from django.conf import settings

from nexa.platform.context import bound_context
from review import events, selectors, services

QUEUE = "default"
SLA_QUEUE = "sla"
SWEEP_TASK = "review.tasks.review_sla_sweep"
PAGE_TASK = "review.tasks.review_page_deliver"
FROM_SAGA_FAILED = "review.tasks.review_item_from_saga_failed"
FROM_ALLOCATION_FAILED = "review.tasks.review_item_from_allocation_failed"
FROM_BOOKING_FAILED = "review.tasks.review_item_from_booking_failed"
CONSUMERS = {
    services.SAGA_FAILED: FROM_SAGA_FAILED,
    services.ALLOCATION_FAILED: FROM_ALLOCATION_FAILED,
    services.BOOKING_FAILED: FROM_BOOKING_FAILED,
}


def _consume(event: str, *, event_id: str, payload: dict, airline: str, correlation_urn: str = "") -> str | None:
    with bound_context(correlation_urn=correlation_urn or None):
        item = services.review_item_from_event(
            event=event,
            event_urn=event_id,  # the outbox sends the event URN (urn:nexa:event:…), stable across redeliveries
            airline=airline,
            payload=payload or {},
            correlation_urn=correlation_urn,
        )
    return item.urn if item is not None else None


@shared_task(name=FROM_SAGA_FAILED, acks_late=True, ignore_result=True, queue=QUEUE)
def review_item_from_saga_failed(*, event_id: str, payload: dict, airline: str, correlation_urn: str = "", **_):
    return _consume(
        services.SAGA_FAILED, event_id=event_id, payload=payload, airline=airline, correlation_urn=correlation_urn
    )


@shared_task(name=FROM_ALLOCATION_FAILED, acks_late=True, ignore_result=True, queue=QUEUE)
def review_item_from_allocation_failed(*, event_id: str, payload: dict, airline: str, correlation_urn: str = "", **_):
    return _consume(
        services.ALLOCATION_FAILED, event_id=event_id, payload=payload, airline=airline, correlation_urn=correlation_urn
    )


@shared_task(name=FROM_BOOKING_FAILED, acks_late=True, ignore_result=True, queue=QUEUE)
def review_item_from_booking_failed(*, event_id: str, payload: dict, airline: str, correlation_urn: str = "", **_):
    return _consume(
        services.BOOKING_FAILED, event_id=event_id, payload=payload, airline=airline, correlation_urn=correlation_urn
    )


@shared_task(name=SWEEP_TASK, ignore_result=True, queue=SLA_QUEUE)
def review_sla_sweep() -> int:
    """Beat: escalate the breached items and page (at most one batch per run; the next run takes the rest)."""
    return len(services.review_sla_sweep())


def _max_countdown() -> float:
    visibility = (getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", None) or {}).get("visibility_timeout", 3600)
    return min(float(services.PAGE_BACKOFF_MAX_SECONDS), float(visibility) / 4)


@shared_task(name=PAGE_TASK, bind=True, acks_late=True, max_retries=None, ignore_result=True, queue=SLA_QUEUE)
def review_page_deliver(
    self, *, payload: dict | None = None, page_id: str | None = None, correlation_urn: str = "", **_
):
    """The outbox consumer of ``review:escalated`` (and its own retries, with ``page_id``): one attempt, then
    a retry after the backoff until the page is settled (the attempt limit is kept on the page row)."""
    if page_id is None:
        payload = payload or {}
        page_id = selectors.review_page_id_for(review_urn=payload["reviewUrn"], version=payload["version"])
        if page_id is None:
            return
    with bound_context(correlation_urn=correlation_urn or None):
        wait = services.review_page_deliver(page_id=page_id)
    if wait is not None:
        raise self.retry(
            kwargs={"page_id": page_id, "correlation_urn": correlation_urn}, countdown=min(wait, _max_countdown())
        )


PAGE_CONSUMER = (events.REVIEW_ESCALATED, PAGE_TASK, SLA_QUEUE)
