"""``GET /v1/cases/dashboard``: the composition route (ARCHITECTURE §3.8).

Each section is one domain's read, run concurrently by :func:`nexa.platform.composition.compose`
with the per-call timeout; a failed or late section is ``null`` plus an entry in
``partialFailures`` and the rest still renders. The join adds nothing of its own.

Sections are registered in :data:`DASHBOARD_SECTIONS` (name → callable taking the principal and
returning JSON-ready data). Later domains (booking, review, notifications) add theirs there;
tests add a slow or failing one the same way.
"""

from collections.abc import Callable
from functools import partial
from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from audit.selectors import audit_entries
from cases.selectors import case_counts_by_status_and_airport, oldest_open_cases
from nexa.platform.auth import Principal
from nexa.platform.composition import compose
from nexa.platform.roles import MinRole, Role
from nexa.platform.views import NexaAPIView
from operators.selectors import operators_active, operators_online

OLDEST_OPEN_CASES = 10
LATEST_AUDIT_ACTIONS = 20


def cases_section(principal: Principal) -> dict[str, Any]:
    return {
        "counts": case_counts_by_status_and_airport(principal=principal),
        "oldestOpen": oldest_open_cases(principal=principal, limit=OLDEST_OPEN_CASES),
    }


def operators_section(principal: Principal) -> dict[str, Any]:
    operators = operators_active(principal=principal).order_by("display_name", "id")
    return {
        "operators": [
            {"operatorUrn": operator.operator_urn, "displayName": operator.display_name, "role": operator.role}
            for operator in operators.only("operator_urn", "display_name", "role")
        ],
        # Who has a live Socket.IO session now (the presence channel, docs/presence-channel.md).
        "presenceTracked": True,
        "online": operators_online(principal=principal),
    }


def audit_section(principal: Principal) -> dict[str, Any]:
    # Who did what to which entity, without reasons or before/after values: the dashboard is open
    # to AIRPORT_OPERATOR, the full audit log only to FINANCE_AUDIT and OPS_SUPERVISOR+.
    entries = audit_entries(principal=principal).only("id", "actor", "action", "entity_urn", "case_urn", "created_at")
    return {
        "latest": [
            {
                "urn": entry.urn,
                "actor": entry.actor,
                "action": entry.action,
                "entityUrn": entry.entity_urn,
                "caseUrn": entry.case_urn,
                "createdAt": entry.created_at.isoformat(),
            }
            for entry in entries[:LATEST_AUDIT_ACTIONS]
        ]
    }


DASHBOARD_SECTIONS: dict[str, Callable[[Principal], Any]] = {
    "cases": cases_section,
    "operators": operators_section,
    "audit": audit_section,
}


class PartialFailureSerializer(serializers.Serializer):
    domain = serializers.CharField(help_text="The section that is missing from this answer.")
    status = serializers.CharField(
        help_text='"timeout" (no answer within the per-call timeout), "error", or the HTTP status of its problem.'
    )
    detail = serializers.CharField()


class CaseDashboardSerializer(serializers.Serializer):
    cases = serializers.JSONField(
        allow_null=True,
        help_text="{counts: {total, byStatus, byAirport: [{airport, total, byStatus}]}, oldestOpen: [case]}",
    )
    operators = serializers.JSONField(
        allow_null=True,
        help_text=(
            "{operators: [{operatorUrn, displayName, role}], presenceTracked: true, online: [operatorUrn]}: "
            "online lists the operators with a live Socket.IO session on the presence channel."
        ),
    )
    audit = serializers.JSONField(
        allow_null=True, help_text="{latest: [{urn, actor, action, entityUrn, caseUrn, createdAt}]}, newest first."
    )
    partialFailures = PartialFailureSerializer(many=True)  # noqa: N815 - wire name


class CaseDashboardView(NexaAPIView):
    permission_classes = [MinRole(Role.AIRPORT_OPERATOR)]

    @extend_schema(
        operation_id="cases_dashboard",
        summary="Operations dashboard",
        description=(
            "Sections from several domains fetched concurrently, each with a per-call timeout (3 s). A section "
            "that fails or is late is null and listed in partialFailures; the rest still renders (200)."
        ),
        responses={200: CaseDashboardSerializer},
    )
    def get(self, request):
        principal = request.auth
        return Response(compose({name: partial(section, principal) for name, section in DASHBOARD_SECTIONS.items()}))
