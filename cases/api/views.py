"""HTTP views of the cases domain: parse → call one service or selector → render."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import status as http_status
from rest_framework.response import Response

from cases import selectors, services
from cases.api.serializers import (
    CaseDeclareSerializer,
    CaseDetailSerializer,
    CaseListFilters,
    CaseSerializer,
    ManifestAppendResultSerializer,
    ManifestAppendSerializer,
    ManifestFilters,
    PassengerGroupsRequestSerializer,
    PassengerGroupsResultSerializer,
    SubCaseSerializer,
    SubCaseTransitionSerializer,
    case_detail_data,
)
from cases.models import CaseStatus, SubCaseStatus
from nexa.platform.filters import instant_range_parameters
from nexa.platform.inputs import PG_BIGINT_MAX, int_header
from nexa.platform.openapi import EMPTY_IS_ABSENT, urn_schema
from nexa.platform.pagination import extend_schema_paginated, paginate, row_serializer
from nexa.platform.roles import MinRole, Role
from nexa.platform.views import NexaAPIView

OPERATOR = MinRole(Role.AIRPORT_OPERATOR)
SUPERVISOR = MinRole(Role.OPS_SUPERVISOR)

CASE_URN_PARAMETER = OpenApiParameter(
    "case_urn", OpenApiTypes.STR, OpenApiParameter.PATH, description="urn:nexa:case:<uuid>"
)
SUB_CASE_URN_PARAMETER = OpenApiParameter(
    "sub_case_urn", OpenApiTypes.STR, OpenApiParameter.PATH, description="urn:nexa:subcase:<uuid>"
)


class _PerMethodPermissionsMixin:
    """Routes whose GET and POST need different roles (spec 000 declares them per method)."""

    permissions_by_method: dict[str, list] = {}

    def get_permissions(self):
        return [permission() for permission in self.permissions_by_method.get(self.request.method, [SUPERVISOR])]


# --- routes -----------------------------------------------------------------------------------------


class CaseListCreateView(_PerMethodPermissionsMixin, NexaAPIView):
    permissions_by_method = {"GET": [OPERATOR], "POST": [SUPERVISOR]}

    @extend_schema_paginated(
        CaseSerializer,
        operation_id="cases_list",
        summary="List cases",
        description="Newest scheduled departure first. Filters are validated: a bad value is a 400 naming it.",
        parameters=[
            OpenApiParameter(
                "status",
                OpenApiTypes.STR,
                enum=CaseStatus.values,
                description="Case status.",
                extensions=EMPTY_IS_ABSENT,
            ),
            OpenApiParameter(
                "airport",
                {"type": "string", "pattern": r"^[\s\x1c-\x1f]*[A-Za-z]{3}[\s\x1c-\x1f]*$", "example": "MAD"},
                description="IATA code of the disrupted airport (one of the catalog's).",
                extensions=EMPTY_IS_ABSENT,
            ),
            *instant_range_parameters("Scheduled departure"),
        ],
    )
    def get(self, request):
        filters = CaseListFilters.parse(request)
        cases = selectors.cases_list(
            principal=request.auth,
            status=filters["status"],
            airport=filters["airport"],
            departure_from=filters["from"],
            departure_to=filters["to"],
        )
        return paginate(
            request,
            cases,
            ordering=("-scheduled_departure", "-id"),
            serialize=row_serializer(CaseSerializer),
        )

    @extend_schema(
        operation_id="cases_declare",
        summary="Declare a disruption",
        description=(
            "Creates a case (and its manifest when passengers are given). A second open case for the same "
            "flight, date and airport is a 409 problem with existingCaseUrn."
        ),
        request=CaseDeclareSerializer,
        responses={201: CaseDetailSerializer},
        examples=[
            OpenApiExample(
                "Cancellation at MAD with one passenger",
                request_only=True,
                value={
                    "airport": "MAD",
                    "flightNumber": "IB3166",
                    "flightDate": "2026-11-22",
                    "scheduledDeparture": "2026-11-22T21:40:00+01:00",
                    "cause": "CANCELLATION",
                    "note": "Storm over the bay",
                    "passengers": [
                        {"firstName": "Ana", "lastName": "Garcia", "pnr": "X7K2QP", "phone": "+34600123456"}
                    ],
                },
            )
        ],
    )
    def post(self, request):
        body = CaseDeclareSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        case = services.case_declare(
            principal=request.auth,
            airport=data["airport"],
            flight_number=data["flightNumber"],
            flight_date=data["flightDate"],
            scheduled_departure=data["scheduledDeparture"],
            cause=data["cause"],
            note=data["note"],
            passengers=data["passengers"],
            destination=data["destination"],
        )
        counts = selectors.case_subcase_counts(principal=request.auth, case=case)
        return Response(
            case_detail_data(case, counts),
            status=http_status.HTTP_201_CREATED,
            headers={"Location": f"/v1/cases/{case.urn}"},
        )


class CaseDetailView(NexaAPIView):
    permission_classes = [OPERATOR]

    @extend_schema(
        operation_id="cases_get",
        summary="Case detail",
        description="The case with its sub-cases counted by status.",
        parameters=[CASE_URN_PARAMETER],
        responses={200: CaseDetailSerializer},
    )
    def get(self, request, case_urn: str):
        case = selectors.case_get(principal=request.auth, case_urn=case_urn)
        counts = selectors.case_subcase_counts(principal=request.auth, case=case)
        return Response(case_detail_data(case, counts))


class CaseManifestView(_PerMethodPermissionsMixin, NexaAPIView):
    permissions_by_method = {"GET": [OPERATOR], "POST": [SUPERVISOR]}

    @extend_schema_paginated(
        SubCaseSerializer,
        operation_id="cases_manifest_list",
        summary="The case's sub-cases (one per passenger)",
        parameters=[
            CASE_URN_PARAMETER,
            OpenApiParameter(
                "status",
                OpenApiTypes.STR,
                enum=SubCaseStatus.values,
                description="Sub-case status.",
                extensions=EMPTY_IS_ABSENT,
            ),
            OpenApiParameter(
                "group",
                urn_schema("group"),
                description="Only members of this group (urn:nexa:group:…).",
                extensions=EMPTY_IS_ABSENT,
            ),
        ],
    )
    def get(self, request, case_urn: str):
        case = selectors.case_get(principal=request.auth, case_urn=case_urn)
        filters = ManifestFilters.parse(request)
        sub_cases = selectors.case_manifest(
            principal=request.auth, case=case, status=filters["status"], group_urn=filters["group"]
        )
        return paginate(
            request,
            sub_cases,
            ordering=("created_at", "id"),
            serialize=row_serializer(SubCaseSerializer),
        )

    @extend_schema(
        operation_id="cases_manifest_append",
        summary="Append passengers to the manifest",
        description=(
            "All or nothing: every row is validated first; any invalid row, or a passenger (same PNR and name) "
            "already on the manifest or twice in the batch, is a 400 problem listing each error as "
            "{field: 'passengers[3].email', message}. A closed case is a 409."
        ),
        parameters=[CASE_URN_PARAMETER],
        request=ManifestAppendSerializer,
        responses={201: ManifestAppendResultSerializer},
    )
    def post(self, request, case_urn: str):
        case = selectors.case_get(principal=request.auth, case_urn=case_urn)
        body = ManifestAppendSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        created = services.manifest_append(principal=request.auth, case=case, rows=body.validated_data["passengers"])
        case = selectors.case_get(principal=request.auth, case_urn=case_urn)
        return Response(
            ManifestAppendResultSerializer({"added": len(created), "caseStatus": case.status, "items": created}).data,
            status=http_status.HTTP_201_CREATED,
        )


class PassengerGroupsView(NexaAPIView):
    permission_classes = [OPERATOR]

    @extend_schema(
        operation_id="cases_passenger_groups_create",
        summary="Group passengers for allocation",
        description=(
            "Body {} groups automatically (one group per PNR). {groups: [[subCaseUrn, …], …]} takes explicit "
            "groups; passengers not named are grouped automatically. Regrouping replaces previous groups and is "
            "allowed only while every affected passenger is PENDING or GROUPED (else 409)."
        ),
        parameters=[CASE_URN_PARAMETER],
        request=PassengerGroupsRequestSerializer,
        responses={201: PassengerGroupsResultSerializer},
    )
    def post(self, request, case_urn: str):
        case = selectors.case_get(principal=request.auth, case_urn=case_urn)
        body = PassengerGroupsRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        services.passenger_groups_create(principal=request.auth, case=case, groups=body.validated_data["groups"])
        groups = selectors.case_groups(principal=request.auth, case=case)
        return Response(PassengerGroupsResultSerializer({"groups": groups}).data, status=http_status.HTTP_201_CREATED)


FENCING_TOKEN_HEADER = "X-Fencing-Token"
FENCING_TOKEN_PARAMETER = OpenApiParameter(
    name=FENCING_TOKEN_HEADER,
    location=OpenApiParameter.HEADER,
    required=False,
    type={"type": "integer", "format": "int64", "minimum": 1, "maximum": 2**63 - 1},
    description=(
        "The fencing token of your lock on the sub-case (ASCII digits, 1 to 2^63-1; anything else is a 400 naming "
        "the header); a stale one is a 409 (stale-fencing-token)."
    ),
)


def fencing_token_header(request) -> int | None:
    """``X-Fencing-Token`` strictly: ASCII digits in 1..2**63-1 (the ``bigint`` column), else a 400."""
    return int_header(request, FENCING_TOKEN_HEADER, minimum=1, maximum=PG_BIGINT_MAX)


class SubCaseTransitionView(NexaAPIView):
    permission_classes = [OPERATOR]

    @extend_schema(
        operation_id="subcases_transition",
        summary="Move a sub-case along its state machine",
        description=(
            "Optimistic concurrency: send the version you read. A stale version is a 409 problem "
            "(version-conflict) carrying the current version; a transition the state machine does not allow "
            "from the current status is a 409 problem (illegal-transition) listing the allowed ones."
        ),
        parameters=[SUB_CASE_URN_PARAMETER, FENCING_TOKEN_PARAMETER],
        request=SubCaseTransitionSerializer,
        responses={200: SubCaseSerializer},
    )
    def post(self, request, sub_case_urn: str):
        sub_case = selectors.subcase_get(principal=request.auth, sub_case_urn=sub_case_urn)
        body = SubCaseTransitionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        fencing_token = fencing_token_header(request)
        sub_case = services.subcase_transition(
            principal=request.auth,
            sub_case=sub_case,
            transition=data["transition"],
            expected_version=data["version"],
            reason=data["reason"],
            fencing_token=fencing_token,
        )
        return Response(SubCaseSerializer(sub_case).data)
