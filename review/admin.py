"""Django admin for review items: browse and search; every change goes through the API's services
(claim, resolve, assign, escalate), so items are read-only here (audit and events stay whole)."""

from django.contrib import admin

from nexa.platform.admin import NexaModelAdmin, TenantScopedAdminMixin
from review.models import PolicyRelaxation, ReviewItem, ReviewPage


class ReviewPageInline(TenantScopedAdminMixin, admin.TabularInline):
    """Every page of the on-call for the item, with its delivery log."""

    model = ReviewPage
    fields = ("trigger", "priority_before", "priority_after", "status", "attempts", "created_at", "delivered_at", "log")
    readonly_fields = fields
    extra = 0
    can_delete = False


class PolicyRelaxationInline(TenantScopedAdminMixin, admin.TabularInline):
    """The policy relaxations the item's relax action recorded for its case."""

    model = PolicyRelaxation
    fields = ("rule", "value", "reason", "created_by", "agent_action_urn", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(ReviewItem)
class ReviewItemAdmin(NexaModelAdmin):
    read_only = True
    list_display = ["id", "airline", "category", "priority", "state", "assigned_to", "sla_due_at", "created_at"]
    list_filter = ["state", "category", "priority", "airline"]
    search_fields = ["id", "assigned_to", "source_event_urn", "saga_urn", "allocation_urn", "demand_urn"]
    ordering = ["sla_due_at", "id"]
    date_hierarchy = "created_at"
    list_select_related = ["case"]
    inlines = [ReviewPageInline, PolicyRelaxationInline]
