"""Wire shapes of the booking routes."""

from rest_framework import serializers

from booking.selectors import AIRPORT_SEARCH_MAX_LIMIT
from nexa.platform.filters import IntegerFilter, QueryField, QueryFilters

AIRPORT_QUERY_MAX_LENGTH = 100
AIRPORT_SEARCH_DEFAULT_LIMIT = 20


class AirportSerializer(serializers.Serializer):
    iata = serializers.CharField()
    icao = serializers.CharField(help_text="Empty when the airport has no ICAO code.")
    name = serializers.CharField()
    city = serializers.CharField()
    country = serializers.CharField(help_text="ISO 3166-1 alpha-2.")
    latitude = serializers.FloatField()
    longitude = serializers.FloatField()
    timeZone = serializers.CharField(source="time_zone", help_text="IANA time zone, e.g. Europe/Madrid.")  # noqa: N815


class AirportSearchResultSerializer(serializers.Serializer):
    items = AirportSerializer(many=True)


class AirportQueryFilter(QueryField):
    default_error_messages = {
        "required": "Give an IATA or ICAO code, or part of a name or city.",
        "too_long": f"At most {AIRPORT_QUERY_MAX_LENGTH} characters.",
    }

    def __init__(self, **kwargs):
        super().__init__(required=True, **kwargs)

    def to_internal_value(self, data):
        query = str(data).strip()
        if not query:
            self.fail("required")
        if len(query) > AIRPORT_QUERY_MAX_LENGTH:
            self.fail("too_long")
        return query


class AirportSearchFilters(QueryFilters):
    q = AirportQueryFilter()
    limit = IntegerFilter(minimum=1, maximum=AIRPORT_SEARCH_MAX_LIMIT, default=AIRPORT_SEARCH_DEFAULT_LIMIT)
