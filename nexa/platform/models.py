"""Tables of the cross-cutting contracts: tenant settings, idempotency records, the outbox."""

from django.db import models
from django.db.models.functions import Now

from nexa.platform.urns import new_id


class TenantSettings(models.Model):
    """Per-airline settings (ARCHITECTURE §11, adopted from spec 003)."""

    airline = models.CharField(max_length=3, primary_key=True)
    idempotency_key_required = models.BooleanField(
        default=False, help_text="Refuse POSTs without an Idempotency-Key header (400)."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "tenant settings"

    def __str__(self) -> str:
        return f"settings of {self.airline}"


class IdempotencyRecord(models.Model):
    """One claimed ``Idempotency-Key`` and, once finished, the response to replay (§3.6)."""

    class State(models.TextChoices):
        IN_FLIGHT = "IN_FLIGHT"
        COMPLETED = "COMPLETED"

    airline = models.CharField(max_length=3)
    operator_urn = models.CharField(max_length=255)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=1024)
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    state = models.CharField(max_length=12, choices=State.choices, default=State.IN_FLIGHT)
    status_code = models.PositiveSmallIntegerField(null=True)
    response_headers = models.JSONField(default=dict)
    response_body = models.BinaryField(null=True)
    created_at = models.DateTimeField(db_default=Now())
    completed_at = models.DateTimeField(null=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["airline", "operator_urn", "method", "path", "key"], name="idempotency_key_scope_unique"
            )
        ]
        indexes = [models.Index(fields=["created_at"], name="idempotency_created_idx")]

    def __str__(self) -> str:
        return f"{self.method} {self.path} key={self.key} ({self.state})"


class OutboxEvent(models.Model):
    """An event written in the same transaction as the change it announces (§3.10).

    ``sequence`` is the stream offset clients see; the relay assigns it when it claims the row,
    so offsets follow delivery order rather than id order (ids are not commit-ordered).
    """

    id = models.UUIDField(primary_key=True, default=new_id, editable=False)
    event = models.CharField(max_length=100)
    payload = models.JSONField()
    rooms = models.JSONField(default=list)
    airline = models.CharField(max_length=3, blank=True, default="")
    correlation_urn = models.CharField(max_length=100, blank=True, default="")
    created_at = models.DateTimeField(db_default=Now())
    sequence = models.BigIntegerField(null=True, unique=True)
    dispatched_at = models.DateTimeField(null=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")

    class Meta:
        indexes = [
            models.Index(
                fields=["created_at"], name="outbox_undispatched_idx", condition=models.Q(dispatched_at__isnull=True)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event} #{self.sequence or '-'}"
