"""Shared parts of the notifications commands: constants, the templates (which messages exist, in which
languages and channels) and the steps every queueing use case takes (validate, skip or create one row,
audit, publish). Private to :mod:`notifications.services` (its public names are re-exported there)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.db import connection

from audit.services import record
from nexa.platform.auth import Principal
from nexa.platform.problems import conflict_problem, validation_problem
from nexa.platform.urns import new_id
from notifications import events
from notifications.masking import mask_recipient
from notifications.models import Channel, Notification, NotificationStatus
from notifications.selectors import SubCase, whatsapp_opted_in

SUPPORTED_LANGUAGES = ("en", "es")
FALLBACK_LANGUAGE = "en"
MAX_CONTEXT_BYTES = 8_000
# Backoff between delivery attempts: 1 s, 2 s, 4 s … capped (well below the broker's visibility timeout).
RETRY_BASE_SECONDS = 1.0
RETRY_MAX_SECONDS = 60.0
# While a provider's circuit is open, try again after the breaker's Retry-After.
BREAKER_RETRY_SECONDS = 30.0
_MAX_ERROR_CHARS = 500
# Manual sends per case are counted over a sliding hour (NEXA_NOTIFICATION_MANUAL_SENDS_PER_HOUR).
MANUAL_SEND_WINDOW_SECONDS = 3600


@dataclass(frozen=True, slots=True)
class TemplateSpec:
    """A message the platform can send. Its Django templates live in
    ``notifications/templates/notifications/<language>/<name>/`` (``subject.txt``, ``body.txt``,
    ``body.html`` for email; ``sms.txt`` for SMS). ``whatsapp_template`` names the WhatsApp template
    approved for it (None: not approved, so never sent on WhatsApp); ``whatsapp_parameters`` are the
    context keys filling its placeholders, in order."""

    name: str
    description: str
    whatsapp_template: str | None = None
    whatsapp_parameters: tuple[str, ...] = ()


TEMPLATES: dict[str, TemplateSpec] = {
    spec.name: spec
    for spec in (
        TemplateSpec(
            name="compensation_summary",
            description="What the passenger receives (meals, cash, transport) after the compensation saga.",
            whatsapp_template="compensation_issued",
            whatsapp_parameters=("firstName", "flightNumber"),
        ),
        TemplateSpec(
            name="hotel_ready",
            description="The hotel room is booked: where to go and the confirmation code.",
            whatsapp_template="hotel_voucher",
            whatsapp_parameters=("firstName", "hotelName", "confirmationCode"),
        ),
        # The booking saga's NOTIFY step and manual reservations (issue 12): the voucher by email, a link by
        # SMS (no WhatsApp template approved for it yet).
        TemplateSpec(
            name="hotel_voucher",
            description="The hotel voucher: hotel, check-in, nights and the printable voucher's link.",
        ),
        # No WhatsApp template was approved for meal vouchers: email and SMS only.
        TemplateSpec(name="meal_voucher", description="A meal voucher: amount, code and expiry."),
    )
}


def template_names() -> list[str]:
    return sorted(TEMPLATES)


def template_spec(name: str) -> TemplateSpec:
    """The template, or a 400 problem naming the known ones."""
    spec = TEMPLATES.get(name) if isinstance(name, str) else None
    if spec is None:
        raise validation_problem(
            [{"field": "template", "message": f"Unknown template; use one of: {', '.join(template_names())}."}]
        )
    return spec


def language_for(sub_case: SubCase) -> str:
    """The passenger's language if we have templates in it ("es-ES" → "es"), else English."""
    primary = (sub_case.language or "").strip().lower().replace("_", "-").split("-")[0]
    return primary if primary in SUPPORTED_LANGUAGES else FALLBACK_LANGUAGE


# --- queueing --------------------------------------------------------------------------------


def _recipient_for(sub_case: SubCase, channel: str) -> str:
    return sub_case.email.strip() if channel == Channel.EMAIL else sub_case.phone.strip()


def _skip_reason(*, sub_case: SubCase, channel: str, spec: TemplateSpec) -> str:
    """Why this passenger cannot get ``spec`` on ``channel`` ("" when they can)."""
    if sub_case.anonymised_at is not None:
        return "The passenger's personal data was purged."
    if channel == Channel.EMAIL and not sub_case.email.strip():
        return "No email address on file."
    if channel in (Channel.SMS, Channel.WHATSAPP) and not sub_case.phone.strip():
        return "No phone number on file."
    if channel == Channel.WHATSAPP:
        if not whatsapp_opted_in(sub_case=sub_case):
            return "The passenger has not opted in to WhatsApp."
        if spec.whatsapp_template is None:
            return f"Template {spec.name!r} has no approved WhatsApp version."
    return ""


def _validated_context(context: Any) -> dict[str, Any]:
    if context is None:
        return {}
    if not isinstance(context, dict):
        raise validation_problem([{"field": "context", "message": "Must be a JSON object."}])
    try:
        encoded = json.dumps(context, allow_nan=False)
    except (TypeError, ValueError):
        raise validation_problem([{"field": "context", "message": "Must be plain JSON."}]) from None
    if len(encoded) > MAX_CONTEXT_BYTES:
        raise validation_problem([{"field": "context", "message": f"At most {MAX_CONTEXT_BYTES} bytes."}])
    return json.loads(encoded)


def _audit_created(*, actor: Principal, notification: Notification, reason: str) -> None:
    record(
        principal=actor,
        action=f"notification.{'skipped' if notification.status == NotificationStatus.SKIPPED else 'queued'}",
        entity_urn=notification.urn,
        case_urn=notification.case.urn,
        reason=reason,
        after={
            "subCaseUrn": notification.sub_case.urn,
            "channel": notification.channel,
            "template": notification.template,
            "language": notification.language,
            "status": notification.status,
            "skipReason": notification.reason,
        },
    )


def _notification_create(
    *,
    actor: Principal,
    sub_case: SubCase,
    channel: str,
    spec: TemplateSpec,
    context: dict[str, Any],
    idempotency_key: str,
    audit_reason: str,
) -> tuple[Notification, bool]:
    """Insert (or find, by idempotency key) one row, its audit row and its queued event; in the caller's
    transaction, which holds the key's advisory lock or uses a fresh key. Returns (row, created)."""
    existing = Notification.objects.filter(airline=sub_case.airline, idempotency_key=idempotency_key).first()
    if existing is not None:
        if (existing.sub_case_id, existing.channel, existing.template) != (sub_case.pk, channel, spec.name):
            raise conflict_problem(
                slug="idempotency-key-reused",
                title="Idempotency key reused",
                detail="This idempotency key was used for another notification.",
            )
        return existing, False
    skip = _skip_reason(sub_case=sub_case, channel=channel, spec=spec)
    recipient = "" if sub_case.anonymised_at is not None else _recipient_for(sub_case, channel)
    notification = Notification(
        id=new_id(),
        airline=sub_case.airline,
        case_id=sub_case.case_id,
        sub_case=sub_case,
        channel=channel,
        recipient=recipient,
        masked_recipient=mask_recipient(channel, recipient),
        template=spec.name,
        language=language_for(sub_case),
        context=context,
        status=NotificationStatus.SKIPPED if skip else NotificationStatus.QUEUED,
        reason=skip,
        idempotency_key=idempotency_key,
        requested_by=actor.operator_urn,
    )
    notification.save(force_insert=True)
    notification.case = sub_case.case
    _audit_created(actor=actor, notification=notification, reason=audit_reason)
    if notification.status == NotificationStatus.QUEUED:
        events.publish_notification_queued(notification_urn=notification.urn, airline=notification.airline)
    return notification, True


def _lock_key(airline: str, key: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"notification:{airline}:{key}"])


def _summary(notification: Notification) -> dict[str, Any]:
    return {
        "urn": notification.urn,
        "channel": notification.channel,
        "status": notification.status,
        "reason": notification.reason,
        "maskedRecipient": notification.masked_recipient,
    }
