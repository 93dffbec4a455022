"""HTTP routes of contracts (spec 000 § Contracts): parse → call one service or selector → render.

* ``GET /v1/contracts`` — active contracts (current versions not ended), by airport and night; paginated.
* ``POST /v1/contracts`` — create (201), or update by ``urn`` + ``version`` into a new version (200).
* ``POST /v1/contracts/analyze-pdf`` — proposed terms from a PDF, PNG or JPEG; nothing is saved.
"""

import datetime as dt
import re
from decimal import Decimal

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework import status as http_status
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from booking.contracts import extraction, selectors, services
from booking.contracts.models import Meal
from booking.contracts.refiner import configured_refiner
from booking.selectors import airport_get
from nexa.platform.idempotency import parse_idempotency_key
from nexa.platform.inputs import PG_INTEGER_MAX
from nexa.platform.openapi import EMPTY_IS_ABSENT, problem, urn_schema, with_schema
from nexa.platform.pagination import extend_schema_paginated, paginate
from nexa.platform.problems import validation_problem
from nexa.platform.roles import MinRole, Role
from nexa.platform.strict_fields import ClosedSerializer
from nexa.platform.urns import InvalidUrn, parse_urn
from nexa.platform.views import NexaAPIView

SUPERVISOR = MinRole(Role.OPS_SUPERVISOR)
AMOUNT_PATTERN = r"^[0-9]{1,8}(\.[0-9]{1,2})?$"
CURRENCY_PATTERN = r"^[A-Z]{3}$"
AIRPORT_SCHEMA = {"type": "string", "pattern": r"^[\s\x1c-\x1f]*[A-Za-z]{3}[\s\x1c-\x1f]*$", "example": "MAD"}
RELEASE_HOURS_MAX = 720  # 30 days
ALLOTMENT_MAX = 10_000
CANCELLATION_TERMS_MAX = 2000


# --- wire shapes ----------------------------------------------------------------------------------------


class ContractRateSerializer(ClosedSerializer):
    amount = with_schema(
        serializers.CharField(
            help_text="Per room per night, a decimal string with at most two decimals.", trim_whitespace=False
        ),
        {"type": "string", "pattern": AMOUNT_PATTERN, "example": "89.00"},
    )
    currency = with_schema(
        serializers.CharField(help_text="ISO 4217.", trim_whitespace=False),
        {"type": "string", "pattern": CURRENCY_PATTERN, "example": "EUR"},
    )

    def validate_amount(self, value):
        if not re.fullmatch(AMOUNT_PATTERN.strip("^$"), value):
            raise serializers.ValidationError("A decimal string such as 89.00 (at most 8 digits, 2 decimals).")
        return value

    def validate_currency(self, value):
        if not re.fullmatch(CURRENCY_PATTERN.strip("^$"), value):
            raise serializers.ValidationError("An ISO 4217 code in capitals, e.g. EUR.")
        return value


class ContractWriteSerializer(ClosedSerializer):
    urn = with_schema(
        serializers.CharField(
            required=False, trim_whitespace=False, help_text="Give it (with version) to update that contract."
        ),
        urn_schema("contract"),
    )
    version = serializers.IntegerField(
        required=False, min_value=1, max_value=PG_INTEGER_MAX, help_text="The version you read (required with urn)."
    )
    hotelUrn = with_schema(serializers.CharField(trim_whitespace=False), urn_schema("hotel"))  # noqa: N815
    airport = with_schema(serializers.CharField(help_text="IATA code of the hotel's airport."), AIRPORT_SCHEMA)
    validFrom = serializers.DateField(help_text="First night covered.")  # noqa: N815
    validTo = serializers.DateField(help_text="Last night covered (inclusive); not before validFrom.")  # noqa: N815
    allotment = serializers.IntegerField(min_value=1, max_value=ALLOTMENT_MAX, help_text="Rooms per night.")
    rate = ContractRateSerializer()
    releaseHours = serializers.IntegerField(  # noqa: N815
        min_value=0,
        max_value=RELEASE_HOURS_MAX,
        help_text="Rooms not called off this many hours before the night starts go back to the hotel.",
    )
    mealsIncluded = serializers.ListField(  # noqa: N815
        child=serializers.ChoiceField(choices=Meal.choices), required=False, default=list, max_length=3
    )
    cancellationTerms = serializers.CharField(  # noqa: N815
        required=False, allow_blank=True, default="", max_length=CANCELLATION_TERMS_MAX, trim_whitespace=False
    )

    def validate_urn(self, value):

        try:
            parse_urn(value, "contract")
        except InvalidUrn as error:
            raise serializers.ValidationError(error.message) from None
        return value

    def validate_hotelUrn(self, value):  # noqa: N802

        try:
            parse_urn(value, "hotel")
        except InvalidUrn as error:
            raise serializers.ValidationError(error.message) from None
        return value

    def validate_airport(self, value):
        code = value.strip().upper()
        if not re.fullmatch(r"[A-Z]{3}", code):
            raise serializers.ValidationError("Three letters (IATA).")
        return code

    def validate_mealsIncluded(self, value):  # noqa: N802
        return [meal for meal in Meal.values if meal in value]  # in meal order, each once

    def validate(self, attrs):
        if "urn" in attrs and "version" not in attrs:
            raise serializers.ValidationError({"version": "Required with urn (the version you read)."})
        if "version" in attrs and "urn" not in attrs:
            raise serializers.ValidationError({"urn": "Required with version (the contract to update)."})
        return attrs


class ContractSerializer(serializers.Serializer):
    urn = with_schema(serializers.CharField(), urn_schema("contract"))
    version = serializers.IntegerField(min_value=1)
    hotelUrn = with_schema(serializers.CharField(), urn_schema("hotel"))  # noqa: N815
    airport = serializers.CharField()
    validFrom = serializers.DateField()  # noqa: N815
    validTo = serializers.DateField()  # noqa: N815
    allotment = serializers.IntegerField()
    rate = ContractRateSerializer()
    releaseHours = serializers.IntegerField()  # noqa: N815
    mealsIncluded = serializers.ListField(child=serializers.ChoiceField(choices=Meal.choices))  # noqa: N815
    cancellationTerms = serializers.CharField(allow_blank=True)  # noqa: N815
    createdBy = serializers.CharField(help_text="Operator URN who wrote this version.")  # noqa: N815
    createdAt = serializers.DateTimeField(help_text="When this version was written.")  # noqa: N815


def contract_data(contract) -> dict:
    data = services.contract_snapshot(contract)
    data["urn"] = data.pop("contractUrn")
    data["createdBy"] = contract.created_by
    data["createdAt"] = serializers.DateTimeField().to_representation(contract.created_at)
    return data


# analyze-pdf


class AnalyzeUploadSerializer(serializers.Serializer):
    file = serializers.FileField(
        allow_empty_file=False,
        help_text="A PDF, PNG or JPEG of at most 10 MiB (recognised by its content).",
    )


class _Proposed(serializers.Serializer):
    confidence = serializers.FloatField(min_value=0, max_value=1)
    snippet = serializers.CharField(allow_blank=True, help_text="The text the value was read from.")


_proposed_classes: dict[str, type[serializers.Serializer]] = {}


def _proposed(name: str, value: serializers.Field) -> type[serializers.Serializer]:
    """One component per value type (``ProposedDate`` …), shared by the fields of that type."""
    if name not in _proposed_classes:
        _proposed_classes[name] = _proposed_class(name, value)
    return _proposed_classes[name]


def _proposed_class(name: str, value: serializers.Field) -> type[serializers.Serializer]:
    return type(
        f"Proposed{name}Serializer",
        (_Proposed,),
        {"value": value, "Meta": type("Meta", (), {"ref_name": f"Proposed{name}"}), "__module__": __name__},
    )


class ProposedTermsSerializer(serializers.Serializer):
    hotelName = _proposed("Text", serializers.CharField())(required=False)  # noqa: N815
    validFrom = _proposed("Date", serializers.DateField())(required=False)  # noqa: N815
    validTo = _proposed("Date", serializers.DateField())(required=False)  # noqa: N815
    allotment = _proposed("Integer", serializers.IntegerField())(required=False)
    rate = _proposed("Rate", ContractRateSerializer())(required=False)
    releaseHours = _proposed("Integer", serializers.IntegerField())(required=False)  # noqa: N815
    mealsIncluded = _proposed(  # noqa: N815
        "Meals", serializers.ListField(child=serializers.ChoiceField(choices=Meal.choices))
    )(required=False)
    cancellationTerms = _proposed("Text", serializers.CharField())(required=False)  # noqa: N815


class ContractAnalysisSerializer(serializers.Serializer):
    terms = ProposedTermsSerializer(help_text="Only the fields found.")
    missing = serializers.ListField(
        child=serializers.ChoiceField(choices=list(extraction.FIELDS)), help_text="Fields not found in the file."
    )
    kind = serializers.ChoiceField(choices=[str(kind) for kind in extraction.FileKind])
    source = serializers.ChoiceField(
        choices=["text", "ocr", "text+ocr"], help_text="text: the PDF's text layer; ocr: recognised from pixels."
    )
    pages = serializers.IntegerField(min_value=1)
    refinedBy = serializers.CharField(  # noqa: N815
        allow_null=True, help_text="The hosted model that refined the terms, when one is configured."
    )


# --- filters --------------------------------------------------------------------------------------------


def _airport_param(params) -> str | None:
    raw = params.get("airport")
    if raw is None or raw == "":
        return None
    code = raw.strip().upper()
    if len(code) != 3 or airport_get(iata=code) is None:
        raise validation_problem([{"field": "airport", "message": f"{raw!r} is not an IATA airport code"}])
    return code


def _date_param(params) -> dt.date | None:
    raw = params.get("date")
    if raw is None or raw == "":
        return None
    try:
        if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", raw):
            raise ValueError(raw)
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise validation_problem([{"field": "date", "message": "must be a date (2027-01-31)"}]) from None


# --- routes ---------------------------------------------------------------------------------------------


class ContractsView(NexaAPIView):
    permission_classes = [SUPERVISOR]

    @extend_schema_paginated(
        ContractSerializer,
        operation_id="contracts_list",
        summary="List active contracts",
        description=(
            "The current version of each of the airline's contracts that has not ended (validTo ≥ today), "
            "ordered by validFrom. Filters are validated: a bad value is a 400 naming it."
        ),
        parameters=[
            OpenApiParameter(
                "airport",
                {"type": "string", "pattern": r"^[\s\x1c-\x1f]*[A-Za-z]{3}[\s\x1c-\x1f]*$"},
                required=False,
                description="IATA code: contracts of hotels at this airport.",
                extensions=EMPTY_IS_ABSENT,
            ),
            OpenApiParameter(
                "date",
                {"type": "string", "format": "date"},
                required=False,
                description="A night (YYYY-MM-DD): contracts in force that night.",
                extensions=EMPTY_IS_ABSENT,
            ),
        ],
    )
    def get(self, request):
        contracts = selectors.contracts_active(
            principal=request.auth,
            today=timezone.localdate(),
            airport=_airport_param(request.query_params),
            on=_date_param(request.query_params),
        )
        return paginate(request, contracts, ordering=("valid_from", "id"), serialize=contract_data)

    @extend_schema(
        operation_id="contracts_save",
        summary="Create a contract, or update one into a new version",
        description=(
            "Without urn: a new contract at version 1 (201). With urn and version: version + 1 of that contract "
            "(200); earlier versions are kept. A stale version is a 409 carrying the current version; another "
            "current contract of the airline for the same hotel on any of the same nights is a 422 "
            "contract-overlap naming each one in errors."
        ),
        request=ContractWriteSerializer,
        responses={
            200: ContractSerializer,
            201: ContractSerializer,
            404: problem("urn names no contract of your airline (another airline's is a 404 too)."),
        },
    )
    def post(self, request):
        body = ContractWriteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        terms = services.ContractTerms(
            hotel_urn=data["hotelUrn"],
            airport=data["airport"],
            valid_from=data["validFrom"],
            valid_to=data["validTo"],
            allotment=data["allotment"],
            rate_amount=_decimal(data["rate"]["amount"]),
            rate_currency=data["rate"]["currency"],
            release_hours=data["releaseHours"],
            meals_included=tuple(data["mealsIncluded"]),
            cancellation_terms=data["cancellationTerms"],
        )
        if "urn" in data:
            contract = services.contract_update(
                principal=request.auth, contract_urn=data["urn"], expected_version=data["version"], terms=terms
            )
            return Response(contract_data(contract), status=http_status.HTTP_200_OK)
        contract = services.contract_create(principal=request.auth, terms=terms)
        return Response(
            contract_data(contract), status=http_status.HTTP_201_CREATED, headers={"Location": "/v1/contracts"}
        )


def _decimal(raw: str):

    return Decimal(raw)


class ContractAnalyzeView(NexaAPIView):
    """Reads a file and writes nothing: a retry is always safe, so ``Idempotency-Key`` is accepted and not
    stored (storing it would mean reading a 10 MiB body into memory to fingerprint it, and multipart
    boundaries differ between two sends of the same file)."""

    permission_classes = [SUPERVISOR]
    parser_classes = [MultiPartParser]

    def dispatch(self, request, *args, **kwargs):
        return APIView.dispatch(self, request, *args, **kwargs)

    @extend_schema(
        operation_id="contracts_analyze_pdf",
        summary="Propose contract terms from a PDF or an image",
        description=(
            "multipart/form-data with one part, file: a PDF (text or scanned), PNG or JPEG of at most 10 MiB. "
            "Answers the terms found, each with a confidence (0 to 1) and the snippet it came from, and the fields "
            "not found. Nothing is saved. 413: larger than 10 MiB; 415: not a PDF, PNG or JPEG (by content); "
            "422 encrypted-pdf: the PDF needs a password; 422 unreadable-file: corrupt or truncated."
        ),
        request={"multipart/form-data": AnalyzeUploadSerializer},
        responses={200: ContractAnalysisSerializer},
    )
    def post(self, request):
        parse_idempotency_key(request.headers.get("Idempotency-Key"))  # a malformed key is still a 400
        upload = request.FILES.get("file")
        if upload is None:
            raise validation_problem([{"field": "file", "message": "Attach the file as the multipart part 'file'."}])
        if upload.size > extraction.MAX_UPLOAD_BYTES:
            raise extraction.too_large_problem()
        if upload.size == 0:
            raise validation_problem([{"field": "file", "message": "The file is empty."}])
        data = upload.read(extraction.MAX_UPLOAD_BYTES + 1)
        analysis = extraction.analyze(data, refiner=configured_refiner())
        return Response(analysis.as_json())
