"""Celery tasks of the review domain: thin outbox consumers (registered in ``ReviewConfig.ready``).

Each receives an outbox delivery (``event_id``, ``event``, ``payload``, ``airline``, ``correlation_urn``
…) and hands it to :func:`review.services.review_item_from_event`, which is idempotent by the event's URN:
the outbox delivers at least once, and a redelivery answers the item the first delivery made.
"""

from celery import shared_task

from nexa.platform.context import bound_context
from nexa.platform.outbox import event_urn
from review import services

QUEUE = "default"
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
            event_urn=event_urn(event_id),
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
