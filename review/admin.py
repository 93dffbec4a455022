"""Django admin for review items: browse, filter and search; every change goes through the API's services
(claim, escalate, resolve as actions), so items are read-only here (audit and events stay whole).

The actions run as the admin user's operator principal (:func:`nexa.platform.admin.admin_principal`) and,
like the API's review routes, need OPS_SUPERVISOR or ADMIN; a refusal (claimed by someone else, already
resolved, not the claimer, …) is an admin error message naming the item, never a 500."""

from collections.abc import Callable

from django.contrib import admin
from django.db.models import QuerySet

from nexa.platform.admin import NexaModelAdmin, TenantScopedAdminMixin, admin_action_each
from nexa.platform.roles import Role
from nexa.platform.urns import InvalidUrn, parse_urn
from review import services
from review.models import PolicyRelaxation, ReviewItem, ReviewPage, ReviewResolution

ADMIN_REASON = "Django admin action"


def _act(modeladmin, request, queryset: QuerySet[ReviewItem], *, label: str, call: Callable[..., object]) -> None:
    # The API's review routes are OPS_SUPERVISOR+; the admin asks the same of whoever is linked.
    admin_action_each(
        modeladmin,
        request,
        queryset.order_by("sla_due_at", "id"),
        call=lambda principal, item: call(principal=principal, review_urn=item.urn),
        min_role=Role.OPS_SUPERVISOR,
        label=label,
        success=lambda done: f"{label}: {done} review item(s).",
    )


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
    list_filter = ["state", "category", "priority", "airline", "case__airport"]
    search_fields = [
        "id",
        "assigned_to",
        "source_event_urn",
        "saga_urn",
        "allocation_urn",
        "demand_urn",
        "case__flight_number",
    ]
    ordering = ["sla_due_at", "id"]
    date_hierarchy = "created_at"
    list_select_related = ["case"]
    inlines = [ReviewPageInline, PolicyRelaxationInline]
    actions = ["claim", "escalate", "resolve_no_action", "resolve_cancelled"]

    def get_search_results(self, request, queryset, search_term):
        # An item's URN (urn:nexa:review:<uuid>) finds it exactly; anything else is Django's search.
        term = search_term.strip()
        if term.startswith("urn:nexa:review:"):
            try:
                urn = parse_urn(term, "review")
            except InvalidUrn:
                return queryset.none(), False
            return queryset.filter(id=urn.id), False
        return super().get_search_results(request, queryset, search_term)

    @admin.action(description="Claim (for the claim lease)", permissions=["change"])
    def claim(self, request, queryset: QuerySet[ReviewItem]):
        _act(self, request, queryset, label="Claimed", call=services.review_item_claim)

    @admin.action(description="Escalate (one priority up, pages the on-call)", permissions=["change"])
    def escalate(self, request, queryset: QuerySet[ReviewItem]):
        def call(*, principal, review_urn):
            return services.review_item_escalate(principal=principal, review_urn=review_urn, reason=ADMIN_REASON)

        _act(self, request, queryset, label="Escalated", call=call)

    def _resolve(self, request, queryset: QuerySet[ReviewItem], resolution: str) -> None:
        def call(*, principal, review_urn):
            return services.review_item_resolve(
                principal=principal, review_urn=review_urn, resolution=resolution, reason=ADMIN_REASON
            )

        _act(self, request, queryset, label=f"Resolved {resolution}", call=call)

    @admin.action(description="Resolve: no action (claimer only)", permissions=["change"])
    def resolve_no_action(self, request, queryset: QuerySet[ReviewItem]):
        self._resolve(request, queryset, ReviewResolution.NO_ACTION)

    @admin.action(description="Resolve: cancelled (claimer only)", permissions=["change"])
    def resolve_cancelled(self, request, queryset: QuerySet[ReviewItem]):
        self._resolve(request, queryset, ReviewResolution.CANCELLED)
