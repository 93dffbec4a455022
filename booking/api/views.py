"""HTTP views of the booking domain: parse → call one selector → render."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response

from booking.api.serializers import AirportSearchResultSerializer, AirportSerializer
from booking.selectors import AIRPORT_SEARCH_MAX_LIMIT, airports_search
from nexa.platform.inputs import strict_int_or_none
from nexa.platform.openapi import NON_BLANK
from nexa.platform.problems import validation_problem
from nexa.platform.roles import MinRole, Role
from nexa.platform.views import NexaAPIView

AIRPORT_QUERY_MAX_LENGTH = 100
AIRPORT_SEARCH_DEFAULT_LIMIT = 20


def _search_query(params) -> str:
    query = (params.get("q") or "").strip()
    if not query:
        raise validation_problem([{"field": "q", "message": "Give an IATA or ICAO code, or part of a name or city."}])
    if len(query) > AIRPORT_QUERY_MAX_LENGTH:
        raise validation_problem(
            [{"field": "q", "message": f"At most {AIRPORT_QUERY_MAX_LENGTH} characters."}],
        )
    return query


def _search_limit(params) -> int:
    raw = params.get("limit")
    if raw is None:
        return AIRPORT_SEARCH_DEFAULT_LIMIT
    limit = strict_int_or_none(raw, minimum=1, maximum=AIRPORT_SEARCH_MAX_LIMIT)  # "²" or 10**5000: None
    if limit is None:
        raise validation_problem(
            [{"field": "limit", "message": f"An integer from 1 to {AIRPORT_SEARCH_MAX_LIMIT}."}],
        )
    return limit


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
        query = _search_query(request.query_params)
        limit = _search_limit(request.query_params)
        airports = airports_search(query=query, limit=limit)
        return Response({"items": AirportSerializer(airports, many=True).data})
