"""Delivering a queued notification: render it, send it through its channel, record the outcome
(sent, retried with backoff, failed)."""

from __future__ import annotations

import smtplib
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from audit.services import SYSTEM_WORKER, record
from nexa.platform.problems import not_found_problem
from nexa.platform.providers import ProviderPermanentError, ProviderTransientError, ProviderUnavailable
from nexa.platform.urns import parse_urn
from notifications import events
from notifications.models import Channel, Notification, NotificationStatus
from notifications.providers import sms_client, whatsapp_client
from notifications.selectors import render_context_extra
from notifications.services._common import (
    _MAX_ERROR_CHARS,
    BREAKER_RETRY_SECONDS,
    HOOK_PROVIDED_KEYS,
    RETRY_BASE_SECONDS,
    RETRY_MAX_SECONDS,
    TEMPLATES,
)

# --- delivery --------------------------------------------------------------------------------


class DeliveryTransient(Exception):
    """An email error worth retrying (connection refused, 4xx)."""


class DeliveryPermanent(Exception):
    """An email the server refused for good (5xx, bad recipient)."""


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    """What one delivery attempt came to; ``retry_in`` seconds when the task should run again."""

    status: str
    retry_in: float | None = None


def _render_context(notification: Notification) -> dict[str, Any]:
    sub_case, case = notification.sub_case, notification.case
    base = {
        "firstName": sub_case.first_name,
        "lastName": sub_case.last_name,
        "flightNumber": case.flight_number,
        "flightDate": case.flight_date.isoformat(),
        "airport": case.airport,
        "pnr": sub_case.pnr,
    }
    extra = render_context_extra(
        template=notification.template,
        sub_case=sub_case,
        context=notification.context,
        language=notification.language,
        channel=notification.channel,
    )
    # Keys a hook provides are never taken from the stored context (e.g. hotel_voucher's voucherHtml, which
    # is rendered unescaped only as the hook's own safe string).
    stored = {key: value for key, value in notification.context.items() if key not in HOOK_PROVIDED_KEYS}
    return {**stored, **extra, **base}


def render_notification(notification: Notification) -> dict[str, str]:
    """The rendered texts for the notification's channel and language: ``subject``, ``text``, ``html``
    (email) or ``text`` (SMS)."""
    folder = f"notifications/{notification.language}/{notification.template}"
    context = _render_context(notification)
    if notification.channel == Channel.EMAIL:
        return {
            "subject": " ".join(render_to_string(f"{folder}/subject.txt", context).split()),
            "text": render_to_string(f"{folder}/body.txt", context).strip() + "\n",
            "html": render_to_string(f"{folder}/body.html", context),
        }
    return {"text": render_to_string(f"{folder}/sms.txt", context).strip()}


def _send_email(notification: Notification) -> str:
    rendered = render_notification(notification)
    message_id = f"<{notification.id}@notifications.nexa>"
    message = EmailMultiAlternatives(
        subject=rendered["subject"],
        body=rendered["text"],
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[notification.recipient],
        # A stable Message-ID: a retry after a lost answer is recognisable as the same message.
        headers={"Message-ID": message_id, "X-Nexa-Notification": notification.urn},
    )
    message.attach_alternative(rendered["html"], "text/html")
    try:
        message.send()
    except smtplib.SMTPRecipientsRefused as error:
        codes = sorted({code for code, _ in error.recipients.values()})
        # 4xx (greylisting, mailbox busy) may succeed later; 5xx will not. No address in the text.
        kind = DeliveryPermanent if any(code >= 500 for code in codes) else DeliveryTransient
        raise kind(f"SMTP recipient refused ({', '.join(map(str, codes))})") from None
    except smtplib.SMTPResponseException as error:
        kind = DeliveryPermanent if error.smtp_code >= 500 else DeliveryTransient
        raise kind(f"SMTP {error.smtp_code}: {error.smtp_error!r}") from None
    except (smtplib.SMTPException, OSError) as error:
        raise DeliveryTransient(f"{type(error).__name__}: {error}") from None
    return message_id


def _send_sms(notification: Notification) -> str:
    rendered = render_notification(notification)
    answer = sms_client().send(idempotency_key=notification.urn, to=notification.recipient, body=rendered["text"])
    return str(answer.get("messageId") or "")


def _send_whatsapp(notification: Notification) -> str:
    spec = TEMPLATES[notification.template]
    context = _render_context(notification)
    answer = whatsapp_client().send(
        idempotency_key=notification.urn,
        to=notification.recipient,
        template=spec.whatsapp_template,
        language=notification.language,
        parameters=[str(context.get(key, "")) for key in spec.whatsapp_parameters],
    )
    return str(answer.get("messageId") or "")


_SENDERS = {Channel.EMAIL: _send_email, Channel.SMS: _send_sms, Channel.WHATSAPP: _send_whatsapp}


def _scrub(message: str, notification: Notification) -> str:
    """An error text fit to store and show: no full address, bounded."""
    text = str(message)
    if notification.recipient:
        text = text.replace(notification.recipient, notification.masked_recipient)
    return text[:_MAX_ERROR_CHARS]


def _max_attempts() -> int:
    return max(1, int(settings.NEXA_NOTIFICATION_MAX_ATTEMPTS))


def _finish(notification: Notification, *, status: str, error: str = "", message_id: str = "") -> None:
    """Record the end of a delivery (in the caller's transaction): audit, and the event when sent."""
    notification.status = status
    notification.updated_at = timezone.now()
    fields = ["status", "updated_at"]
    if error:
        notification.last_error = error
        fields.append("last_error")
    if status == NotificationStatus.SENT:
        notification.provider_message_id = message_id[:200]
        notification.sent_at = notification.updated_at
        fields += ["provider_message_id", "sent_at"]
    notification.save(update_fields=fields)
    record(
        airline=notification.airline,
        actor=SYSTEM_WORKER,
        action=f"notification.{status.lower()}",
        entity_urn=notification.urn,
        case_urn=notification.case.urn,
        reason=error if status == NotificationStatus.FAILED else "",
        after={
            "channel": notification.channel,
            "status": status,
            "attempts": notification.attempts,
            "providerMessageId": notification.provider_message_id,
        },
    )
    if status == NotificationStatus.SENT:
        events.publish_notification_dispatched(
            case_urn=notification.case.urn,
            airline=notification.airline,
            channel=notification.channel,
            masked_recipient=notification.masked_recipient,
        )


def _locked(notification_id) -> Notification | None:
    return (
        Notification.objects.select_for_update(of=("self",))
        .select_related("sub_case", "case")
        .filter(id=notification_id)
        .first()
    )


def notification_deliver(*, notification_urn: str) -> DeliveryOutcome:
    """One delivery attempt of a QUEUED notification (the task calls this; safe to call again).

    Anything not QUEUED is left alone, so a redelivered task sends nothing twice from our side;
    SMS and WhatsApp providers also dedupe by the notification URN. The attempt is counted before
    sending, so a worker that dies mid-send still uses up an attempt.
    """
    urn = parse_urn(notification_urn, "notification")
    with transaction.atomic():
        notification = _locked(urn.id)
        if notification is None:
            raise not_found_problem()
        if notification.status != NotificationStatus.QUEUED:
            return DeliveryOutcome(status=notification.status)
        if notification.attempts >= _max_attempts():
            _finish(notification, status=NotificationStatus.FAILED, error=notification.last_error or "Gave up.")
            return DeliveryOutcome(status=NotificationStatus.FAILED)
        notification.attempts += 1
        notification.updated_at = timezone.now()
        notification.save(update_fields=["attempts", "updated_at"])

    message_id, error, retry_in = "", "", None
    try:
        message_id = _SENDERS[notification.channel](notification)
    except ProviderUnavailable as exc:
        error, retry_in = _scrub(exc, notification), BREAKER_RETRY_SECONDS
    except (ProviderTransientError, DeliveryTransient) as exc:
        error = _scrub(exc, notification)
        retry_in = min(RETRY_BASE_SECONDS * 2 ** (notification.attempts - 1), RETRY_MAX_SECONDS)
    except (ProviderPermanentError, DeliveryPermanent) as exc:
        error = _scrub(exc, notification)

    with transaction.atomic():
        current = _locked(urn.id)
        if current is None or current.status != NotificationStatus.QUEUED:
            return DeliveryOutcome(status=current.status if current else NotificationStatus.FAILED)
        if not error:
            _finish(current, status=NotificationStatus.SENT, message_id=message_id)
            return DeliveryOutcome(status=NotificationStatus.SENT)
        if retry_in is not None and current.attempts < _max_attempts():
            current.last_error = error
            current.updated_at = timezone.now()
            current.save(update_fields=["last_error", "updated_at"])
            return DeliveryOutcome(status=NotificationStatus.QUEUED, retry_in=retry_in)
        _finish(current, status=NotificationStatus.FAILED, error=error)
        return DeliveryOutcome(status=NotificationStatus.FAILED)
