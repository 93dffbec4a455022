"""Read-only audit log for supervisors and finance auditors: browse, filter and search; never add,
change or delete. Rows of the signed-in operator's airline only (:class:`NexaModelAdmin`).

"Export as CSV" writes the selected rows with the API's export (:mod:`audit.export`: same columns, the
same spreadsheet-formula guard, the same row cap — above it the admin shows the 422's message instead)."""

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import StreamingHttpResponse

from audit.export import audit_export_prepare
from audit.models import AuditEntry
from nexa.platform.admin import NexaModelAdmin, admin_actor
from nexa.platform.problems import Problem


@admin.register(AuditEntry)
class AuditEntryAdmin(NexaModelAdmin):
    list_display = ("created_at", "airline", "action", "actor", "entity_urn", "case_urn", "reason")
    list_filter = ("airline", "action", "created_at")
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

    actions = ["export_csv"]

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description="Export selected as CSV (the API's export)", permissions=["view"])
    def export_csv(self, request, queryset: QuerySet[AuditEntry]):
        try:
            export = audit_export_prepare(queryset)
        except Problem as problem:
            self.message_user(request, problem.detail_text, messages.ERROR)
            return None
        actor = admin_actor(request)
        airline = actor.airline if actor is not None and not request.user.is_superuser else "all"
        response = StreamingHttpResponse(export.chunks(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{export.filename(airline)}"'
        response["Cache-Control"] = "no-store"
        return response
