"""Django admin for supervisors: browse policies and their versions; activate and archive only through
actions that call the same services as the API (audited, published). Activation and archiving need the
ADMIN role here too (spec 000), whoever the staff user is linked to."""

from django.contrib import admin
from django.db.models import QuerySet

from nexa.platform.admin import NexaModelAdmin, TenantScopedAdminMixin, admin_action_each
from nexa.platform.roles import Role
from policies import services
from policies.models import Policy, PolicyVersion


class PolicyVersionInline(TenantScopedAdminMixin, admin.TabularInline):
    model = PolicyVersion
    fields = ("version", "name", "rules", "created_by", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False


def _transition(modeladmin, request, queryset: QuerySet[Policy], *, service, label: str) -> None:
    admin_action_each(
        modeladmin,
        request,
        queryset.order_by("created_at", "id"),
        call=lambda principal, policy: service(principal=principal, policy=policy, reason="Django admin action"),
        min_role=Role.ADMIN,
        label=label,
        success=lambda done: f"{label}: {done} policy(ies).",
    )


@admin.register(Policy)
class PolicyAdmin(NexaModelAdmin):
    read_only = True
    list_display = ("name", "airline", "scope_airport", "scope_tier", "scope_cause", "status", "version", "source")
    list_filter = ("status", "airline", "scope_airport", "scope_tier", "scope_cause", "source")
    search_fields = ("name", "scope_airport", "created_by")
    ordering = ("-created_at",)
    inlines = [PolicyVersionInline]
    actions = ["activate", "deactivate"]

    @admin.action(description="Activate (archives the active policy of the same scope)", permissions=["change"])
    def activate(self, request, queryset: QuerySet[Policy]):
        _transition(self, request, queryset, service=services.policy_activate, label="Activated")

    @admin.action(description="Deactivate (archive)", permissions=["change"])
    def deactivate(self, request, queryset: QuerySet[Policy]):
        _transition(self, request, queryset, service=services.policy_deactivate, label="Archived")
