"""HTTP route of ground transfers: request rides for sub-cases or groups of a case through saga runs
(one ``transport.request_ride`` step per sub-case; progress at the orchestration route). Parse → call
one service → render."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework import status as http_status
from rest_framework.response import Response

from cases import selectors, services
from cases.api.views import CASE_URN_PARAMETER, OPERATOR
from nexa.platform.openapi import NON_BLANK, urn_schema, with_schema
from nexa.platform.views import NexaAPIView


class PlaceSerializer(serializers.Serializer):
    lat = serializers.FloatField(min_value=-90, max_value=90)
    lng = serializers.FloatField(min_value=-180, max_value=180)
    address = with_schema(
        serializers.CharField(required=False), {"type": "string", "pattern": NON_BLANK, "maxLength": 300}
    )


class TransfersRequestSerializer(serializers.Serializer):
    """Documents the body; the service validates it and names every invalid field."""

    subCaseUrns = serializers.ListField(  # noqa: N815
        child=with_schema(serializers.CharField(), urn_schema("subcase")), required=False, max_length=1000
    )
    groupUrns = serializers.ListField(  # noqa: N815
        child=with_schema(serializers.CharField(), urn_schema("group")), required=False, max_length=1000
    )
    pickup = PlaceSerializer()
    dropoff = PlaceSerializer()
    pickupAt = serializers.DateTimeField(required=False, help_text="ISO 8601 with a UTC offset; default now")  # noqa: N815
    provider = serializers.ChoiceField(choices=["UBER", "CABIFY"], required=False, help_text="default UBER")


class TransferSerializer(serializers.Serializer):
    transferUrn = serializers.CharField()  # noqa: N815
    subCaseUrn = serializers.CharField()  # noqa: N815
    sagaUrn = serializers.CharField()  # noqa: N815


class TransfersAcceptedSerializer(serializers.Serializer):
    correlationUrn = serializers.CharField()  # noqa: N815
    transfers = TransferSerializer(many=True)


class TransfersView(NexaAPIView):
    permission_classes = [OPERATOR]

    @extend_schema(
        operation_id="transport_transfers_request",
        summary="Request rides (Uber, Cabify) for sub-cases or groups of a case",
        description=(
            "202 at once with one transfer per sub-case (named ones plus the members of the named groups); each "
            "is a saga run with a single transport.request_ride step, so progress, graph:step:* events, retry and "
            "cancel are those of compensation sagas (Location). The same request again returns the same transfers. "
            "400 names every invalid field, also URNs that are not of this case."
        ),
        parameters=[CASE_URN_PARAMETER],
        request=TransfersRequestSerializer,
        responses={202: TransfersAcceptedSerializer},
    )
    def post(self, request, case_urn: str):
        case = selectors.case_get(principal=request.auth, case_urn=case_urn)
        data = request.data if isinstance(request.data, dict) else {}
        correlation_urn, transfers = services.transfers_request(
            principal=request.auth,
            case=case,
            sub_case_urns=data.get("subCaseUrns"),
            group_urns=data.get("groupUrns"),
            pickup=data.get("pickup"),
            dropoff=data.get("dropoff"),
            pickup_at=data.get("pickupAt"),
            provider=data.get("provider"),
        )
        return Response(
            {"correlationUrn": correlation_urn, "transfers": transfers},
            status=http_status.HTTP_202_ACCEPTED,
            headers={"Location": f"/v1/orchestration/cases/{case.urn}/progress"},
        )
