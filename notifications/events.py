"""Events of the notifications domain (spec 000's event table).

* ``notification:dispatched`` ``{caseUrn, channel, recipient}`` (client) to the case's room when a
  message was accepted for delivery. ``recipient`` is always masked.
* ``notification:queued`` ``{notificationUrn}``: internal, to no room. Its outbox row is the durable
  hand-off to the delivery task (ARCHITECTURE §3.10: tasks that must not be lost go through the
  outbox); :func:`register_delivery_consumer` wires it to ``notifications.tasks.notification_deliver``.

Both are declared in the event registry (:mod:`nexa.platform.events`).
"""

from typing import Any

from nexa.platform import events as registry
from nexa.platform.events import Annotated, Audience, Room, TypedDict, Urn
from nexa.platform.outbox import publish, register_consumer

NOTIFICATION_DISPATCHED = "notification:dispatched"
NOTIFICATION_QUEUED = "notification:queued"
DELIVER_TASK = "notifications.tasks.notification_deliver"
QUEUE = "notifications"


class NotificationDispatched(TypedDict):
    caseUrn: Annotated[str, Urn("case")]
    channel: str
    recipient: str  # masked (``+34******456``, ``m***@example.com``)


class NotificationQueued(TypedDict):
    notificationUrn: Annotated[str, Urn("notification")]


registry.declare(
    NOTIFICATION_DISPATCHED,
    payload=NotificationDispatched,
    audience=Audience.CLIENT,
    rooms=[Room.CASE],
    description="Voucher dispatched on any channel",
)
registry.declare(
    NOTIFICATION_QUEUED, payload=NotificationQueued, audience=Audience.INTERNAL,
    description="A notification row was queued: the outbox hands it to the delivery task",
)  # fmt: skip


def notification_dispatched_payload(*, case_urn: str, channel: str, masked_recipient: str) -> dict[str, Any]:
    """``{caseUrn, channel, recipient}``: pass the MASKED recipient, never the address."""
    return {"caseUrn": case_urn, "channel": str(channel), "recipient": masked_recipient}


def publish_notification_dispatched(*, case_urn: str, airline: str, channel: str, masked_recipient: str) -> None:
    publish(
        NOTIFICATION_DISPATCHED,
        notification_dispatched_payload(case_urn=case_urn, channel=channel, masked_recipient=masked_recipient),
        registry.rooms_for(NOTIFICATION_DISPATCHED, case_urn=case_urn, airline=airline),
        airline=airline,
    )


def publish_notification_queued(*, notification_urn: str, airline: str) -> None:
    """Inside the transaction that wrote the QUEUED row; the worker delivers after commit."""
    publish(
        NOTIFICATION_QUEUED,
        {"notificationUrn": notification_urn},
        registry.rooms_for(NOTIFICATION_QUEUED, airline=airline),
        airline=airline,
    )


def register_delivery_consumer() -> None:
    """Called from ``NotificationsConfig.ready()`` in every process."""
    register_consumer(NOTIFICATION_QUEUED, DELIVER_TASK, queue=QUEUE)
