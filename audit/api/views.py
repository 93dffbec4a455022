"""Audit reads (spec 000 § Audit; ARCHITECTURE §11): per case, per entity, the filtered log and
its CSV export. Read-only; FINANCE_AUDIT or OPS_SUPERVISOR+; always the caller's airline."""

from django.core.handlers.asgi import ASGIRequest
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema

from audit.api.serializers import ACTION_MAX_LENGTH, URN_MAX_LENGTH, AuditEntrySerializer, AuditLogFilters
from audit.export import audit_export_prepare
from audit.selectors import (
    AUDIT_ORDERING,
    audit_entries,
    audit_entries_for_case,
    audit_entries_for_entity,
    case_check,
)
from nexa.platform.filters import instant_range_parameters
from nexa.platform.openapi import NON_BLANK, problem
from nexa.platform.pagination import extend_schema_paginated, paginate, row_serializer
from nexa.platform.problems import validation_problem
from nexa.platform.renderers import passthrough_renderer
from nexa.platform.roles import AnyOf, Role
from nexa.platform.urns import InvalidUrn, is_opaque_urn
from nexa.platform.views import NexaAPIView

AUDIT_READERS = AnyOf(Role.FINANCE_AUDIT, Role.OPS_SUPERVISOR)


def _filtered_entries(request):
    filters = AuditLogFilters.parse(request)
    return audit_entries(
        principal=request.auth,
        actor=filters["actor"],
        action=filters["action"],
        created_from=filters["from"],
        created_to=filters["to"],
    )


FILTER_PARAMETERS = [
    OpenApiParameter(
        "actor",
        {"type": "string", "minLength": 1, "maxLength": URN_MAX_LENGTH, "pattern": NON_BLANK},
        description="Only this actor (operator URN or urn:nexa:system:…).",
    ),
    OpenApiParameter(
        "action",
        {"type": "string", "minLength": 1, "maxLength": ACTION_MAX_LENGTH, "pattern": NON_BLANK},
        description='Only this action, e.g. "subcase.locked".',
    ),
    *instant_range_parameters("Recorded"),
]


class AuditCaseListView(NexaAPIView):
    permission_classes = [AUDIT_READERS]

    @extend_schema_paginated(
        AuditEntrySerializer,
        operation_id="audit_case_list",
        summary="Audit trail of a case",
        description=(
            "Everything recorded under the case (the case, its sub-cases, bookings …), newest first. "
            "A case of another airline is a 404, like one that does not exist."
        ),
    )
    def get(self, request, case_urn: str):
        try:
            # A case of another airline (or none at all) is a 404, as everywhere else.
            case_check(principal=request.auth, case_urn=case_urn)
        except InvalidUrn as error:
            raise validation_problem([{"field": "case_urn", "message": error.message}]) from None
        entries = audit_entries_for_case(principal=request.auth, case_urn=case_urn)
        return paginate(request, entries, ordering=AUDIT_ORDERING, serialize=row_serializer(AuditEntrySerializer))


class AuditEntityListView(NexaAPIView):
    permission_classes = [AUDIT_READERS]

    @extend_schema_paginated(
        AuditEntrySerializer,
        operation_id="audit_entity_list",
        summary="History of one entity",
        description="Newest first. Any URN (sub-case, reservation, policy, operator …); another airline's is empty.",
    )
    def get(self, request, entity_urn: str):
        if not is_opaque_urn(entity_urn):
            raise validation_problem([{"field": "entity_urn", "message": "Must be a URN (urn:…)."}])
        entries = audit_entries_for_entity(principal=request.auth, entity_urn=entity_urn)
        return paginate(request, entries, ordering=AUDIT_ORDERING, serialize=row_serializer(AuditEntrySerializer))


class AuditListView(NexaAPIView):
    permission_classes = [AUDIT_READERS]

    @extend_schema_paginated(
        AuditEntrySerializer,
        parameters=FILTER_PARAMETERS,
        operation_id="audit_list",
        summary="The airline's audit log",
        description="Newest first, filtered by actor, action and a half-open [from, to) time range.",
    )
    def get(self, request):
        entries = _filtered_entries(request)
        return paginate(request, entries, ordering=AUDIT_ORDERING, serialize=row_serializer(AuditEntrySerializer))


CSVRenderer = passthrough_renderer("text/csv", "csv")


class AuditExportView(NexaAPIView):
    permission_classes = [AUDIT_READERS]
    renderer_classes = [CSVRenderer]

    @extend_schema(
        operation_id="audit_export_csv",
        summary="Export the audit log as CSV",
        description=(
            "Same filters as GET /v1/audit. Columns: created_at, action, actor, entity_urn, case_urn, "
            "reason, correlation_urn, before_json, after_json. Cells that a spreadsheet would evaluate "
            "(starting with = + - @, tab, CR) are prefixed with an apostrophe. Refused with 422 when more "
            "rows match than the configured cap (NEXA_AUDIT_EXPORT_MAX_ROWS): narrow the range."
        ),
        parameters=FILTER_PARAMETERS,
        responses={
            (200, "text/csv"): OpenApiResponse(response=OpenApiTypes.STR, description="The CSV file."),
            (422, "application/problem+json"): problem("More rows match than the export cap; narrow from/to."),
        },
    )
    def get(self, request):
        entries = _filtered_entries(request)
        export = audit_export_prepare(entries)
        # Under ASGI an async body is streamed; a sync one would be read whole before sending.
        streaming = isinstance(request._request, ASGIRequest)
        response = StreamingHttpResponse(
            export.achunks() if streaming else export.chunks(), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = f'attachment; filename="{export.filename(request.auth.airline)}"'
        response["Cache-Control"] = "no-store"
        return response
