"""Django admin for supervisors: browse cases and sub-cases; change them only through actions that
call the same services as the API (so every change is audited and published).

Records are read-only here: editing a field directly would bypass the services, the audit log
and the events. The tenant wall is :class:`nexa.platform.admin.NexaModelAdmin`'s: a staff user sees and
acts on their active operator's airline only, as that operator; a superuser acts as a system principal
of the object's airline (docs/admin.md).
"""

from django.contrib import admin, messages
from django.db.models import QuerySet

from cases import services
from cases.models import SUBCASE_TRANSITIONS, Case, DemandWave, PassengerGroup, SubCase
from nexa.platform.admin import NexaModelAdmin, TenantScopedAdminMixin, admin_action_report, admin_principal
from nexa.platform.problems import Problem


class _ReadOnlyAdmin(NexaModelAdmin):
    read_only = True


def _transition_action(transition: str):
    def action(modeladmin, request, queryset: QuerySet[SubCase]):
        done, failed = 0, []
        for sub_case in queryset.order_by("created_at", "id"):
            principal = admin_principal(request, airline=sub_case.airline)
            try:
                services.subcase_transition(
                    principal=principal,
                    sub_case=sub_case,
                    transition=transition,
                    expected_version=sub_case.version,
                    reason="Django admin action",
                )
                done += 1
            except Problem as problem:
                failed.append(f"{sub_case.urn}: {problem.detail_text}")
        admin_action_report(
            modeladmin, request, done=done, success=f"{transition}: {done} sub-case(s) moved.", failed=failed
        )

    action.__name__ = f"transition_{transition}"
    action.short_description = f"Transition: {transition.replace('_', ' ')}"
    action.allowed_permissions = ("change",)
    return action


class SubCaseInline(TenantScopedAdminMixin, admin.TabularInline):
    model = SubCase
    fields = ("last_name", "first_name", "pnr", "tier", "status", "version", "group")
    readonly_fields = fields
    extra = 0
    show_change_link = True
    can_delete = False


@admin.register(Case)
class CaseAdmin(_ReadOnlyAdmin):
    list_display = ("flight_number", "flight_date", "airport", "airline", "cause", "status", "version", "created_at")
    list_filter = ("status", "airport", "airline", "cause", "flight_date")
    search_fields = ("flight_number", "subcases__pnr", "subcases__last_name")
    date_hierarchy = "flight_date"
    ordering = ("-created_at",)
    inlines = [SubCaseInline]
    actions = ["group_passengers_automatically"]

    @admin.action(description="Group passengers automatically (by PNR)", permissions=["change"])
    def group_passengers_automatically(self, request, queryset: QuerySet[Case]):
        for case in queryset:
            try:
                groups = services.passenger_groups_create(
                    principal=admin_principal(request, airline=case.airline), case=case
                )
            except Problem as problem:
                self.message_user(request, f"{case}: {problem.detail_text}", messages.ERROR)
            else:
                self.message_user(request, f"{case}: {len(groups)} group(s).", messages.SUCCESS)


@admin.register(SubCase)
class SubCaseAdmin(_ReadOnlyAdmin):
    list_display = ("last_name", "first_name", "pnr", "tier", "status", "version", "case", "airline")
    list_filter = ("status", "tier", "airline", "case__airport", "case__flight_date")
    search_fields = ("pnr", "last_name", "first_name", "case__flight_number")
    list_select_related = ("case",)
    ordering = ("-created_at",)
    actions = [_transition_action(transition) for transition in SUBCASE_TRANSITIONS]


@admin.register(PassengerGroup)
class PassengerGroupAdmin(_ReadOnlyAdmin):
    list_display = ("label", "case", "mixed_tier", "airline", "created_at")
    list_filter = ("mixed_tier", "airline")
    search_fields = ("label", "case__flight_number")


@admin.register(DemandWave)
class DemandWaveAdmin(_ReadOnlyAdmin):
    """Demand waves, read-only: requests, approvals and rejections go through the API (audited, published).
    ``status`` is the stored one: a pending wave past ``expires_at`` reads EXPIRED in the API before the
    row says so."""

    list_display = ("case", "kind", "status", "rooms", "people", "check_in", "nights", "expires_at", "airline")
    list_filter = ("status", "kind", "airline", "check_in")
    search_fields = ("case__flight_number", "requested_by", "resolved_by")
    list_select_related = ("case",)
    ordering = ("-created_at",)
