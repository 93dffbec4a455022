"""HTTP route of ground transfers: request rides for sub-cases or groups of a case through saga runs
(one ``transport.request_ride`` step per sub-case; progress at the orchestration route). Parse → call
one service → render."""

import datetime as dt
import uuid
from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework import status as http_status
from rest_framework.response import Response

from cases import compensation, selectors, services
from cases.api.views import CASE_URN_PARAMETER, OPERATOR
from cases.services import TRANSFER_DEFAULT_PROVIDER, TRANSFER_MAX_SUBCASES
from nexa.platform.openapi import NON_BLANK, urn_schema, with_schema
from nexa.platform.problems import validation_problem
from nexa.platform.urns import InvalidUrn, parse_urn
from nexa.platform.views import NexaAPIView


class PlaceSerializer(serializers.Serializer):
    lat = serializers.FloatField(min_value=-90, max_value=90)
    lng = serializers.FloatField(min_value=-180, max_value=180)
    address = with_schema(
        serializers.CharField(required=False), {"type": "string", "pattern": NON_BLANK, "maxLength": 300}
    )


def _urn_ids(raw: Any, *, field: str, kind: str, errors: list[dict[str, str]]) -> list[uuid.UUID]:
    """The ids of a list of URNs of ``kind``; each malformed one named in ``errors`` (``field[i]``)."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        errors.append({"field": field, "message": "must be a list of URNs"})
        return []
    if len(raw) > TRANSFER_MAX_SUBCASES:
        errors.append({"field": field, "message": f"at most {TRANSFER_MAX_SUBCASES} URNs"})
        return []
    ids = []
    for index, value in enumerate(raw):
        try:
            ids.append(parse_urn(value, kind).id)
        except InvalidUrn as error:
            errors.append({"field": f"{field}[{index}]", "message": error.message})
    return ids


class TransfersRequestSerializer(serializers.Serializer):
    """The body. Its fields document it; validation names every invalid field at once, with the
    route's own fields and messages (``subCaseUrns[i]``, ``pickup``, ``pickupAt``, ``provider``), and
    gives the service typed values: ``subcase_ids`` and ``group_ids`` (UUIDs in the body's order, at
    least one), ``pickup`` and ``dropoff`` (``{lat, lng, address?}``), ``pickup_at`` (a future aware
    datetime, ``None`` for now) and ``provider`` (default UBER)."""

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

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        now = timezone.now()
        body = data if isinstance(data, dict) else {}
        errors: list[dict[str, str]] = []
        subcase_ids = _urn_ids(body.get("subCaseUrns"), field="subCaseUrns", kind="subcase", errors=errors)
        group_ids = _urn_ids(body.get("groupUrns"), field="groupUrns", kind="group", errors=errors)
        if not errors and not subcase_ids and not group_ids:
            errors.append({"field": "subCaseUrns", "message": "give at least one sub-case or group (groupUrns)"})
        place_errors: list[dict[str, str]] = []
        places = {name: compensation._place(body, name, "", place_errors) for name in ("pickup", "dropoff")}
        when = compensation._future_datetime(body, "pickupAt", "", place_errors, now=now)
        errors += [{**error, "field": error["field"].lstrip(".")} for error in place_errors]
        provider = body.get("provider")
        provider = TRANSFER_DEFAULT_PROVIDER if provider is None else provider
        if provider not in compensation.TRANSPORT_PROVIDERS:
            providers = ", ".join(compensation.TRANSPORT_PROVIDERS)
            errors.append({"field": "provider", "message": f"must be one of {providers}"})
        if errors:
            raise validation_problem(errors)
        return {
            "subcase_ids": subcase_ids,
            "group_ids": group_ids,
            "pickup": places["pickup"],
            "dropoff": places["dropoff"],
            "pickup_at": dt.datetime.fromisoformat(when) if when else None,
            "provider": provider,
        }


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
        # A body that is not an object (a list, null) is validated as {}, naming the fields it lacks.
        body = TransfersRequestSerializer(data=request.data if isinstance(request.data, dict) else {})
        body.is_valid(raise_exception=True)
        correlation_urn, transfers = services.transfers_request(
            principal=request.auth, case=case, **body.validated_data
        )
        return Response(
            TransfersAcceptedSerializer({"correlationUrn": correlation_urn, "transfers": transfers}).data,
            status=http_status.HTTP_202_ACCEPTED,
            headers={"Location": f"/v1/orchestration/cases/{case.urn}/progress"},
        )
