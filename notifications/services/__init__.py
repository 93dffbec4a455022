"""Commands of the notifications domain: queue a notification, deliver it, resend by hand, record
WhatsApp opt-ins.

How a message travels:

1. :func:`notification_send_for_subcase` (the compensation saga) or :func:`notifications_send_manual`
   (``POST /v1/notifications/{case_urn}/send``) write one :class:`~notifications.models.Notification`
   row per channel in one transaction, with an audit row each and a ``notification:queued`` outbox
   event (the durable hand-off to the worker). A passenger without a contact on the channel, without
   WhatsApp opt-in, or a template without an approved WhatsApp version gives a ``SKIPPED`` row with a
   ``reason`` instead.
2. After commit the outbox relay hands the event to ``notifications.tasks.notification_deliver`` on the
   ``notifications`` queue, which calls :func:`notification_deliver`: it renders the Django templates in
   the passenger's language (fallback English) and sends through Django's email backend (SMTP) or the
   SMS / WhatsApp adapters, with the notification URN as the provider idempotency key.
3. Success → ``SENT``, audit ``notification.sent``, ``notification:dispatched`` with the masked
   recipient. A transient error is retried with backoff until ``NEXA_NOTIFICATION_MAX_ATTEMPTS``
   attempts, then ``FAILED``; a permanent refusal is ``FAILED`` at once. ``FAILED`` rows are listed for
   a manual resend (:func:`notifications.selectors.notifications_awaiting_resend`).

Audit rows and events never carry a full address, a name or the rendered text.

One module per use case; callers import this package (``from notifications import services``), which
re-exports every public name: :mod:`.send` (a sub-case's notification, for the saga), :mod:`.manual`
(manual sends and their caps), :mod:`.opt_in` (WhatsApp consent), :mod:`.privacy` (the purge),
:mod:`.delivery` (render, send, record the outcome) and :mod:`._common` (constants, templates and the
shared queueing steps).
"""

from notifications.services._common import (
    BREAKER_RETRY_SECONDS,
    FALLBACK_LANGUAGE,
    MANUAL_SEND_WINDOW_SECONDS,
    MAX_CONTEXT_BYTES,
    RETRY_BASE_SECONDS,
    RETRY_MAX_SECONDS,
    SUPPORTED_LANGUAGES,
    TEMPLATES,
    TemplateSpec,
    language_for,
    template_names,
    template_spec,
)
from notifications.services.delivery import (
    DeliveryOutcome,
    DeliveryPermanent,
    DeliveryTransient,
    notification_deliver,
    render_notification,
)
from notifications.services.manual import notifications_send_manual
from notifications.services.opt_in import whatsapp_opt_in_record
from notifications.services.privacy import notification_recipients_purge
from notifications.services.send import notification_send_for_subcase

__all__ = [
    "BREAKER_RETRY_SECONDS",
    "FALLBACK_LANGUAGE",
    "MANUAL_SEND_WINDOW_SECONDS",
    "MAX_CONTEXT_BYTES",
    "RETRY_BASE_SECONDS",
    "RETRY_MAX_SECONDS",
    "SUPPORTED_LANGUAGES",
    "TEMPLATES",
    "DeliveryOutcome",
    "DeliveryPermanent",
    "DeliveryTransient",
    "TemplateSpec",
    "language_for",
    "notification_deliver",
    "notification_recipients_purge",
    "notification_send_for_subcase",
    "notifications_send_manual",
    "render_notification",
    "template_names",
    "template_spec",
    "whatsapp_opt_in_record",
]
