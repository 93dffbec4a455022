"""HTTP routes of compensation sagas: compensate a sub-case, orchestration progress, retry and cancel
runs, and the passenger wallet. Parse → call one service or selector → render."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
)
from rest_framework import serializers
from rest_framework import status as http_status
from rest_framework.response import Response

from booking.selectors import wallet_for_subcase
from cases import compensation, selectors, services
from cases.api.views import (
    CASE_URN_PARAMETER,
    FENCING_TOKEN_PARAMETER,
    OPERATOR,
    SUB_CASE_URN_PARAMETER,
    SUPERVISOR,
    fencing_token_header,
)
from nexa.platform.inputs import PG_INTEGER_MAX
from nexa.platform.instants import iso
from nexa.platform.openapi import NON_BLANK, with_schema
from nexa.platform.urns import format_urn
from nexa.platform.views import NexaAPIView

SAGA_URN_PARAMETER = OpenApiParameter(
    "saga_urn", OpenApiTypes.STR, OpenApiParameter.PATH, description="urn:nexa:saga:<uuid>"
)


# cases.compensation.validate_request's shape rules, stated for the schema. The per-passenger limits, a
# MEAL card's expiry in the future and HOTEL (a 422) are business rules no schema states.
_AMOUNT = {
    "anyOf": [
        {"type": "string", "pattern": r"^(?:[1-9][0-9]{0,4}(?:\.[0-9]{1,2})?|0\.(?:[1-9][0-9]?|0[1-9]))$"},
        {"type": "integer", "minimum": 1, "maximum": int(compensation.MAX_AMOUNT)},
    ],
    "description": 'Positive, at most two decimals, as a decimal string such as "25.00".',
    "example": "25.00",
}
_CURRENCY = {"type": "string", "enum": sorted(compensation.ISO_4217), "example": "EUR"}
_PLACE = {
    "type": "object",
    "properties": {
        "lat": {"type": "number", "minimum": -90, "maximum": 90},
        "lng": {"type": "number", "minimum": -180, "maximum": 180},
        "address": {"type": "string", "pattern": NON_BLANK, "maxLength": 300},
    },
    "required": ["lat", "lng"],
}
COMPENSATION_ITEM_SCHEMA = {
    "oneOf": [
        {
            "type": "object",
            "title": "MEAL",
            "properties": {
                "type": {"type": "string", "enum": ["MEAL"]},
                "amount": _AMOUNT,
                "currency": _CURRENCY,
                "expiresAt": {"type": "string", "format": "date-time", "description": "In the future; default 24 h."},
            },
            "required": ["type", "amount", "currency"],
        },
        {
            "type": "object",
            "title": "CASH",
            "properties": {
                "type": {"type": "string", "enum": ["CASH"]},
                "amount": _AMOUNT,
                "currency": _CURRENCY,
                "regulation": {"type": "string", "enum": list(compensation.REGULATIONS)},
            },
            "required": ["type", "amount", "currency", "regulation"],
        },
        {
            "type": "object",
            "title": "TRANSPORT",
            "properties": {
                "type": {"type": "string", "enum": ["TRANSPORT"]},
                "provider": {"type": "string", "enum": list(compensation.TRANSPORT_PROVIDERS)},
                "pickup": _PLACE,
                "dropoff": _PLACE,
                "pickupAt": {"type": "string", "format": "date-time", "description": "In the future; default now."},
                "amount": _AMOUNT,
                "currency": _CURRENCY,
            },
            "required": ["type", "provider", "pickup", "dropoff"],
            # amount needs a currency
            "anyOf": [{"not": {"required": ["amount"]}}, {"required": ["amount", "currency"]}],
        },
    ],
    "example": {"type": "MEAL", "amount": "25.00", "currency": "EUR"},
}


class CompensateRequestSerializer(serializers.Serializer):
    version = serializers.IntegerField(
        min_value=1, max_value=PG_INTEGER_MAX, help_text="The sub-case version you read (optimistic concurrency)."
    )
    items = with_schema(
        serializers.ListField(
            child=serializers.JSONField(),
            help_text=(
                'MEAL {amount, currency, expiresAt?}; CASH {amount, currency, regulation}; TRANSPORT {provider: "UBER"|'
                '"CABIFY", pickup, dropoff, pickupAt?, amount?, currency?}. HOTEL is refused with a 422 (arrives with '
                "booking)."
            ),
        ),
        {
            "type": "array",
            "items": COMPENSATION_ITEM_SCHEMA,
            "minItems": 1,
            "maxItems": compensation.MAX_ITEMS,
            "description": "MEAL, CASH or TRANSPORT items (HOTEL is refused with a 422: it arrives with booking).",
        },
    )
    reason = with_schema(
        serializers.CharField(allow_blank=True, trim_whitespace=False),
        {"type": "string", "pattern": NON_BLANK, "maxLength": compensation.REASON_MAX_LENGTH},
    )


class CompensateAcceptedSerializer(serializers.Serializer):
    correlationUrn = serializers.CharField()  # noqa: N815
    sagaUrn = serializers.CharField()  # noqa: N815
    status = serializers.CharField()


class RunActionSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)


@extend_schema_field({"type": "string", "format": "date-time"})
class InstantField(serializers.Field):
    """An aware datetime rendered the one way the API renders instants (``nexa.platform.instants.iso``)."""

    def to_representation(self, value):
        return iso(value)


@extend_schema_field({"type": "string", "format": "date-time", "nullable": True})
class NullableInstantField(InstantField):
    pass


class SagaStepSerializer(serializers.Serializer):
    stepUrn = serializers.CharField(source="urn")  # noqa: N815
    position = serializers.IntegerField()
    name = serializers.CharField()
    type = serializers.CharField(source="kind")
    status = serializers.CharField()
    attempts = serializers.IntegerField()
    attemptLog = serializers.JSONField(source="attempt_log")  # noqa: N815
    idempotencyKey = serializers.CharField(source="idempotency_key")  # noqa: N815
    outcomeUnknown = serializers.BooleanField(source="outcome_unknown")  # noqa: N815
    settledAmount = serializers.DecimalField(  # noqa: N815
        source="settled_amount", max_digits=12, decimal_places=2, allow_null=True
    )
    startedAt = NullableInstantField(source="started_at")  # noqa: N815
    completedAt = NullableInstantField(source="completed_at")  # noqa: N815
    compensatedAt = NullableInstantField(source="compensated_at")  # noqa: N815
    nextAttemptAt = NullableInstantField(source="next_attempt_at")  # noqa: N815
    result = serializers.JSONField()
    error = serializers.JSONField()
    compensation = serializers.JSONField()


class SagaRunSerializer(serializers.Serializer):
    sagaUrn = serializers.CharField(source="urn")  # noqa: N815
    caseUrn = serializers.CharField(source="case.urn")  # noqa: N815
    subCaseUrn = serializers.CharField(source="sub_case.urn")  # noqa: N815
    correlationUrn = serializers.CharField(source="correlation_urn")  # noqa: N815
    status = serializers.CharField()
    requestedBy = serializers.CharField(source="requested_by")  # noqa: N815
    reason = serializers.CharField()
    category = serializers.SerializerMethodField()
    failure = serializers.JSONField()
    retries = serializers.IntegerField()
    fx = serializers.JSONField()
    createdAt = NullableInstantField(source="created_at")  # noqa: N815
    startedAt = NullableInstantField(source="started_at")  # noqa: N815
    finishedAt = NullableInstantField(source="finished_at")  # noqa: N815
    steps = SagaStepSerializer(source="steps.all", many=True)

    def get_category(self, run) -> str | None:
        return run.failure_category or None


class CaseProgressSerializer(serializers.Serializer):
    caseUrn = serializers.CharField(source="case.urn")  # noqa: N815
    runs = SagaRunSerializer(many=True)


class WalletEntrySerializer(serializers.Serializer):
    kind = serializers.CharField()
    amount = serializers.DecimalField(max_digits=12, decimal_places=2)
    currency = serializers.CharField()
    reference = serializers.CharField()
    providerRef = serializers.CharField(source="provider_ref")  # noqa: N815
    createdAt = InstantField(source="created_at")  # noqa: N815


class WalletSerializer(serializers.Serializer):
    subCaseUrn = serializers.CharField(source="sub_case_urn")  # noqa: N815
    balances = serializers.JSONField()
    entries = WalletEntrySerializer(many=True)


class SubCaseCompensateView(NexaAPIView):
    permission_classes = [OPERATOR]

    @extend_schema(
        operation_id="subcases_compensate",
        summary="Compensate a passenger (meals, cash, transport) through an async saga",
        description=(
            "202 Accepted at once with the saga's URN; progress at the Location. A stale version is a 409 with the "
            "current version; a sub-case locked by another operator a 409 with lockedBy; a stale X-Fencing-Token a "
            "409. The same body again (with or without Idempotency-Key) answers 202 with the same correlationUrn "
            "and starts nothing new."
        ),
        parameters=[SUB_CASE_URN_PARAMETER, FENCING_TOKEN_PARAMETER],
        request=CompensateRequestSerializer,
        responses={202: CompensateAcceptedSerializer},
        examples=[
            OpenApiExample(
                "A meal voucher and EU261 cash",
                request_only=True,
                value={
                    "version": 3,
                    "items": [
                        {"type": "MEAL", "amount": "25.00", "currency": "EUR"},
                        {"type": "CASH", "amount": "250.00", "currency": "EUR", "regulation": "EU261"},
                    ],
                    "reason": "Cancelled IB3166, 6 h delay",
                },
            )
        ],
    )
    def post(self, request, sub_case_urn: str):
        body = CompensateRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        run, _created = services.subcase_compensate(
            principal=request.auth,
            sub_case_urn=sub_case_urn,
            expected_version=data["version"],
            items=data["items"],
            reason=data["reason"],
            fencing_token=fencing_token_header(request),
        )
        return Response(
            CompensateAcceptedSerializer(
                {"correlationUrn": run.correlation_urn, "sagaUrn": run.urn, "status": "ACCEPTED"}
            ).data,
            status=http_status.HTTP_202_ACCEPTED,
            headers={"Location": f"/v1/orchestration/cases/{format_urn('case', run.case_id)}/progress"},
        )


class CaseProgressView(NexaAPIView):
    permission_classes = [OPERATOR]

    @extend_schema(
        operation_id="orchestration_case_progress",
        summary="Runtime progress of the case's saga runs and steps",
        parameters=[CASE_URN_PARAMETER],
        responses={200: CaseProgressSerializer},
    )
    def get(self, request, case_urn: str):
        case = selectors.case_get(principal=request.auth, case_urn=case_urn)
        runs = selectors.saga_runs_for_case(principal=request.auth, case=case)
        return Response(CaseProgressSerializer({"case": case, "runs": runs}).data)


class _RunActionView(NexaAPIView):
    permission_classes = [SUPERVISOR]
    action_name = ""

    def act(self, *, principal, run, reason):
        raise NotImplementedError

    def post(self, request, saga_urn: str):
        run = selectors.saga_run_get(principal=request.auth, saga_urn=saga_urn)
        body = RunActionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        run = self.act(principal=request.auth, run=run, reason=body.validated_data["reason"])
        run = selectors.saga_run_get(principal=request.auth, saga_urn=run.urn)
        return Response(SagaRunSerializer(run).data, status=http_status.HTTP_202_ACCEPTED)


class SagaRunRetryView(_RunActionView):
    @extend_schema(
        operation_id="orchestration_run_retry",
        summary="Retry a FAILED run from its failed step (409 in any other status)",
        parameters=[SAGA_URN_PARAMETER],
        request=RunActionSerializer,
        responses={202: SagaRunSerializer},
    )
    def post(self, request, saga_urn: str):
        return super().post(request, saga_urn)

    def act(self, *, principal, run, reason):
        return services.saga_run_retry(principal=principal, run=run, reason=reason)


class SagaRunCancelView(_RunActionView):
    @extend_schema(
        operation_id="orchestration_run_cancel",
        summary="Cancel a run: what was done is undone in reverse (409 unless PENDING, RUNNING or COMPLETED)",
        parameters=[SAGA_URN_PARAMETER],
        request=RunActionSerializer,
        responses={202: SagaRunSerializer},
    )
    def post(self, request, saga_urn: str):
        return super().post(request, saga_urn)

    def act(self, *, principal, run, reason):
        return services.saga_run_cancel(principal=principal, run=run, reason=reason)


class SubCaseWalletView(NexaAPIView):
    permission_classes = [OPERATOR]

    @extend_schema(
        operation_id="subcases_wallet",
        summary="The passenger's wallet: balance per currency and its ledger",
        parameters=[SUB_CASE_URN_PARAMETER],
        responses={200: WalletSerializer},
    )
    def get(self, request, sub_case_urn: str):
        sub_case = selectors.subcase_get(principal=request.auth, sub_case_urn=sub_case_urn)
        wallet = wallet_for_subcase(principal=request.auth, sub_case=sub_case)
        return Response(WalletSerializer(wallet).data)
