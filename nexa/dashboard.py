"""``GET /v1/cases/dashboard``: the composition route (ARCHITECTURE §3.8), in the top layer because
it joins domains and owns none.

Each section is one domain's read through that domain's selectors, run concurrently by
:func:`nexa.platform.composition.compose` with the per-call timeout; a failed or late section is
``null`` plus an entry in ``partialFailures`` and the rest still renders. The join adds nothing of
its own: every section renders through a serializer, every instant through
:func:`nexa.platform.instants.iso` (UTC, ``Z``).

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
from nexa.platform.instants import iso
from nexa.platform.roles import MinRole, Role
from nexa.platform.views import NexaAPIView
from operators.selectors import operators_active, operators_online

OLDEST_OPEN_CASES = 10
LATEST_AUDIT_ACTIONS = 20


class InstantField(serializers.Field):
    """A datetime rendered by :func:`~nexa.platform.instants.iso` (read-only)."""

    def __init__(self, **kwargs):
        super().__init__(read_only=True, **kwargs)

    def to_representation(self, value):
        return iso(value)


class OldestOpenCaseSerializer(serializers.Serializer):
    urn = serializers.CharField()
    flightNumber = serializers.CharField(source="flight_number")  # noqa: N815 - wire name
    airport = serializers.CharField()
    scheduledDeparture = InstantField(source="scheduled_departure")  # noqa: N815
    status = serializers.CharField()
    openSince = InstantField(source="created_at")  # noqa: N815


class DashboardOperatorSerializer(serializers.Serializer):
    operatorUrn = serializers.CharField(source="operator_urn")  # noqa: N815 - wire name
    displayName = serializers.CharField(source="display_name")  # noqa: N815
    role = serializers.CharField()


class DashboardAuditEntrySerializer(serializers.Serializer):
    # Who did what to which entity, without reasons or before/after values: the dashboard is open to
    # AIRPORT_OPERATOR, the full audit log only to FINANCE_AUDIT and OPS_SUPERVISOR+.
    urn = serializers.CharField()
    actor = serializers.CharField()
    action = serializers.CharField()
    entityUrn = serializers.CharField(source="entity_urn")  # noqa: N815 - wire name
    caseUrn = serializers.CharField(source="case_urn", allow_null=True)  # noqa: N815
    createdAt = InstantField(source="created_at")  # noqa: N815


def cases_section(principal: Principal) -> dict[str, Any]:
    return {
        "counts": case_counts_by_status_and_airport(principal=principal),
        "oldestOpen": OldestOpenCaseSerializer(
            oldest_open_cases(principal=principal, limit=OLDEST_OPEN_CASES), many=True
        ).data,
    }


def operators_section(principal: Principal) -> dict[str, Any]:
    operators = operators_active(principal=principal).order_by("display_name", "id")
    return {
        "operators": DashboardOperatorSerializer(
            operators.only("operator_urn", "display_name", "role"), many=True
        ).data,
        # Who has a live Socket.IO session now (the presence channel, docs/presence-channel.md).
        "online": operators_online(principal=principal),
    }


def audit_section(principal: Principal) -> dict[str, Any]:
    entries = audit_entries(principal=principal).only("id", "actor", "action", "entity_urn", "case_urn", "created_at")
    return {"latest": DashboardAuditEntrySerializer(entries[:LATEST_AUDIT_ACTIONS], many=True).data}


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
            "{operators: [{operatorUrn, displayName, role}], online: [operatorUrn]}: "
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
        # The envelope is compose()'s (every registered section plus partialFailures); each section
        # rendered itself through its serializers.
        return Response(compose({name: partial(section, principal) for name, section in DASHBOARD_SECTIONS.items()}))
