"""Tables of the cross-cutting contracts: tenant settings, idempotency records, the outbox."""

from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models.functions import Now

from nexa.platform.urns import new_id


class TenantSettings(models.Model):
    """Per-airline settings (ARCHITECTURE §11, adopted from spec 003)."""

    airline = models.CharField(max_length=3, primary_key=True)
    idempotency_key_required = models.BooleanField(
        default=False, help_text="Refuse POSTs without an Idempotency-Key header (400)."
    )
    # Compensation limits (docs/compensation.md "Limits"): empty fields take the environment's default.
    settlement_currency = models.CharField(
        max_length=3,
        blank=True,
        default="",
        help_text="ISO 4217 code the airline settles in; empty: NEXA_SETTLEMENT_CURRENCY.",
    )
    meal_limit = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="MEAL granted per passenger per disruption (every run summed), settlement currency; "
        "empty: NEXA_COMPENSATION_LIMIT_MEAL.",
    )
    cash_limit = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="CASH granted per passenger per disruption (every run summed), settlement currency; "
        "empty: NEXA_COMPENSATION_LIMIT_CASH.",
    )
    transport_limit = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="TRANSPORT fare caps per passenger per disruption (every run summed), settlement currency; "
        "empty: NEXA_COMPENSATION_LIMIT_TRANSPORT.",
    )
    currency_rates = models.JSONField(
        default=dict,
        blank=True,
        help_text='Other currencies the airline allows and their rate, e.g. {"USD": "0.92"} (one USD is worth '
        "0.92 of the settlement currency); empty: NEXA_COMPENSATION_CURRENCY_RATES.",
    )
    demand_approval_ttl_minutes = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="A demand wave not approved within this many minutes reads as EXPIRED; "
        "empty: NEXA_DEMAND_APPROVAL_TTL_MINUTES.",
    )
    # Manual review (docs/review.md): the SLA per priority, and where a breach pages the on-call.
    sla_high_minutes = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="A HIGH review item breaches its SLA after this many minutes; empty: NEXA_REVIEW_SLA_HIGH_MINUTES.",
    )
    sla_medium_minutes = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="A MEDIUM review item breaches its SLA after this many minutes; "
        "empty: NEXA_REVIEW_SLA_MEDIUM_MINUTES.",
    )
    sla_low_minutes = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="A LOW review item breaches its SLA after this many minutes; empty: NEXA_REVIEW_SLA_LOW_MINUTES.",
    )
    alert_webhook_url = models.URLField(
        max_length=500,
        blank=True,
        default="",
        help_text="The on-call alerting webhook an SLA breach is POSTed to (empty: nobody is paged).",
    )
    alert_webhook_secret = models.CharField(
        max_length=255,
        blank=True,
        default="",
        help_text="Shared secret of the HMAC-SHA256 signature over timestamp + body of each page.",
    )
    agent_enabled = models.BooleanField(
        default=False, help_text="Run the exception agent on every new review item of the airline."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "tenant settings"

    def __str__(self) -> str:
        return f"settings of {self.airline}"

    def clean(self) -> None:
        """Admin validation: ISO-shaped codes, a rate table of positive decimals."""

        errors = {}
        code = self.settlement_currency
        if code and not (len(code) == 3 and code.isalpha() and code.isupper()):
            errors["settlement_currency"] = "an ISO 4217 code such as EUR"
        rates = self.currency_rates
        if not isinstance(rates, dict):
            errors["currency_rates"] = 'a JSON object such as {"USD": "0.92"}'
        else:
            for currency, rate in rates.items():
                try:
                    valid = len(currency) == 3 and currency.isupper() and Decimal(str(rate)) > 0
                except (InvalidOperation, TypeError):
                    valid = False
                if not valid:
                    errors["currency_rates"] = f"{currency}: {rate!r} is not a positive rate for an ISO 4217 code"
                    break
        if errors:
            raise ValidationError(errors)


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
