"""Read-only audit log for supervisors and finance auditors: browse, filter and search; never add,
change or delete. Rows of the signed-in operator's airline only (:class:`NexaModelAdmin`)."""

from django.contrib import admin

from audit.models import AuditEntry
from nexa.platform.admin import NexaModelAdmin


@admin.register(AuditEntry)
class AuditEntryAdmin(NexaModelAdmin):
    list_display = ("created_at", "airline", "action", "actor", "entity_urn", "case_urn", "reason")
    list_filter = ("airline", "action")
    search_fields = ("entity_urn", "case_urn", "actor")
    ordering = ("-created_at", "-id")
    readonly_fields = (
        "id",
        "airline",
        "actor",
        "action",
        "entity_urn",
        "case_urn",
        "reason",
        "before",
        "after",
        "correlation_urn",
        "created_at",
    )
    # The log grows without bound: skip the unfiltered COUNT(*) on every page.
    show_full_result_count = False
    list_per_page = 50

    def get_search_results(self, request, queryset, search_term):
        # A URN is looked up exactly (indexed, case-sensitive); anything else falls back to
        # Django's substring search over the URN columns.
        term = search_term.strip()
        if term.startswith("urn:") and " " not in term:
            matches = (
                queryset.filter(entity_urn=term)
                | queryset.filter(case_urn=term)
                | queryset.filter(actor=term)
                | queryset.filter(correlation_urn=term)
            )
            return matches, False
        return super().get_search_results(request, queryset, search_term)

    def has_change_permission(self, request, obj=None) -> bool:
        return False
