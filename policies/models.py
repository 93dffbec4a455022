"""Tables owned by the policies domain: a policy (its current version, its status) and every
version it ever had (immutable rows, ``?version=`` reads them).

One ACTIVE policy per airline and scope is a partial unique index: absent scope fields are
stored as ``""`` (not NULL) so two "any airport" policies collide like two "MAD" ones.
"""

from django.db import models
from django.db.models.functions import Now
from django_fsm import FSMField, transition

from nexa.platform.urns import format_urn, new_id


class Tier(models.TextChoices):
    ECONOMY = "ECONOMY"
    PREMIUM_ECONOMY = "PREMIUM_ECONOMY"
    BUSINESS = "BUSINESS"
    FIRST = "FIRST"


class Cause(models.TextChoices):
    CANCELLATION = "CANCELLATION"
    DELAY = "DELAY"
    DIVERSION = "DIVERSION"
    MISSED_CONNECTION = "MISSED_CONNECTION"


class PolicyStatus(models.TextChoices):
    DRAFT = "DRAFT"
    ACTIVE = "ACTIVE"
    ARCHIVED = "ARCHIVED"


class PolicySource(models.TextChoices):
    MANUAL = "MANUAL"
    GENERATED = "GENERATED"


ONE_ACTIVE_PER_SCOPE = "policy_one_active_per_scope"


class Policy(models.Model):
    id = models.UUIDField(primary_key=True, default=new_id, editable=False)
    airline = models.CharField(max_length=3)
    name = models.CharField(max_length=200)
    scope_airport = models.CharField(max_length=3, blank=True, default="", help_text='IATA code; "" = any')
    scope_tier = models.CharField(max_length=20, blank=True, default="", choices=Tier.choices)
    scope_cause = models.CharField(max_length=20, blank=True, default="", choices=Cause.choices)
    rules = models.JSONField(default=dict)
    status = FSMField(max_length=10, choices=PolicyStatus.choices, default=PolicyStatus.DRAFT, protected=False)
    version = models.PositiveIntegerField(default=1)
    source = models.CharField(max_length=10, choices=PolicySource.choices, default=PolicySource.MANUAL)
    generation = models.JSONField(null=True, blank=True, help_text="per-rule value, confidence and source words")
    created_by = models.CharField(max_length=255, help_text="operator URN")
    activated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(db_default=Now())
    updated_at = models.DateTimeField(db_default=Now())

    class Meta:
        verbose_name_plural = "policies"
        constraints = [
            models.UniqueConstraint(
                fields=["airline", "scope_airport", "scope_tier", "scope_cause"],
                condition=models.Q(status="ACTIVE"),
                name=ONE_ACTIVE_PER_SCOPE,
            )
        ]
        indexes = [
            models.Index(fields=["airline", "status", "created_at", "id"], name="policy_status_keyset_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.name} v{self.version} ({self.status})"

    @property
    def urn(self) -> str:
        return format_urn("policy", self.id)

    @property
    def scope(self) -> dict[str, str]:
        """``{airport?, tier?, cause?}``: only the fields that narrow it."""
        fields = {"airport": self.scope_airport, "tier": self.scope_tier, "cause": self.scope_cause}
        return {key: value for key, value in fields.items() if value}

    # FSM: DRAFT → ACTIVE → ARCHIVED (ARCHITECTURE §5). The services persist with a version check.
    @transition(field=status, source=PolicyStatus.DRAFT, target=PolicyStatus.ACTIVE)
    def activate(self) -> None:
        pass

    @transition(field=status, source=PolicyStatus.ACTIVE, target=PolicyStatus.ARCHIVED)
    def archive(self) -> None:
        pass


class PolicyVersion(models.Model):
    """One immutable version of a policy's name and rules (rows are only ever inserted)."""

    policy = models.ForeignKey(Policy, on_delete=models.CASCADE, related_name="versions")
    airline = models.CharField(max_length=3)
    version = models.PositiveIntegerField()
    name = models.CharField(max_length=200)
    rules = models.JSONField(default=dict)
    created_by = models.CharField(max_length=255, help_text="operator URN")
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        constraints = [models.UniqueConstraint(fields=["policy", "version"], name="policy_version_unique")]

    def __str__(self) -> str:
        return f"{self.policy_id} v{self.version}"
