"""Wire shapes of the audit routes."""

from rest_framework import serializers

from nexa.platform.filters import InstantRangeFilters, TextFilter

URN_MAX_LENGTH = 255
ACTION_MAX_LENGTH = 100


class AuditEntrySerializer(serializers.Serializer):
    urn = serializers.CharField(help_text="urn:nexa:audit:<uuid>")
    actor = serializers.CharField(help_text="Operator URN, or urn:nexa:system:<name> for automation.")
    action = serializers.CharField(help_text='Dotted "<entity>.<verb>", e.g. "subcase.locked".')
    entityUrn = serializers.CharField(source="entity_urn")  # noqa: N815 - wire name
    caseUrn = serializers.CharField(source="case_urn", allow_null=True)  # noqa: N815
    reason = serializers.CharField(allow_blank=True)
    before = serializers.JSONField(allow_null=True, help_text="The changed fields before the change.")
    after = serializers.JSONField(allow_null=True, help_text="The changed fields after the change.")
    correlationUrn = serializers.CharField(source="correlation_urn", allow_blank=True)  # noqa: N815
    createdAt = serializers.DateTimeField(source="created_at")  # noqa: N815


class AuditLogFilters(InstantRangeFilters):
    """``GET /v1/audit`` and its CSV export: ``from``/``to`` bound ``createdAt``, half-open ``[from, to)``."""

    actor = TextFilter(max_length=URN_MAX_LENGTH)
    action = TextFilter(max_length=ACTION_MAX_LENGTH)
