"""Tables owned by the audit domain: the append-only audit log (ARCHITECTURE §3.11).

Rows are written by :func:`audit.services.record` and never changed: the database refuses
UPDATE, DELETE and TRUNCATE on ``audit_auditentry`` (trigger in migration 0002), so no code
path — ORM, admin, raw SQL, a careless shell — can rewrite history.
"""

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models.functions import Now

from nexa.platform.urns import format_urn, new_id


class AuditEntry(models.Model):
    """One state change: who (actor URN) did what (action) to which entity, why, and the diff."""

    id = models.UUIDField(primary_key=True, default=new_id, editable=False)
    airline = models.CharField(max_length=3)
    actor = models.CharField(max_length=255, help_text="Operator URN, or urn:nexa:system:<name> for automation.")
    action = models.CharField(max_length=100, help_text='Dotted "<entity>.<verb>", e.g. "subcase.locked".')
    entity_urn = models.CharField(max_length=255)
    case_urn = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001 - NULL = not case-scoped
    reason = models.TextField(blank=True, default="")
    before = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    after = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    correlation_urn = models.CharField(max_length=100, blank=True, default="")
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        verbose_name = "audit entry"
        verbose_name_plural = "audit entries"
        # Every index leads with the tenant and ends with (created_at, id), so each listing
        # (all, per case, per entity, per actor) is a keyset scan in the paginator's order.
        indexes = [
            models.Index(fields=["airline", "created_at", "id"], name="audit_airline_created_idx"),
            models.Index(fields=["airline", "case_urn", "created_at", "id"], name="audit_airline_case_idx"),
            models.Index(fields=["airline", "entity_urn", "created_at", "id"], name="audit_airline_entity_idx"),
            models.Index(fields=["airline", "actor", "created_at", "id"], name="audit_airline_actor_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.entity_urn} by {self.actor}"

    @property
    def urn(self) -> str:
        return format_urn("audit", self.id)
