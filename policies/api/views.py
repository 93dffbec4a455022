"""HTTP views of the policies domain: parse → call one service or selector → render."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import status as http_status
from rest_framework.response import Response

from nexa.platform.inputs import PG_INTEGER_MAX
from nexa.platform.openapi import EMPTY_IS_ABSENT, problem, urn_schema
from nexa.platform.pagination import extend_schema_paginated, paginate
from nexa.platform.roles import MinRole, Role
from nexa.platform.views import NexaAPIView
from policies import selectors, services
from policies.api.serializers import (
    PolicyCreateSerializer,
    PolicyGenerateSerializer,
    PolicyPatchSerializer,
    PolicyResolutionSerializer,
    PolicyResolveQuerySerializer,
    PolicySerializer,
    PolicyTransitionSerializer,
    PolicyVersionQuerySerializer,
    policy_data,
    resolution_data,
)
from policies.models import Cause, Tier

OPERATOR = MinRole(Role.AIRPORT_OPERATOR)
SUPERVISOR = MinRole(Role.OPS_SUPERVISOR)
ADMIN = MinRole(Role.ADMIN)

POLICY_URN_PARAMETER = OpenApiParameter(
    "policy_urn", OpenApiTypes.STR, OpenApiParameter.PATH, description="urn:nexa:policy:<uuid>"
)


def _created(policy):
    return Response(
        policy_data(policy), status=http_status.HTTP_201_CREATED, headers={"Location": f"/v1/policies/{policy.urn}"}
    )


class PolicyCreateView(NexaAPIView):
    permission_classes = [SUPERVISOR]

    @extend_schema(
        operation_id="policies_create",
        summary="Create a policy (DRAFT, version 1)",
        description="A policy for a scope {airport?, tier?, cause?} of your airline (an absent field matches "
        "anything; {} is the airline's default). Activate it to make it apply.",
        request=PolicyCreateSerializer,
        responses={201: PolicySerializer},
        examples=[
            OpenApiExample(
                "Business at MAD",
                request_only=True,
                value={
                    "name": "MAD business",
                    "scope": {"airport": "MAD", "tier": "BUSINESS"},
                    "rules": {
                        "maxDistanceKm": 15,
                        "minStars": 4,
                        "maxNightlyRate": {"amount": "180.00", "currency": "EUR"},
                        "mealAllowance": {"dinner": {"amount": "35.00", "currency": "EUR"}},
                        "transport": True,
                        "regulation": "EU261",
                    },
                },
            )
        ],
    )
    def post(self, request):
        body = PolicyCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        policy = services.policy_create(
            principal=request.auth, name=data["name"], scope=data["scope"], rules=data["rules"]
        )
        return _created(policy)


class PolicyGenerateView(NexaAPIView):
    permission_classes = [SUPERVISOR]

    @extend_schema(
        operation_id="policies_generate_ai",
        summary="Draft a policy from a description (English or Spanish)",
        description="A DRAFT (never activated by itself) whose generation member gives, per rule, the value, a "
        "confidence and the words it came from, plus the fragments it could not read. The deterministic parser "
        "answers unless a hosted model is configured (NEXA_POLICY_MODEL_API_KEY). Nothing readable: 422 listing "
        "the fragments.",
        request=PolicyGenerateSerializer,
        responses={201: PolicySerializer, 422: problem("Nothing in the description could be read.")},
    )
    def post(self, request):
        body = PolicyGenerateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        policy = services.policy_generate(
            principal=request.auth, description=data["description"], name=data.get("name", services.NO_NAME)
        )
        return _created(policy)


class PoliciesActiveView(NexaAPIView):
    permission_classes = [OPERATOR]

    @extend_schema_paginated(
        PolicySerializer,
        operation_id="policies_active_list",
        summary="Active policies of your airline",
        description="One per scope, oldest first.",
    )
    def get(self, request):
        return paginate(
            request,
            selectors.policies_active(principal=request.auth),
            ordering=("created_at", "id"),
            serialize=policy_data,
        )


class PolicyResolveView(NexaAPIView):
    permission_classes = [OPERATOR]

    @extend_schema(
        operation_id="policies_resolve",
        summary="Which policy applies here?",
        description="The ACTIVE policy for the context, its effective rules and why: the candidates that matched "
        "and the specificity order (airport+tier+cause > airport+tier > airport+cause > airport > tier+cause > "
        "tier > cause > the airline default). caseUrn takes the case's airport and cause (query values win). "
        "No match: 404 problem no-policy-matches (spec 001's POLICY_VIOLATION).",
        parameters=[
            OpenApiParameter(
                "airport",
                {"type": "string", "pattern": r"^[A-Z]{3}$", "example": "MAD"},
                description="IATA code.",
                extensions=EMPTY_IS_ABSENT,
            ),
            OpenApiParameter("tier", OpenApiTypes.STR, enum=Tier.values, extensions=EMPTY_IS_ABSENT),
            OpenApiParameter("cause", OpenApiTypes.STR, enum=Cause.values, extensions=EMPTY_IS_ABSENT),
            OpenApiParameter(
                "caseUrn",
                urn_schema("case"),
                description="A case of your airline (another's, or none: 404).",
                extensions=EMPTY_IS_ABSENT,
            ),
        ],
        responses={200: PolicyResolutionSerializer, 404: problem("no-policy-matches, or caseUrn not found.")},
    )
    def get(self, request):
        query = PolicyResolveQuerySerializer(query=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        resolution = selectors.policy_resolve(
            principal=request.auth,
            airport=data.get("airport"),
            tier=data.get("tier"),
            cause=data.get("cause"),
            case_urn=data.get("caseUrn"),
        )
        return Response(resolution_data(resolution))


class PolicyDetailView(NexaAPIView):
    permission_classes = [OPERATOR]

    @extend_schema(
        operation_id="policies_get",
        summary="A policy, at its current or an earlier version",
        description="Versions are immutable: ?version=n reads version n (404 if it never existed).",
        parameters=[
            POLICY_URN_PARAMETER,
            OpenApiParameter(
                "version",
                {"type": "integer", "minimum": 1, "maximum": PG_INTEGER_MAX},
                extensions=EMPTY_IS_ABSENT,
            ),
        ],
        responses={200: PolicySerializer},
    )
    def get(self, request, policy_urn: str):
        policy = selectors.policy_get(principal=request.auth, policy_urn=policy_urn)
        query = PolicyVersionQuerySerializer(query=request.query_params)
        query.is_valid(raise_exception=True)
        version = query.validated_data.get("version")
        if version is None:
            return Response(policy_data(policy))
        row = selectors.policy_version_get(principal=request.auth, policy=policy, version=version)
        return Response(policy_data(policy, row))


class PolicyPatchView(NexaAPIView):
    permission_classes = [SUPERVISOR]

    @extend_schema(
        operation_id="policies_patch",
        summary="New version of a policy",
        description="Version n+1 with the changes; earlier versions stay readable (GET …?version=). A stale "
        "version is a 409 problem (version-conflict) carrying the current version.",
        parameters=[POLICY_URN_PARAMETER],
        request=PolicyPatchSerializer,
        responses={200: PolicySerializer},
    )
    def post(self, request, policy_urn: str):
        policy = selectors.policy_get(principal=request.auth, policy_urn=policy_urn)
        body = PolicyPatchSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        policy = services.policy_patch(
            principal=request.auth, policy=policy, expected_version=data["version"], changes=data["changes"]
        )
        return Response(policy_data(policy))


class PolicyActivateView(NexaAPIView):
    permission_classes = [ADMIN]

    @extend_schema(
        operation_id="policies_activate",
        summary="Activate a DRAFT policy",
        description="Atomically archives the ACTIVE policy of the same scope and activates this one (one ACTIVE per "
        "scope). Not a DRAFT: 409 illegal-transition; a concurrent activation for the scope won: 409 "
        "scope-activation-conflict.",
        parameters=[POLICY_URN_PARAMETER],
        request=PolicyTransitionSerializer,
        responses={200: PolicySerializer},
    )
    def post(self, request, policy_urn: str):
        policy = selectors.policy_get(principal=request.auth, policy_urn=policy_urn)
        body = PolicyTransitionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        policy = services.policy_activate(principal=request.auth, policy=policy, reason=body.validated_data["reason"])
        return Response(policy_data(policy))


class PolicyDeactivateView(NexaAPIView):
    permission_classes = [ADMIN]

    @extend_schema(
        operation_id="policies_deactivate",
        summary="Archive an ACTIVE policy",
        description="ACTIVE → ARCHIVED. Not ACTIVE: 409 illegal-transition.",
        parameters=[POLICY_URN_PARAMETER],
        request=PolicyTransitionSerializer,
        responses={200: PolicySerializer},
    )
    def post(self, request, policy_urn: str):
        policy = selectors.policy_get(principal=request.auth, policy_urn=policy_urn)
        body = PolicyTransitionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        policy = services.policy_deactivate(principal=request.auth, policy=policy, reason=body.validated_data["reason"])
        return Response(policy_data(policy))
