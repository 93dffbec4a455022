"""Allocation routes: ``POST /v1/allocation/allocate`` and the composition route
``POST /v1/cases/{case_urn}/allocate`` (ARCHITECTURE §3.8). Both answer 201 with exactly the stored plan
(``Allocation.plan``, docs/booking.md § Allocation (routes)). Parse → call the one service → render."""

from collections.abc import Mapping

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework import status as http_status
from rest_framework.response import Response

from cases import services
from cases.api.views import CASE_URN_PARAMETER, SUPERVISOR
from nexa.platform.openapi import problem, urn_schema, with_schema
from nexa.platform.problems import validation_problem
from nexa.platform.urns import InvalidUrn, parse_urn
from nexa.platform.views import NexaAPIView


class AllocateRequestSerializer(serializers.Serializer):
    demandUrn = with_schema(serializers.CharField(), urn_schema("demand"))  # noqa: N815 - wire name

    def to_internal_value(self, data):
        # One named error per problem, with the route's own message (a DRF default would say "This field…").
        if not isinstance(data, Mapping):
            raise validation_problem([{"field": "body", "message": "must be a JSON object {demandUrn}"}])
        unknown = sorted(set(data) - {"demandUrn"})
        errors = [{"field": name, "message": "is not a field of this request"} for name in unknown]
        raw = data.get("demandUrn")
        if raw is None:
            errors.insert(0, {"field": "demandUrn", "message": "is required"})
        else:
            try:
                parse_urn(raw, "demand")
            except InvalidUrn as error:
                errors.insert(0, {"field": "demandUrn", "message": error.message})
        if errors:
            raise validation_problem(errors)
        return {"demand_urn": raw}


class PlanMoneySerializer(serializers.Serializer):
    amount = serializers.CharField(help_text='decimal string, e.g. "89.00"')
    currency = serializers.CharField(help_text="ISO 4217, the airline's settlement currency")


class PlanRoomSerializer(serializers.Serializer):
    occupants = serializers.ListField(child=serializers.CharField(), help_text="sub-case URNs")
    accessible = serializers.BooleanField()
    escort = serializers.BooleanField(help_text="an unaccompanied minor's room: staff escort them")


class PlanOfferSerializer(serializers.Serializer):
    offerId = serializers.CharField(  # noqa: N815
        help_text="contract~<contract URN> for an allotment, <vendor>~<vendor ref> for a vendor offer"
    )
    hotelUrn = serializers.CharField(allow_null=True)  # noqa: N815
    hotelName = serializers.CharField()  # noqa: N815
    # A pattern, not an enum: "source" is also a field of the hotel search's offers and the policies, with other
    # values, and drf-spectacular would name the enum components apart by hash.
    source = with_schema(
        serializers.CharField(help_text="CONTRACT or VENDOR"), {"type": "string", "pattern": "^(CONTRACT|VENDOR)$"}
    )
    vendor = serializers.CharField(help_text='vendor code, "" for a contract')
    contractUrn = serializers.CharField(help_text='"" for a vendor offer')  # noqa: N815
    nightlyRate = PlanMoneySerializer()  # noqa: N815


class PlanAssignmentSerializer(PlanOfferSerializer):
    groupUrn = serializers.CharField()  # noqa: N815
    groupLabel = serializers.CharField()  # noqa: N815
    rooms = PlanRoomSerializer(many=True)
    policyUrn = serializers.CharField()  # noqa: N815
    reason = serializers.CharField(help_text="why this hotel, in words")
    checkIn = serializers.DateField()  # noqa: N815
    nights = serializers.IntegerField()
    alternatives = PlanOfferSerializer(many=True, help_text="other compliant offers for the whole group, best first")


class PlanUnallocatedSerializer(serializers.Serializer):
    groupUrn = serializers.CharField()  # noqa: N815
    groupLabel = serializers.CharField()  # noqa: N815
    subCaseUrns = serializers.ListField(child=serializers.CharField())  # noqa: N815
    category = serializers.ChoiceField(
        choices=["ALLOCATION_FAILED", "POLICY_VIOLATION", "MIXED_TIER_GROUP", "DATA_INCOMPLETE"]
    )
    reason = serializers.CharField()


class PlanPartialFailureSerializer(serializers.Serializer):
    domain = serializers.CharField(help_text='a vendor code, "contracts", "policies" or "booking" (a whole search)')
    status = serializers.CharField(help_text='"timeout", "error", "circuit-open" or an HTTP status')
    detail = serializers.CharField()


class AllocationPlanSerializer(serializers.Serializer):
    allocationUrn = serializers.CharField()  # noqa: N815
    demandUrn = serializers.CharField()  # noqa: N815
    caseUrn = serializers.CharField()  # noqa: N815
    assignments = PlanAssignmentSerializer(many=True)
    unallocated = PlanUnallocatedSerializer(many=True)
    partialFailures = PlanPartialFailureSerializer(many=True)  # noqa: N815


_DESCRIPTION = (
    "Allocates an APPROVED demand wave: policy-compliant rooms for its GROUPED passengers, contracts before "
    "vendor inventory (policies, contract allotments and one hotel scatter-gather per need run concurrently, "
    "3 s per call; a vendor that failed or timed out is in partialFailures and the rest is still placed). "
    "Placed sub-cases go GROUPED → ALLOCATED; the others → MANUAL_REVIEW with an internal allocation:failed "
    "event carrying category and reason. The answer is the stored plan, which book-rooms reads. "
    "409 demand-not-approved (demandStatus: PENDING_APPROVAL, EXPIRED, REJECTED or ALLOCATED — also the loser "
    "of two concurrent allocations), 409 nothing-to-allocate, 404 for another airline's demand. 503 (failedDomain "
    "policies or booking, Retry-After 30) when the policies could not be read, or no hotel vendor answered and "
    "the contracts cannot place every group: an outage is not a verdict, so nothing is written and the wave "
    "stays APPROVED."
)

_UNAVAILABLE = problem("The policies or every hotel vendor could not be reached; nothing was written.")


def _created(allocation) -> Response:
    return Response(allocation.plan, status=http_status.HTTP_201_CREATED)


class AllocationAllocateView(NexaAPIView):
    permission_classes = [SUPERVISOR]

    @extend_schema(
        operation_id="allocation_allocate",
        summary="Trigger allocation explicitly",
        description=_DESCRIPTION,
        request=AllocateRequestSerializer,
        responses={
            201: AllocationPlanSerializer,
            404: OpenApiResponse(description="The demand is not one of your airline's (or does not exist)."),
            503: _UNAVAILABLE,
        },
    )
    def post(self, request):
        body = AllocateRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return _created(services.allocation_create(principal=request.auth, **body.validated_data))


class CaseAllocateView(NexaAPIView):
    permission_classes = [SUPERVISOR]

    @extend_schema(
        operation_id="cases_allocate",
        summary="Composition: validates via cases, dispatches to allocation",
        description=(
            "The same as POST /v1/allocation/allocate for a demand of this case, validated through cases first: "
            "the case must be yours (404) and the demand one of its waves (422 naming demandUrn otherwise). "
            + _DESCRIPTION
        ),
        parameters=[CASE_URN_PARAMETER],
        request=AllocateRequestSerializer,
        responses={201: AllocationPlanSerializer, 503: _UNAVAILABLE},
    )
    def post(self, request, case_urn: str):
        parse_urn(case_urn, "case")  # a malformed path URN is a 400 before the body is read
        body = AllocateRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        allocation = services.allocation_create(principal=request.auth, case_urn=case_urn, **body.validated_data)
        return _created(allocation)
