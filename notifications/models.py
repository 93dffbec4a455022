"""Tables owned by the notifications domain: the per-passenger notification log and WhatsApp opt-ins.

Cases and sub-cases belong to ``cases``, a layer above (docs/architecture.md): the foreign keys name
them as strings and this module imports nothing of that app."""

from django.db import models
from django.db.models.functions import Now

from nexa.platform.urns import format_urn, new_id


class Channel(models.TextChoices):
    EMAIL = "EMAIL"
    SMS = "SMS"
    WHATSAPP = "WHATSAPP"


class NotificationStatus(models.TextChoices):
    QUEUED = "QUEUED"  # written; the worker has not delivered it yet (or is retrying)
    SENT = "SENT"  # accepted by the SMTP server / provider
    FAILED = "FAILED"  # permanent refusal, or transient errors up to NEXA_NOTIFICATION_MAX_ATTEMPTS: resend by hand
    SKIPPED = "SKIPPED"  # never attempted: no contact on that channel, no WhatsApp opt-in, …; see ``reason``


class Notification(models.Model):
    """One message to one passenger on one channel.

    ``recipient`` is the full address (needed to send and to retry) and never leaves this table:
    the API, events and audit rows only ever see ``masked_recipient``.
    """

    id = models.UUIDField(primary_key=True, default=new_id, editable=False)
    airline = models.CharField(max_length=3)
    case = models.ForeignKey("cases.Case", on_delete=models.CASCADE, related_name="notifications")
    sub_case = models.ForeignKey("cases.SubCase", on_delete=models.CASCADE, related_name="notifications")
    channel = models.CharField(max_length=10, choices=Channel.choices)
    recipient = models.CharField(max_length=254, blank=True, default="")
    masked_recipient = models.CharField(max_length=254, blank=True, default="")
    template = models.CharField(max_length=64)
    language = models.CharField(max_length=8)
    context = models.JSONField(default=dict, blank=True, help_text="Template values (no contact details).")
    status = models.CharField(max_length=10, choices=NotificationStatus.choices, default=NotificationStatus.QUEUED)
    reason = models.CharField(max_length=200, blank=True, default="", help_text="Why it was SKIPPED.")
    provider_message_id = models.CharField(max_length=200, blank=True, default="")
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    idempotency_key = models.CharField(max_length=200)
    requested_by = models.CharField(max_length=200, help_text="Operator URN or urn:nexa:system:<name>.")
    created_at = models.DateTimeField(db_default=Now())
    updated_at = models.DateTimeField(db_default=Now())
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["airline", "idempotency_key"], name="notification_idempotency_key_unique")
        ]
        indexes = [
            models.Index(fields=["case", "created_at", "id"], name="notif_case_keyset_idx"),
            models.Index(fields=["sub_case", "template", "created_at"], name="notif_subcase_tpl_idx"),
            models.Index(fields=["airline", "status"], name="notif_airline_status_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.channel} {self.template} → {self.masked_recipient} ({self.status})"

    @property
    def urn(self) -> str:
        return format_urn("notification", self.id)


class WhatsAppOptIn(models.Model):
    """The passenger's consent to be messaged on WhatsApp (SubCase has no such field). One row per
    sub-case; the latest decision wins (``opted_in`` false records a withdrawal)."""

    sub_case = models.OneToOneField("cases.SubCase", on_delete=models.CASCADE, primary_key=True, related_name="+")
    airline = models.CharField(max_length=3)
    opted_in = models.BooleanField(default=True)
    source = models.CharField(max_length=100, help_text="Where consent was given, e.g. 'kiosk', 'airline-app'.")
    recorded_by = models.CharField(max_length=200)
    created_at = models.DateTimeField(db_default=Now())
    updated_at = models.DateTimeField(db_default=Now())

    def __str__(self) -> str:
        return f"WhatsApp opt-in {self.sub_case_id}: {self.opted_in}"
