"""Celery tasks of the notifications domain: thin wrappers, the work lives in notifications.services."""

from celery import shared_task

from nexa.platform.context import bound_context
from notifications import services
from notifications.events import DELIVER_TASK, QUEUE


@shared_task(name=DELIVER_TASK, bind=True, ignore_result=True, acks_late=True, queue=QUEUE, max_retries=None)
def notification_deliver(self, *, payload: dict, correlation_urn: str = "", **_kwargs) -> str:
    """Consumer of ``notification:queued`` (outbox): one delivery attempt; a transient error schedules
    the next one with backoff. The attempt count lives in the row, so the limit
    (NEXA_NOTIFICATION_MAX_ATTEMPTS) holds across redeliveries and worker restarts."""
    with bound_context(correlation_urn=correlation_urn or None):
        outcome = services.notification_deliver(notification_urn=payload["notificationUrn"])
    if outcome.retry_in is not None:
        raise self.retry(countdown=outcome.retry_in, queue=QUEUE)
    return outcome.status
