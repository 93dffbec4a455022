"""HTTP views of the operators domain: parse → call one service or selector → render."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.response import Response

from nexa.platform.pagination import extend_schema_paginated, paginate, row_serializer
from nexa.platform.roles import AnyOf, MinRole, Role
from nexa.platform.views import NexaAPIView
from operators import selectors, services
from operators.api.serializers import (
    ForceUnlockResultSerializer,
    LockGrantSerializer,
    LockReleasedSerializer,
    OperatorDeactivatedSerializer,
    OperatorReactivatedSerializer,
    OperatorSerializer,
    ReasonSerializer,
)

OPERATOR = MinRole(Role.AIRPORT_OPERATOR)
SUPERVISOR = MinRole(Role.OPS_SUPERVISOR)
ADMIN = MinRole(Role.ADMIN)

SUB_CASE_URN_PARAMETER = OpenApiParameter(
    "sub_case_urn", OpenApiTypes.STR, OpenApiParameter.PATH, description="urn:nexa:subcase:<uuid>"
)
OPERATOR_URN_PARAMETER = OpenApiParameter(
    "operator_urn", OpenApiTypes.STR, OpenApiParameter.PATH, description="The operator URN from the token claim."
)
CONFLICT = OpenApiResponse(description="Problem: see the `type` (lock held, not locked, …).")


class SubCaseLockView(NexaAPIView):
    permission_classes = [OPERATOR]

    @extend_schema(
        operation_id="subcases_lock",
        summary="Lock a sub-case (or renew your lock)",
        description=(
            "Grants a lease of NEXA_LOCK_LEASE_SECONDS and a fencing token; send the token as X-Fencing-Token "
            "with your writes. Locking again while you hold it renews the lease and keeps the token. Held by "
            "someone else: 409 subcase-locked with lockedBy and expiresInSeconds."
        ),
        parameters=[SUB_CASE_URN_PARAMETER],
        request=None,
        responses={200: LockGrantSerializer, 409: CONFLICT},
    )
    def post(self, request, sub_case_urn: str):
        grant = services.subcase_lock(principal=request.auth, sub_case_urn=sub_case_urn)
        return Response(LockGrantSerializer(grant).data)


class SubCaseUnlockView(NexaAPIView):
    permission_classes = [OPERATOR]

    @extend_schema(
        operation_id="subcases_unlock",
        summary="Release your lock on a sub-case",
        description=(
            "409 subcase-not-locked when there is no live lock; 409 subcase-locked-by-another (with lockedBy) "
            "when someone else holds it."
        ),
        parameters=[SUB_CASE_URN_PARAMETER],
        request=None,
        responses={200: LockReleasedSerializer, 409: CONFLICT},
    )
    def post(self, request, sub_case_urn: str):
        services.subcase_unlock(principal=request.auth, sub_case_urn=sub_case_urn)
        return Response(LockReleasedSerializer({"subCaseUrn": sub_case_urn, "lockedBy": None}).data)


class SubCaseForceUnlockView(NexaAPIView):
    permission_classes = [SUPERVISOR]

    @extend_schema(
        operation_id="subcases_force_unlock",
        summary="Release anyone's lock on a sub-case",
        description=(
            "OPS_SUPERVISOR+. reason is required and audited; watchers get subcase:state-changed with "
            "lockedBy null, and the former holder's fencing token becomes stale. 409 subcase-not-locked when "
            "there is no live lock."
        ),
        parameters=[SUB_CASE_URN_PARAMETER],
        request=ReasonSerializer,
        responses={200: ForceUnlockResultSerializer, 409: CONFLICT},
    )
    def post(self, request, sub_case_urn: str):
        body = ReasonSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        previous = services.subcase_force_unlock(
            principal=request.auth, sub_case_urn=sub_case_urn, reason=body.validated_data["reason"]
        )
        return Response(
            ForceUnlockResultSerializer({"subCaseUrn": sub_case_urn, "lockedBy": None, "previousHolder": previous}).data
        )


class OperatorListView(NexaAPIView):
    permission_classes = [OPERATOR]

    @extend_schema_paginated(
        OperatorSerializer,
        operation_id="operators_list",
        summary="Operators of your airline, with presence and locks",
        description=(
            "connected: a socket of theirs is live; lastSeenAt: their latest heartbeat; locksHeld: sub-cases "
            "they hold a live lease on. Ordered by operator URN."
        ),
    )
    def get(self, request):
        return paginate(
            request,
            selectors.operators_list(principal=request.auth),
            ordering=("operator_urn", "id"),
            serialize=row_serializer(OperatorSerializer),
        )


class OperatorDeactivateView(NexaAPIView):
    permission_classes = [ADMIN]

    @extend_schema(
        operation_id="operators_deactivate",
        summary="Deactivate an operator",
        description=(
            "ADMIN. reason is required and audited. Their sockets are closed (4401), their locks released, and "
            "from their next request on every token of theirs is refused (403 operator-deactivated; open "
            "event streams end at their next heartbeat). Tokens are not revoked: reactivating lets them back. "
            "Identity is (airline, operator URN): a URN without a profile in your airline is a 404 (whether "
            "another airline has it or not). No lock-out: yourself, or the airline's last active ADMIN, is a 409."
        ),
        parameters=[OPERATOR_URN_PARAMETER],
        request=ReasonSerializer,
        responses={
            200: OperatorDeactivatedSerializer,
            409: OpenApiResponse(description="Problem: `cannot-deactivate-self` or `last-active-admin` (no lock-out)."),
        },
    )
    def post(self, request, operator_urn: str):
        body = ReasonSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        result = services.operator_deactivate(
            principal=request.auth, operator_urn=operator_urn, reason=body.validated_data["reason"]
        )
        return Response(OperatorDeactivatedSerializer(result).data)


class OperatorReactivateView(NexaAPIView):
    permission_classes = [ADMIN]

    @extend_schema(
        operation_id="operators_reactivate",
        summary="Reactivate a deactivated operator",
        description=(
            "ADMIN. reason is required and audited (operator.reactivated). Their tokens are accepted again "
            "from the next request on (unless revoked or expired). 409 operator-already-active when they are "
            "active; a URN without a profile in your airline is a 404. Send an Idempotency-Key to retry safely."
        ),
        parameters=[OPERATOR_URN_PARAMETER],
        request=ReasonSerializer,
        responses={
            200: OperatorReactivatedSerializer,
            409: OpenApiResponse(description="Problem: `operator-already-active`."),
        },
    )
    def post(self, request, operator_urn: str):
        body = ReasonSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        operator = services.operator_reactivate(
            principal=request.auth, operator_urn=operator_urn, reason=body.validated_data["reason"]
        )
        return Response(OperatorReactivatedSerializer(operator).data)


class LogoutView(NexaAPIView):
    # A retried logout (the token is already revoked) is a 204, not a 401.
    accepts_revoked_token = True
    permission_classes = [AnyOf(*Role)]  # every role may revoke its own token

    @extend_schema(
        operation_id="auth_logout",
        summary="Log out: revoke your own token",
        description=(
            "Revokes the calling token's jti until it expires (every role). Idempotent: logging out again with "
            "the same token is a 204 too, audited once (auth.logout). Other tokens of yours are unaffected. "
            "422 token-not-revocable for a token without jti (production refuses those altogether)."
        ),
        request=None,
        responses={204: OpenApiResponse(description="The token is revoked.")},
    )
    def post(self, request):
        services.token_logout(principal=request.auth)
        return Response(status=204)
