"""Wire shapes of the notification routes. The full recipient never appears here: only the masked one."""

from rest_framework import serializers

from nexa.platform.filters import ChoiceFilter, QueryFilters
from nexa.platform.openapi import urn_schema, with_schema
from notifications.models import Channel, NotificationStatus
from notifications.services import template_names


class NotificationSerializer(serializers.Serializer):
    urn = serializers.CharField(help_text="urn:nexa:notification:<uuid>")
    subCaseUrn = serializers.CharField(source="sub_case.urn")  # noqa: N815 - wire name
    channel = serializers.ChoiceField(choices=Channel.choices)
    maskedRecipient = serializers.CharField(  # noqa: N815
        source="masked_recipient", help_text='e.g. "+34******456" or "m***@example.com"; never the full address.'
    )
    template = serializers.CharField()
    language = serializers.CharField(help_text="The passenger's language the message was rendered in (en, es).")
    status = serializers.CharField(help_text="QUEUED, SENT, FAILED (resend by hand) or SKIPPED (see reason).")
    reason = serializers.CharField(help_text="Why it was SKIPPED; empty otherwise.")
    providerMessageId = serializers.CharField(source="provider_message_id")  # noqa: N815
    attempts = serializers.IntegerField()
    lastError = serializers.CharField(source="last_error")  # noqa: N815
    createdAt = serializers.DateTimeField(source="created_at")  # noqa: N815
    updatedAt = serializers.DateTimeField(source="updated_at")  # noqa: N815
    sentAt = serializers.DateTimeField(source="sent_at", allow_null=True)  # noqa: N815


class NotificationSendSerializer(serializers.Serializer):
    subCaseUrns = serializers.ListField(  # noqa: N815
        child=with_schema(serializers.CharField(max_length=100), urn_schema("subcase")),
        required=False,
        allow_empty=False,
        max_length=1000,
        help_text="Sub-cases to notify; omit for every passenger of the case.",
    )
    channel = serializers.ChoiceField(choices=Channel.choices)
    template = with_schema(
        serializers.CharField(
            max_length=64, help_text="compensation_summary, meal_voucher, hotel_ready or hotel_voucher."
        ),
        {"type": "string", "enum": template_names()},
    )


class NotificationQueuedSerializer(serializers.Serializer):
    urn = serializers.CharField()
    subCaseUrn = serializers.CharField(source="sub_case.urn")  # noqa: N815
    channel = serializers.CharField()
    status = serializers.CharField(help_text="QUEUED, or SKIPPED with a reason.")
    reason = serializers.CharField()
    maskedRecipient = serializers.CharField(source="masked_recipient")  # noqa: N815


class NotificationSendResultSerializer(serializers.Serializer):
    notificationUrns = serializers.ListField(child=serializers.CharField())  # noqa: N815
    notifications = NotificationQueuedSerializer(many=True)


class NotificationLogFilters(QueryFilters):
    status = ChoiceFilter(NotificationStatus.values)
