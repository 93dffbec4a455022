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
"""

from __future__ import annotations

import json
import smtplib
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import connection, transaction
from django.template.loader import render_to_string
from django.utils import timezone

from audit.services import SYSTEM_WORKER, record
from nexa.platform.auth import Principal
from nexa.platform.problems import Problem, conflict_problem, not_found_problem, validation_problem
from nexa.platform.providers import ProviderPermanentError, ProviderTransientError, ProviderUnavailable
from nexa.platform.throttling import SlidingWindowBudget
from nexa.platform.urns import InvalidUrn, new_id, parse_urn
from notifications import events
from notifications.masking import mask_recipient
from notifications.models import Channel, Notification, NotificationStatus, WhatsAppOptIn
from notifications.selectors import (
    Case,
    SubCase,
    case_manifest,
    last_context_for,
    subcase_get,
    whatsapp_opted_in,
)

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


def _saga_channels(*, sub_case: SubCase, spec: TemplateSpec) -> list[str]:
    """Email when there is an address; WhatsApp instead of SMS when the passenger opted in and the
    template is approved there, else SMS when there is a phone. No contact at all still writes one
    (SKIPPED) email row, so the log shows the passenger was not reached."""
    channels = []
    if sub_case.email.strip():
        channels.append(Channel.EMAIL)
    if sub_case.phone.strip():
        whatsapp_ok = not _skip_reason(sub_case=sub_case, channel=Channel.WHATSAPP, spec=spec)
        channels.append(Channel.WHATSAPP if whatsapp_ok else Channel.SMS)
    return channels or [Channel.EMAIL]


def _summary(notification: Notification) -> dict[str, Any]:
    return {
        "urn": notification.urn,
        "channel": notification.channel,
        "status": notification.status,
        "reason": notification.reason,
        "maskedRecipient": notification.masked_recipient,
    }


def notification_send_for_subcase(
    *, principal_or_system: Principal, sub_case_urn: str, template: str, context: dict, idempotency_key: str
) -> dict:
    """Notify one passenger (the compensation saga's last step) on every channel they can be reached on.

    Idempotent by ``idempotency_key`` (e.g. the saga step URN): a second call returns the same
    notifications and sends nothing again. Each channel's row gets the key ``<key>:<CHANNEL>``.
    Returns ``{idempotencyKey, subCaseUrn, notifications: [{urn, channel, status, reason,
    maskedRecipient}]}``; delivery happens after commit on the ``notifications`` queue, so a failed
    notification never undoes the caller's work. An unknown template is a 400 problem.
    """
    if not isinstance(idempotency_key, str) or not idempotency_key.strip() or len(idempotency_key) > 180:
        raise ValueError("idempotency_key must be a non-empty string of at most 180 characters")
    spec = template_spec(template)
    values = _validated_context(context)
    with transaction.atomic():
        sub_case = subcase_get(principal=principal_or_system, sub_case_urn=sub_case_urn)
        # Concurrent calls with one key queue here, so the second sees the first's rows.
        _lock_key(sub_case.airline, idempotency_key)
        previous = list(
            Notification.objects.filter(
                airline=sub_case.airline, idempotency_key__startswith=f"{idempotency_key}:"
            ).order_by("created_at", "id")
        )
        if previous:
            rows = previous
        else:
            rows = [
                _notification_create(
                    actor=principal_or_system,
                    sub_case=sub_case,
                    channel=channel,
                    spec=spec,
                    context=values,
                    idempotency_key=f"{idempotency_key}:{channel}",
                    audit_reason="",
                )[0]
                for channel in _saga_channels(sub_case=sub_case, spec=spec)
            ]
    return {
        "idempotencyKey": idempotency_key,
        "subCaseUrn": sub_case.urn,
        "notifications": [_summary(row) for row in rows],
    }


def _manual_sub_cases(*, principal: Principal, case: Case, sub_case_urns: list | None) -> list[SubCase]:
    if sub_case_urns is None:
        return list(case_manifest(principal=principal, case=case).order_by("created_at", "id"))
    errors, ids = [], []
    for index, value in enumerate(sub_case_urns):
        try:
            ids.append(parse_urn(value, "subcase").id)
        except InvalidUrn as error:
            errors.append({"field": f"subCaseUrns[{index}]", "message": error.message})
    if errors:
        raise validation_problem(errors)
    found = {sc.id: sc for sc in case_manifest(principal=principal, case=case).filter(id__in=ids)}
    errors = [
        {"field": f"subCaseUrns[{index}]", "message": "Not a sub-case of this case."}
        for index, id_ in enumerate(ids)
        if id_ not in found
    ]
    if errors:
        raise validation_problem(errors)
    return [found[id_] for id_ in dict.fromkeys(ids)]


def notifications_send_manual(
    *, principal: Principal, case: Case, sub_case_urns: list | None, channel: str, template: str
) -> list[Notification]:
    """Send (or resend) ``template`` on ``channel`` to the chosen sub-cases of ``case`` (None: all).

    Each passenger gets a new notification (a resend is a new message), rendered with the values the
    last notification of that template to them carried. Passengers without the contact, opt-in or
    approved template are SKIPPED with a reason. Unknown template or channel, or a sub-case not in
    the case, are 400 problems.

    Every message may cost money (SMS), so a send reaches at most
    ``NEXA_NOTIFICATION_MANUAL_MAX_RECIPIENTS`` passengers (more: 422 naming ``subCaseUrns``) and a case
    gets at most ``NEXA_NOTIFICATION_MANUAL_SENDS_PER_HOUR`` manual sends in any sliding hour (more: 429
    ``notification-send-limit`` with ``Retry-After``). Refused sends do not count.
    """
    spec = template_spec(template)
    if channel not in Channel.values:
        raise validation_problem([{"field": "channel", "message": f"One of {', '.join(Channel.values)}."}])
    with transaction.atomic():
        if sub_case_urns is None:  # the whole manifest: count it before loading it
            _manual_recipients_check(count=case_manifest(principal=principal, case=case).count(), named=False)
        sub_cases = _manual_sub_cases(principal=principal, case=case, sub_case_urns=sub_case_urns)
        _manual_recipients_check(count=len(sub_cases), named=sub_case_urns is not None)
        budget, token = _manual_send_budget(case), new_id().hex
        _manual_send_take(budget, token)
        try:
            created = []
            for sub_case in sub_cases:
                sub_case.case = case
                key = f"manual:{new_id()}"
                notification, _ = _notification_create(
                    actor=principal,
                    sub_case=sub_case,
                    channel=channel,
                    spec=spec,
                    context=last_context_for(sub_case=sub_case, template=spec.name),
                    idempotency_key=key,
                    audit_reason="Manual send",
                )
                created.append(notification)
        except BaseException:
            budget.give_back(token)  # nothing was sent: the send does not count
            raise
    return created


def _manual_recipients_check(*, count: int, named: bool) -> None:
    """At most ``NEXA_NOTIFICATION_MANUAL_MAX_RECIPIENTS`` passengers per manual send (422)."""
    cap = settings.NEXA_NOTIFICATION_MANUAL_MAX_RECIPIENTS
    if count <= cap:
        return
    message = (
        f"At most {cap} passengers per send; {count} named."
        if named
        else f"At most {cap} passengers per send; the case has {count}: name them in batches in subCaseUrns."
    )
    raise validation_problem([{"field": "subCaseUrns", "message": message}], status=422)


def _manual_send_budget(case: Case) -> SlidingWindowBudget:
    return SlidingWindowBudget(
        f"nexa:notifications:manual-sends:{case.airline}:{case.pk}",
        limit=settings.NEXA_NOTIFICATION_MANUAL_SENDS_PER_HOUR,
        window_seconds=MANUAL_SEND_WINDOW_SECONDS,
    )


def _manual_send_take(budget: SlidingWindowBudget, token: str) -> None:
    """One of the case's ``NEXA_NOTIFICATION_MANUAL_SENDS_PER_HOUR`` manual sends, or a 429 problem
    with ``Retry-After`` (seconds until the oldest send of the last hour leaves the window)."""
    taken, retry_after = budget.take(token)
    if taken:
        return
    limit = settings.NEXA_NOTIFICATION_MANUAL_SENDS_PER_HOUR
    raise Problem(
        status=429,
        slug="notification-send-limit",
        title="Too many manual sends for this case",
        detail=f"At most {limit} manual sends per case per hour; retry in {retry_after} s.",
        headers={"Retry-After": str(retry_after)},
    )


def whatsapp_opt_in_record(*, principal: Principal, sub_case_urn: str, opted_in: bool, source: str) -> WhatsAppOptIn:
    """Record the passenger's WhatsApp consent (or its withdrawal); audited, no personal data."""
    if not source or len(source) > 100:
        raise validation_problem([{"field": "source", "message": "Give 1 to 100 characters."}])
    with transaction.atomic():
        sub_case = subcase_get(principal=principal, sub_case_urn=sub_case_urn)
        current = WhatsAppOptIn.objects.select_for_update().filter(sub_case_id=sub_case.pk).first()
        before = {"optedIn": current.opted_in} if current else None
        opt_in, _ = WhatsAppOptIn.objects.update_or_create(
            sub_case_id=sub_case.pk,
            defaults={
                "airline": sub_case.airline,
                "opted_in": opted_in,
                "source": source,
                "recorded_by": principal.operator_urn,
                "updated_at": timezone.now(),
            },
        )
        record(
            principal=principal,
            action="subcase.whatsapp-opt-in-recorded",
            entity_urn=sub_case.urn,
            case_urn=sub_case.case.urn,
            before=before,
            after={"optedIn": opted_in, "source": source},
        )
    return opt_in


def notification_recipients_purge(*, case: Case) -> int:
    """Forget the full addresses of the case's notifications (for the passenger-data purge); the masked
    ones stay in the log. Queued notifications can no longer be sent and become FAILED. Returns the
    number of rows changed."""
    now = timezone.now()
    with transaction.atomic():
        rows = Notification.objects.filter(case_id=case.pk).exclude(recipient="")
        rows.filter(status=NotificationStatus.QUEUED).update(
            status=NotificationStatus.FAILED, last_error="The passenger's personal data was purged.", updated_at=now
        )
        return rows.update(recipient="", updated_at=now)


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
    return {**notification.context, **base}


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
    from notifications.providers import sms_client

    rendered = render_notification(notification)
    answer = sms_client().send(idempotency_key=notification.urn, to=notification.recipient, body=rendered["text"])
    return str(answer.get("messageId") or "")


def _send_whatsapp(notification: Notification) -> str:
    from notifications.providers import whatsapp_client

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
