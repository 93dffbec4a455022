"""Wire shapes of the booking routes."""

from rest_framework import serializers


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
