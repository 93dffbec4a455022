"""Django admin for supervisors: the notification log (read-only; resend through the API) and
WhatsApp opt-ins. The full recipient is not shown: the masked one is enough to tell rows apart.
Rows of the signed-in operator's airline only (:class:`NexaModelAdmin`)."""

from django.contrib import admin

from nexa.platform.admin import NexaModelAdmin
from notifications.models import Notification, WhatsAppOptIn


@admin.register(Notification)
class NotificationAdmin(NexaModelAdmin):
    list_display = ("urn", "airline", "channel", "template", "language", "masked_recipient", "status", "attempts")
    list_filter = ("airline", "status", "channel", "template", "language")
    search_fields = ("id", "provider_message_id", "idempotency_key")
    readonly_fields = (
        "urn",
        "airline",
        "case",
        "sub_case",
        "channel",
        "masked_recipient",
        "template",
        "language",
        "status",
        "reason",
        "provider_message_id",
        "attempts",
        "last_error",
        "idempotency_key",
        "requested_by",
        "created_at",
        "updated_at",
        "sent_at",
    )
    exclude = ("recipient", "context")
    ordering = ("-created_at",)
    list_select_related = ("case",)

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(WhatsAppOptIn)
class WhatsAppOptInAdmin(NexaModelAdmin):
    list_display = ("sub_case_id", "airline", "opted_in", "source", "recorded_by", "updated_at")
    list_filter = ("airline", "opted_in", "source")
    search_fields = ("sub_case__id",)
    readonly_fields = ("sub_case", "airline", "opted_in", "source", "recorded_by", "created_at", "updated_at")

    def has_change_permission(self, request, obj=None):
        return False
