"""The weekly ops report of manual review (spec 001 § Post-mortem): ``GET /v1/manual-review/reports/weekly``.

JSON by default; CSV with ``Accept: text/csv`` or ``?format=csv`` (DRF's content negotiation over the JSON
renderer and the platform's pass-through CSV renderer, as the audit export). OPS_SUPERVISOR+ and FINANCE_AUDIT;
always the caller's airline. What the figures mean: :mod:`review.reports` and docs/review.md § Reports.
"""

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from nexa.platform.openapi import problem, urn_schema, with_schema
from nexa.platform.problems import validation_problem
from nexa.platform.renderers import csv_text, passthrough_renderer
from nexa.platform.roles import AnyOf, Role
from nexa.platform.views import NexaAPIView
from review import reports, selectors
from review.models import ReviewCategory

REPORT_READERS = AnyOf(Role.FINANCE_AUDIT, Role.OPS_SUPERVISOR)
CSVRenderer = passthrough_renderer("text/csv", "csv")
FORMATS = ("json", "csv")

_CATEGORY_COUNTS = inline_serializer(
    "ReviewReportCategoryCounts",
    {
        "created": serializers.IntegerField(min_value=0, help_text="Items of the category created in the week."),
        "resolved": serializers.IntegerField(min_value=0, help_text="Of those, RESOLVED now."),
        "open": serializers.IntegerField(
            min_value=0, help_text="Of those, not resolved yet (OPEN, CLAIMED, ESCALATED)."
        ),
    },
)
_MINUTES = serializers.FloatField(allow_null=True, min_value=0)
_SCOPE = inline_serializer(
    "ReviewReportPolicyScope",
    {
        "airport": serializers.CharField(allow_blank=True, help_text='IATA code; "" = any'),
        "tier": serializers.CharField(allow_blank=True, help_text='"" = any'),
        "cause": serializers.CharField(allow_blank=True, help_text='"" = any'),
    },
)


class ReviewWeeklyReportSerializer(serializers.Serializer):
    airline = serializers.CharField(help_text="Your airline (IATA code).")
    week = serializers.CharField(help_text="The ISO week, e.g. 2026-W48.")
    # "from" is a keyword: declared in __init__ below.
    to = serializers.DateTimeField(help_text="End of the week (exclusive): the next Monday 00:00 UTC.")
    generatedAt = serializers.DateTimeField(help_text="When the report was computed (states are read then).")  # noqa: N815
    byCategory = inline_serializer(  # noqa: N815
        "ReviewReportByCategory", {category: _CATEGORY_COUNTS for category in ReviewCategory.values}
    )
    mttrMinutes = inline_serializer(  # noqa: N815
        "ReviewReportMttr",
        {
            "overall": serializers.FloatField(
                allow_null=True,
                min_value=0,
                help_text="Mean resolvedAt - createdAt of the resolved items (null: none).",
            ),
            "byCategory": inline_serializer(
                "ReviewReportMttrByCategory", {category: _MINUTES for category in ReviewCategory.values}
            ),
        },
    )
    agentAcceptedShare = serializers.FloatField(  # noqa: N815
        allow_null=True,
        min_value=0,
        max_value=1,
        help_text="Resolved items an executed agent action acted on / resolved items (null: none resolved).",
    )
    topFailingPolicies = inline_serializer(  # noqa: N815
        "ReviewReportPolicy",
        {
            "policyUrn": with_schema(
                serializers.CharField(allow_null=True), {**urn_schema("policy"), "nullable": True}
            ),
            "policyName": serializers.CharField(allow_null=True),
            "scope": _SCOPE,
            "failures": serializers.IntegerField(min_value=1),
            "byCategory": serializers.DictField(child=serializers.IntegerField(min_value=1)),
        },
        many=True,
        help_text="At most 5, most failures first; policyUrn null: no policy matched that scope (POLICY_VIOLATION).",
    )
    topFailingProviders = inline_serializer(  # noqa: N815
        "ReviewReportProvider",
        {
            "provider": serializers.CharField(help_text="Vendor code, contract, or unknown."),
            "failures": serializers.IntegerField(min_value=1, help_text="Failed attempts (attemptedHotels entries)."),
            "reasons": serializers.DictField(child=serializers.IntegerField(min_value=1)),
        },
        many=True,
        help_text="At most 5, most failures first.",
    )

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = serializers.DateTimeField(help_text="Start of the week: its Monday 00:00 UTC.")
        return fields


WEEK_PARAMETER = OpenApiParameter(
    "week",
    {"type": "string", "pattern": reports.WEEK_PATTERN, "example": "2026-W48"},
    required=True,
    description=(
        "ISO week (YYYY-Www; W53 only in years that have one). The report covers the items created in it: "
        "[Monday 00:00 UTC, next Monday)."
    ),
)
FORMAT_PARAMETER = OpenApiParameter(
    "format",
    OpenApiTypes.STR,
    enum=list(FORMATS),
    description="json (default) or csv; the same as Accept: application/json or text/csv.",
)


class ManualReviewWeeklyReportView(NexaAPIView):
    permission_classes = [REPORT_READERS]
    renderer_classes = [JSONRenderer, CSVRenderer]

    def perform_content_negotiation(self, request, force=False):
        try:
            return super().perform_content_negotiation(request, force)
        except Http404:  # DRF's answer to an unknown ?format=: a bad parameter, not a missing resource
            raise validation_problem([{"field": "format", "message": f"must be one of {', '.join(FORMATS)}"}]) from None

    @extend_schema(
        operation_id="manual_review_report_weekly",
        summary="Weekly ops report of manual review",
        description=(
            "Over your airline's review items created in the ISO week (UTC): per category the items created, "
            "resolved and still open; the mean time to resolve (minutes) overall and per category; the share of "
            "resolved items an agent action acted on; the five policies and the five providers that failed most. "
            "CSV (Accept: text/csv or ?format=csv): one table, columns airline, week, section (category | total | "
            "policy | provider), key, name, created, resolved, open, mttr_minutes, agent_accepted_share, failures, "
            "detail. A missing or impossible week (2026-W99) is a 400 naming week."
        ),
        parameters=[WEEK_PARAMETER, FORMAT_PARAMETER],
        responses={
            (200, "application/json"): ReviewWeeklyReportSerializer,
            (200, "text/csv"): OpenApiResponse(response=OpenApiTypes.STR, description="The report as CSV."),
            (400, "application/problem+json"): problem(
                "week is missing or not an ISO week; format is not json or csv."
            ),
        },
    )
    def get(self, request):
        report = selectors.review_weekly_report(principal=request.auth, week=request.query_params.get("week"))
        if request.accepted_renderer.format != "csv":
            return Response(report)
        response = Response(csv_text(reports.report_csv_rows(report)), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = (
            f'attachment; filename="review-report-{report["airline"]}-{report["week"]}.csv"'
        )
        response["Cache-Control"] = "no-store"
        return response
