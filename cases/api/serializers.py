"""Wire shapes of the cases routes (camelCase, URNs as ids). Input serializers check types and
shapes only; business rules (catalog airport, manifest rows, duplicates) live in the services."""

from collections.abc import Mapping

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from booking.selectors import airport_get
from cases.models import (
    SUBCASE_TRANSITIONS,
    Case,
    CaseStatus,
    Cause,
    PassengerGroup,
    SpecialNeed,
    SubCase,
    SubCaseStatus,
    Tier,
)
from nexa.platform.filters import ChoiceFilter, InstantRangeFilters, QueryField, QueryFilters, UrnFilter
from nexa.platform.inputs import PG_INTEGER_MAX, AwareDateTimeField
from nexa.platform.openapi import FLIGHT_NUMBER_SCHEMA, NON_BLANK, urn_schema, with_schema
from nexa.platform.urns import format_urn

MAX_PASSENGERS_PER_REQUEST = 20_000


# --- passengers ------------------------------------------------------------------------------------


# cases.manifest's rules, stated for the schema (spaces are collapsed and codes upper-cased there).
_SEP = r"[\s\x1c-\x1f\-.()/]*"  # separators the manifest removes
PHONE_SCHEMA = {
    "type": "string",
    "pattern": rf"^{_SEP}(?:\+|00){_SEP}[1-9](?:{_SEP}[0-9]){{6,14}}{_SEP}$",
    "example": "+34600123456",
}


class PassengerRowSerializer(serializers.Serializer):
    """One manifest row (documentation of the shape; cases.manifest validates it)."""

    firstName = with_schema(  # noqa: N815 - wire name
        serializers.CharField(), {"type": "string", "pattern": NON_BLANK, "maxLength": 100, "example": "Ana"}
    )
    lastName = with_schema(  # noqa: N815
        serializers.CharField(), {"type": "string", "pattern": NON_BLANK, "maxLength": 100, "example": "Garcia"}
    )
    pnr = with_schema(
        serializers.CharField(help_text="Booking reference, 6 letters/digits."),
        {"type": "string", "pattern": r"^[\s\x1c-\x1f]*[A-Za-z0-9]{6}[\s\x1c-\x1f]*$", "example": "X7K2QP"},
    )
    tier = serializers.ChoiceField(choices=Tier.choices, required=False, default=Tier.ECONOMY)
    loyaltyTier = serializers.CharField(required=False, max_length=30, allow_blank=True)  # noqa: N815
    specialNeeds = serializers.ListField(  # noqa: N815
        child=serializers.ChoiceField(choices=SpecialNeed.choices), required=False
    )
    email = serializers.EmailField(required=False)
    phone = with_schema(serializers.CharField(required=False, help_text="E.164, e.g. +34600123456."), PHONE_SCHEMA)
    language = with_schema(
        serializers.CharField(required=False, default="en", help_text="Language tag, e.g. es or pt-BR."),
        {"type": "string", "pattern": r"^[\s\x1c-\x1f]*[A-Za-z]{2,3}(?:-[A-Za-z]{2})?[\s\x1c-\x1f]*$", "example": "es"},
    )
    onwardFlight = with_schema(  # noqa: N815
        serializers.CharField(required=False, help_text="Flight number, e.g. IB3166."), FLIGHT_NUMBER_SCHEMA
    )

    class Meta:
        ref_name = "PassengerRow"


@extend_schema_field(PassengerRowSerializer(many=True))
class PassengerRowsField(serializers.ListField):
    """A list of passenger objects, passed through as-is for the manifest validator (which names
    errors ``passengers[3].email``)."""

    def __init__(self, **kwargs):
        super().__init__(child=serializers.JSONField(), max_length=MAX_PASSENGERS_PER_REQUEST, **kwargs)


# --- requests ---------------------------------------------------------------------------------------


class CaseDeclareSerializer(serializers.Serializer):
    airport = with_schema(
        serializers.CharField(max_length=3, help_text="IATA code of the disrupted airport (in the catalog)."),
        {"type": "string", "pattern": r"^[\s\x1c-\x1f]*[A-Za-z]{3}[\s\x1c-\x1f]*$", "example": "MAD"},
    )
    # No max_length: inner whitespace is removed by normalise_flight_number, which bounds the number.
    flightNumber = with_schema(serializers.CharField(), FLIGHT_NUMBER_SCHEMA)  # noqa: N815
    flightDate = serializers.DateField(help_text="Operating date (local) of the flight.")  # noqa: N815
    scheduledDeparture = AwareDateTimeField()  # noqa: N815
    cause = serializers.ChoiceField(choices=Cause.choices)
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=4000)
    passengers = PassengerRowsField(required=False, default=list)
    destination = with_schema(
        serializers.CharField(
            required=False,
            allow_blank=True,
            default="",
            max_length=3,
            help_text="IATA code of the flight's final destination (in the catalog; the entitlements' distance).",
        ),
        # Blank (or only whitespace) is accepted and means "not known".
        {"type": "string", "pattern": r"^[\s\x1c-\x1f]*(?:[A-Za-z]{3}[\s\x1c-\x1f]*)?$", "example": "FRA"},
    )


class ManifestAppendSerializer(serializers.Serializer):
    passengers = PassengerRowsField(allow_empty=False)


class PassengerGroupsRequestSerializer(serializers.Serializer):
    groups = with_schema(
        serializers.ListField(
            child=serializers.ListField(child=serializers.CharField()),
            required=False,
            allow_null=True,
            help_text="Explicit groups of sub-case URNs; omit (send {}) to group automatically by PNR.",
        ),
        {
            "type": "array",
            "nullable": True,
            "minItems": 1,
            "items": {"type": "array", "minItems": 1, "items": urn_schema("subcase")},
        },
    )

    def to_internal_value(self, data):
        # URNs are checked by the service so each bad entry is named groups[i][j]; only the outer
        # shape is checked here.
        if not isinstance(data, Mapping):
            return super().to_internal_value(data)  # "Invalid data. Expected a dictionary …" (400)
        if isinstance(data, dict) and "groups" in data and data["groups"] is not None:
            if not isinstance(data["groups"], list):
                raise serializers.ValidationError({"groups": ["must be a list of lists of sub-case URNs"]})
            return {"groups": data["groups"]}
        return {"groups": None}


class SubCaseTransitionSerializer(serializers.Serializer):
    transition = serializers.ChoiceField(choices=SUBCASE_TRANSITIONS)
    version = serializers.IntegerField(
        min_value=1, max_value=PG_INTEGER_MAX, help_text="The version you read (optimistic concurrency)."
    )
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=1000)


# --- responses --------------------------------------------------------------------------------------


def _status_counts_field():
    return serializers.DictField(
        child=serializers.IntegerField(), help_text="Sub-cases by status (every status listed)."
    )


class CaseSerializer(serializers.Serializer):
    urn = serializers.CharField()
    airline = serializers.CharField()
    airport = serializers.CharField()
    flightNumber = serializers.CharField(source="flight_number")  # noqa: N815
    flightDate = serializers.DateField(source="flight_date")  # noqa: N815
    scheduledDeparture = serializers.DateTimeField(source="scheduled_departure")  # noqa: N815
    cause = serializers.ChoiceField(choices=Cause.choices)
    note = serializers.CharField()
    status = serializers.CharField(help_text="Derived from the sub-cases; see docs/cases.md.")
    version = serializers.IntegerField()
    declaredBy = serializers.CharField(source="declared_by")  # noqa: N815
    retentionUntil = serializers.DateField(source="retention_until")  # noqa: N815
    origin = serializers.SerializerMethodField(help_text="IATA code the flight departs from.")
    destination = serializers.SerializerMethodField(help_text="IATA code of the final destination, if known.")
    regulation = serializers.SerializerMethodField(
        help_text="EU261, UK261, APPR, DOT or AIRLINE_GOODWILL; null: derived when entitlements are computed."
    )
    createdAt = serializers.DateTimeField(source="created_at")  # noqa: N815
    updatedAt = serializers.DateTimeField(source="updated_at")  # noqa: N815

    class Meta:
        ref_name = "Case"

    def get_origin(self, case: Case) -> str:
        return case.origin or case.airport

    def get_destination(self, case: Case) -> str | None:
        return case.destination or None

    def get_regulation(self, case: Case) -> str | None:
        return case.regulation or None


class CaseDetailSerializer(CaseSerializer):
    counts = _status_counts_field()
    passengerCount = serializers.IntegerField(source="passenger_count")  # noqa: N815

    class Meta:
        ref_name = "CaseDetail"


def case_detail_data(case: Case, counts: dict[str, int]) -> dict:
    """The case rendered with its sub-cases counted by status (``counts`` from the selector)."""
    case.counts, case.passenger_count = counts, sum(counts.values())
    return CaseDetailSerializer(case).data


class SubCaseSerializer(serializers.Serializer):
    urn = serializers.CharField()
    caseUrn = serializers.SerializerMethodField()  # noqa: N815
    groupUrn = serializers.SerializerMethodField()  # noqa: N815
    firstName = serializers.CharField(source="first_name")  # noqa: N815
    lastName = serializers.CharField(source="last_name")  # noqa: N815
    pnr = serializers.CharField()
    tier = serializers.ChoiceField(choices=Tier.choices)
    loyaltyTier = serializers.CharField(source="loyalty_tier")  # noqa: N815
    specialNeeds = serializers.ListField(source="special_needs", child=serializers.CharField())  # noqa: N815
    email = serializers.CharField()
    phone = serializers.CharField()
    language = serializers.CharField()
    onwardFlight = serializers.CharField(source="onward_flight")  # noqa: N815
    status = serializers.ChoiceField(choices=SubCaseStatus.choices)
    version = serializers.IntegerField()
    anonymisedAt = serializers.DateTimeField(source="anonymised_at", allow_null=True)  # noqa: N815
    createdAt = serializers.DateTimeField(source="created_at")  # noqa: N815
    updatedAt = serializers.DateTimeField(source="updated_at")  # noqa: N815

    class Meta:
        ref_name = "SubCase"

    def get_caseUrn(self, sub_case: SubCase) -> str:  # noqa: N802
        return format_urn("case", sub_case.case_id)

    def get_groupUrn(self, sub_case: SubCase) -> str | None:  # noqa: N802
        return format_urn("group", sub_case.group_id) if sub_case.group_id else None


class ManifestAppendResultSerializer(serializers.Serializer):
    added = serializers.IntegerField()
    caseStatus = serializers.CharField()  # noqa: N815
    items = SubCaseSerializer(many=True)


class PassengerGroupSerializer(serializers.Serializer):
    urn = serializers.CharField()
    label = serializers.CharField()
    mixedTier = serializers.BooleanField(source="mixed_tier")  # noqa: N815
    subCaseUrns = serializers.SerializerMethodField()  # noqa: N815
    tiers = serializers.SerializerMethodField()

    class Meta:
        ref_name = "PassengerGroup"

    def get_subCaseUrns(self, group: PassengerGroup) -> list[str]:  # noqa: N802
        return [member.urn for member in group.members.all()]

    def get_tiers(self, group: PassengerGroup) -> list[str]:
        return sorted({member.tier for member in group.members.all()})


class PassengerGroupsResultSerializer(serializers.Serializer):
    groups = PassengerGroupSerializer(many=True, help_text="Every group of the case after regrouping.")


# --- list filters (nexa.platform.filters) --------------------------------------------------------------


class AirportFilter(QueryField):
    """An IATA code of the catalog, any case, surrounding whitespace allowed."""

    def to_internal_value(self, data):
        code = data.strip().upper()
        if len(code) != 3 or airport_get(iata=code) is None:
            raise serializers.ValidationError(f"{data!r} is not an IATA airport code")
        return code


class CaseListFilters(InstantRangeFilters):
    """``GET /v1/cases``: ``from``/``to`` bound the scheduled departure, half-open ``[from, to)``."""

    status = ChoiceFilter(CaseStatus.values, empty_is_absent=True)
    airport = AirportFilter(empty_is_absent=True)


class ManifestFilters(QueryFilters):
    status = ChoiceFilter(SubCaseStatus.values, empty_is_absent=True)
    group = UrnFilter("group", empty_is_absent=True)
