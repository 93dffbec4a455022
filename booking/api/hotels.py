"""HTTP routes of the hotel catalog and search (docs/hotels.md): parse → call one function → render."""

from __future__ import annotations

import re
from datetime import timedelta

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from booking.hotel_search import case_context, hotels_search
from booking.hotels import hotels_list
from booking.models import ReservationSource
from booking.selectors import case_hotel_counts
from nexa.platform.inputs import strict_int_or_none
from nexa.platform.openapi import problem, urn_schema, with_schema
from nexa.platform.pagination import extend_schema_paginated, paginate, row_serializer
from nexa.platform.problems import validation_problem
from nexa.platform.roles import MinRole, Role
from nexa.platform.urns import parse_urn
from nexa.platform.views import NexaAPIView

IATA = re.compile(r"^[A-Za-z]{3}\Z")
IATA_SCHEMA = {"type": "string", "pattern": "^[A-Za-z]{3}$", "example": "MAD"}
# The same choices (and labels) as cases.models.Tier, so the schema has one Tier enum (booking may not import cases).
TIERS = [("ECONOMY", "Economy"), ("PREMIUM_ECONOMY", "Premium Economy"), ("BUSINESS", "Business"), ("FIRST", "First")]
MAX_NIGHTS = 30
MAX_ROOMS = 100
MAX_OCCUPANCY = 8
MAX_DAYS_AHEAD = 365
MAX_DISTANCE_KM = 1000


# --- serializers ---------------------------------------------------------------------------------


class HotelSerializer(serializers.Serializer):
    urn = with_schema(serializers.CharField(), urn_schema("hotel"))
    name = serializers.CharField()
    airport = serializers.CharField()
    lat = serializers.FloatField()
    lng = serializers.FloatField()
    distanceKm = serializers.FloatField(source="distance_km", help_text="Great-circle km from the airport.")  # noqa: N815
    stars = serializers.IntegerField()
    accessibleRooms = serializers.IntegerField(source="accessible_rooms")  # noqa: N815
    address = serializers.CharField()
    phone = serializers.CharField()
    vendorIds = serializers.DictField(  # noqa: N815
        source="vendor_ids", child=serializers.CharField(), help_text="{vendor: the vendor's id of this hotel}"
    )


class MoneySerializer(serializers.Serializer):
    amount = with_schema(serializers.CharField(), {"type": "string", "pattern": r"^-?\d+\.\d{2}$", "example": "120.00"})
    currency = with_schema(serializers.CharField(), {"type": "string", "pattern": "^[A-Z]{3}$", "example": "EUR"})


class HotelSearchRequestSerializer(serializers.Serializer):
    airport = with_schema(
        serializers.CharField(required=False, help_text="IATA code; give airport or caseUrn, not both."), IATA_SCHEMA
    )
    caseUrn = with_schema(serializers.CharField(required=False), urn_schema("case"))  # noqa: N815
    checkIn = serializers.DateField(help_text="First night (local date of the hotel).")  # noqa: N815
    nights = serializers.IntegerField(min_value=1, max_value=MAX_NIGHTS)
    rooms = serializers.IntegerField(min_value=1, max_value=MAX_ROOMS)
    occupancy = serializers.IntegerField(min_value=1, max_value=MAX_OCCUPANCY, help_text="People per room.")
    tier = serializers.ChoiceField(choices=TIERS, required=False)
    accessible = serializers.BooleanField(required=False, default=False, help_text="Only hotels with accessible rooms.")

    def validate(self, data):
        if ("airport" in data) == ("caseUrn" in data):
            raise serializers.ValidationError({"airport": "Give exactly one of airport and caseUrn."})
        if "airport" in data and not IATA.match(data["airport"]):
            raise serializers.ValidationError({"airport": "A 3-letter IATA code."})
        if "caseUrn" in data:
            try:
                parse_urn(data["caseUrn"], "case")
            except ValueError as error:
                raise serializers.ValidationError({"caseUrn": str(error)}) from None
        today = timezone.now().date()
        if not today - timedelta(days=1) <= data["checkIn"] <= today + timedelta(days=MAX_DAYS_AHEAD):
            raise serializers.ValidationError({"checkIn": f"From yesterday to {MAX_DAYS_AHEAD} days ahead."})
        return data


class HotelOfferSerializer(serializers.Serializer):
    offerId = serializers.CharField(help_text="Opaque; the booking flow holds the offer by it.")  # noqa: N815
    source = serializers.CharField(help_text='"contract" or the vendor code.')
    hotelUrn = with_schema(serializers.CharField(allow_null=True), {**urn_schema("hotel"), "nullable": True})  # noqa: N815
    name = serializers.CharField()
    stars = serializers.IntegerField()
    distanceKm = serializers.FloatField()  # noqa: N815
    nightlyRate = MoneySerializer()  # noqa: N815
    rateInAirlineCurrency = MoneySerializer(allow_null=True)  # noqa: N815
    roomsAvailable = serializers.IntegerField()  # noqa: N815
    accessible = serializers.BooleanField()
    policyCompliant = serializers.BooleanField()  # noqa: N815
    violations = serializers.ListField(child=serializers.CharField(), help_text="Names of the rules broken.")
    quotedAt = serializers.DateTimeField()  # noqa: N815
    expiresAt = serializers.DateTimeField()  # noqa: N815


class VendorStatusSerializer(serializers.Serializer):
    vendor = serializers.CharField()
    status = serializers.ChoiceField(choices=("ok", "timeout", "error", "circuit-open"))
    elapsedMs = serializers.IntegerField()  # noqa: N815
    offerCount = serializers.IntegerField()  # noqa: N815


class HotelSearchFailureSerializer(serializers.Serializer):
    domain = serializers.CharField(help_text='The vendor code, "contracts" or "policies".')
    status = serializers.CharField()
    detail = serializers.CharField()


class HotelSearchResultSerializer(serializers.Serializer):
    searchUrn = with_schema(serializers.CharField(), urn_schema("search"))  # noqa: N815
    offers = HotelOfferSerializer(many=True)
    vendors = VendorStatusSerializer(many=True)
    partialFailures = HotelSearchFailureSerializer(many=True)  # noqa: N815


class CaseHotelSerializer(serializers.Serializer):
    hotelUrn = with_schema(  # noqa: N815
        serializers.CharField(allow_null=True, help_text="null for a vendor hotel outside the catalog."),
        {**urn_schema("hotel"), "nullable": True},
    )
    name = serializers.CharField()
    source = serializers.ChoiceField(choices=ReservationSource.choices)
    checkIn = serializers.DateField()  # noqa: N815
    nights = serializers.IntegerField(min_value=1)
    roomsHeld = serializers.IntegerField(help_text="Rooms held at the hotel, not yet confirmed.")  # noqa: N815
    roomsConfirmed = serializers.IntegerField()  # noqa: N815
    roomsReleased = serializers.IntegerField(help_text="Rooms given back (cancelled or released).")  # noqa: N815
    held = serializers.IntegerField(help_text="Same as roomsHeld (the first shape of this route).")
    confirmed = serializers.IntegerField(help_text="Same as roomsConfirmed.")
    released = serializers.IntegerField(help_text="Same as roomsReleased.")


class CaseHotelsSerializer(serializers.Serializer):
    items = CaseHotelSerializer(many=True)


# --- views ---------------------------------------------------------------------------------------


def _int_param(params, name: str, low: int, high: int) -> int | None:
    raw = params.get(name)
    if raw is None:
        return None
    value = strict_int_or_none(raw, minimum=low, maximum=high)
    if value is None:
        raise validation_problem([{"field": name, "message": f"An integer from {low} to {high}."}])
    return value


class HotelListView(NexaAPIView):
    permission_classes = [MinRole(Role.AIRPORT_OPERATOR)]

    @extend_schema_paginated(
        HotelSerializer,
        operation_id="hotels_list",
        summary="The airline's hotel catalog near an airport",
        description="Nearest first. An airport with no catalog hotels gives an empty list.",
        parameters=[
            OpenApiParameter("airport", IATA_SCHEMA, required=True, description="IATA code."),
            OpenApiParameter("minStars", {"type": "integer", "minimum": 1, "maximum": 5}, required=False),
            OpenApiParameter("maxStars", {"type": "integer", "minimum": 1, "maximum": 5}, required=False),
            OpenApiParameter(
                "maxDistanceKm",
                {"type": "integer", "minimum": 0, "maximum": MAX_DISTANCE_KM},
                required=False,
                description="Only hotels at most this many km from the airport.",
            ),
        ],
    )
    def get(self, request):
        params = request.query_params
        airport = params.get("airport")
        if airport is None or not IATA.match(airport):
            raise validation_problem([{"field": "airport", "message": "A 3-letter IATA code."}])
        hotels = hotels_list(
            principal=request.auth,
            airport=airport,
            min_stars=_int_param(params, "minStars", 1, 5),
            max_stars=_int_param(params, "maxStars", 1, 5),
            max_distance_km=_int_param(params, "maxDistanceKm", 0, MAX_DISTANCE_KM),
        )
        return paginate(request, hotels, ordering=("distance_km", "id"), serialize=row_serializer(HotelSerializer))


class HotelSearchView(NexaAPIView):
    permission_classes = [MinRole(Role.AIRPORT_OPERATOR)]

    @extend_schema(
        operation_id="hotels_search",
        summary="Scatter-gather hotel search across every vendor and the airline's contracts",
        description=(
            "Every vendor and the contracts are asked at once; the answer comes within 2 s with what arrived. "
            "Offers are ranked: policy-compliant first, contracts before vendors, then distance and price. "
            "A vendor that failed, was late or whose circuit is open is in `vendors` and `partialFailures`. "
            "Every vendor down (and no contract offer): 503 with `failedDomain: booking` and `Retry-After: 30`."
        ),
        request=HotelSearchRequestSerializer,
        responses={
            200: HotelSearchResultSerializer,
            404: problem("caseUrn names no case of the caller's airline."),
            503: problem("Every hotel vendor is down: failedDomain booking, Retry-After: 30."),
        },
    )
    def post(self, request):
        body = HotelSearchRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        result = hotels_search(
            principal=request.auth,
            airport=data.get("airport", "").upper() or None,
            case_urn=data.get("caseUrn"),
            check_in=data["checkIn"],
            nights=data["nights"],
            rooms=data["rooms"],
            occupancy=data["occupancy"],
            tier=data.get("tier"),
            accessible=data["accessible"],
        )
        # Already in its rendered shape (HotelSearchResultSerializer documents it): no serializer pass after the
        # deadline, where every millisecond is added to the answer.
        return Response(result)


class CaseHotelsView(NexaAPIView):
    permission_classes = [MinRole(Role.AIRPORT_OPERATOR)]

    @extend_schema(
        operation_id="hotels_for_case",
        summary="Hotels in use for a case",
        description=(
            "One item per hotel, source and stay (check-in, nights) of the case's reservations: rooms held, "
            "confirmed and released (cancelled: given back to the vendor or hotel). Failed reservations held no "
            "room and are not counted. Ordered by check-in, then name. A case without reservations has an empty "
            "list (not a 404)."
        ),
        responses={200: CaseHotelsSerializer, 404: OpenApiResponse(description="No such case for the airline.")},
    )
    def get(self, request, case_urn: str):
        case_id = parse_urn(case_urn, "case").id  # a malformed URN is a 400, whoever answers the lookup
        case_context(principal=request.auth, case_urn=case_urn)  # another airline's case: 404
        items = [
            {
                "hotelUrn": count.hotel_urn,
                "name": count.name,
                "source": count.source,
                "checkIn": count.check_in.isoformat(),
                "nights": count.nights,
                "roomsHeld": count.rooms_held,
                "roomsConfirmed": count.rooms_confirmed,
                "roomsReleased": count.rooms_released,
                "held": count.rooms_held,
                "confirmed": count.rooms_confirmed,
                "released": count.rooms_released,
            }
            for count in case_hotel_counts(principal=request.auth, case_id=case_id)
        ]
        return Response({"items": items})
