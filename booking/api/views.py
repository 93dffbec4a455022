"""HTTP views of the booking domain: parse → call one selector → render."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response

from booking.api.serializers import (
    AIRPORT_QUERY_MAX_LENGTH,
    AIRPORT_SEARCH_DEFAULT_LIMIT,
    AirportSearchFilters,
    AirportSearchResultSerializer,
)
from booking.selectors import AIRPORT_SEARCH_MAX_LIMIT, airports_search
from nexa.platform.openapi import NON_BLANK
from nexa.platform.roles import MinRole, Role
from nexa.platform.views import NexaAPIView


class AirportSearchView(NexaAPIView):
    permission_classes = [MinRole(Role.AIRPORT_OPERATOR)]

    @extend_schema(
        operation_id="airports_search",
        summary="Search the airport catalog",
        description=(
            "Exact IATA code first, then exact ICAO code, then airports whose city or name starts "
            "with, has a word starting with, or contains the query (case- and accent-insensitive)."
        ),
        parameters=[
            OpenApiParameter(
                "q",
                # Surrounding whitespace is stripped, then 1 to AIRPORT_QUERY_MAX_LENGTH characters remain.
                {"type": "string", "minLength": 1, "maxLength": AIRPORT_QUERY_MAX_LENGTH, "pattern": NON_BLANK},
                required=True,
                description="IATA/ICAO code, name or city.",
            ),
            OpenApiParameter(
                "limit",
                {"type": "integer", "minimum": 1, "maximum": AIRPORT_SEARCH_MAX_LIMIT},
                required=False,
                description=f"1 to {AIRPORT_SEARCH_MAX_LIMIT}, default {AIRPORT_SEARCH_DEFAULT_LIMIT}.",
            ),
        ],
        responses={200: AirportSearchResultSerializer},
    )
    def get(self, request):
        filters = AirportSearchFilters.parse(request)
        airports = airports_search(query=filters["q"], limit=filters["limit"])
        return Response(AirportSearchResultSerializer({"items": airports}).data)
