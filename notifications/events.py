"""Events of the notifications domain (spec 000's event table).

* ``notification:dispatched`` ``{caseUrn, channel, recipient}`` to the case's and the airline's rooms
  when a message was accepted for delivery. ``recipient`` is always masked.
* ``notification:queued`` ``{notificationUrn}``: internal, to no room. Its outbox row is the durable
  hand-off to the delivery task (ARCHITECTURE §3.10: tasks that must not be lost go through the
  outbox); :func:`register_delivery_consumer` wires it to ``notifications.tasks.notification_deliver``.
"""

from typing import Any

from nexa.platform.outbox import publish, register_consumer
from nexa.platform.rooms import case_rooms

NOTIFICATION_DISPATCHED = "notification:dispatched"
NOTIFICATION_QUEUED = "notification:queued"
DELIVER_TASK = "notifications.tasks.notification_deliver"
QUEUE = "notifications"


def notification_dispatched_payload(*, case_urn: str, channel: str, masked_recipient: str) -> dict[str, Any]:
    """``{caseUrn, channel, recipient}``: pass the MASKED recipient, never the address."""
    return {"caseUrn": case_urn, "channel": str(channel), "recipient": masked_recipient}


def publish_notification_dispatched(*, case_urn: str, airline: str, channel: str, masked_recipient: str) -> None:
    publish(
        NOTIFICATION_DISPATCHED,
        notification_dispatched_payload(case_urn=case_urn, channel=channel, masked_recipient=masked_recipient),
        case_rooms(case_urn=case_urn, airline=airline),
        airline=airline,
    )


def publish_notification_queued(*, notification_urn: str, airline: str) -> None:
    """Inside the transaction that wrote the QUEUED row; the worker delivers after commit."""
    publish(NOTIFICATION_QUEUED, {"notificationUrn": notification_urn}, [], airline=airline)


def register_delivery_consumer() -> None:
    """Called from ``NotificationsConfig.ready()`` in every process."""
    register_consumer(NOTIFICATION_QUEUED, DELIVER_TASK, queue=QUEUE)
