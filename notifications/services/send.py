"""Notifying a passenger of a sub-case on their channels (the compensation saga's step)."""

from __future__ import annotations

from django.db import transaction

from nexa.platform.auth import Principal
from notifications.models import Channel, Notification
from notifications.selectors import SubCase, subcase_get
from notifications.services._common import (
    TemplateSpec,
    _lock_key,
    _notification_create,
    _skip_reason,
    _summary,
    _validated_context,
    template_spec,
)


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
