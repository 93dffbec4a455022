"""The hotel catalog (docs/hotels.md): reads, and the demo seed ``seed_demo`` calls."""

from __future__ import annotations

from django.db import transaction
from django.db.models import QuerySet

from booking.hotel_data import HOTELS, great_circle_km, vendor_ids
from booking.models import Hotel
from booking.selectors import airport_get
from nexa.platform.auth import Principal
from nexa.platform.tenancy import for_principal


def hotels_list(
    *,
    principal: Principal,
    airport: str,
    min_stars: int | None = None,
    max_stars: int | None = None,
    max_distance_km: float | None = None,
) -> QuerySet[Hotel]:
    """The airline's catalog hotels near ``airport`` (an unknown airport simply has none)."""
    hotels = for_principal(Hotel.objects.all(), principal).filter(airport=airport.upper())
    if min_stars is not None:
        hotels = hotels.filter(stars__gte=min_stars)
    if max_stars is not None:
        hotels = hotels.filter(stars__lte=max_stars)
    if max_distance_km is not None:
        hotels = hotels.filter(distance_km__lte=max_distance_km)
    return hotels


def hotels_by_vendor_id(*, principal: Principal, airport: str) -> dict[tuple[str, str], Hotel]:
    """``{(vendor, vendor's hotel id): hotel}`` for the airline's catalog at ``airport``."""
    found: dict[tuple[str, str], Hotel] = {}
    for hotel in for_principal(Hotel.objects.all(), principal).filter(airport=airport):
        for vendor, vendor_id in (hotel.vendor_ids or {}).items():
            found[(vendor, str(vendor_id))] = hotel
    return found


@transaction.atomic
def hotels_seed_demo(*, airline: str) -> int:
    """Create or refresh the demo catalog of ``airline`` (booking.hotel_data, distances from airportsdata).
    Idempotent; returns how many hotels the airline's catalog holds for the demo."""
    for hotel in HOTELS:
        airport = airport_get(iata=hotel.airport)
        Hotel.objects.update_or_create(
            airline=airline,
            airport=hotel.airport,
            name=hotel.name,
            defaults={
                "lat": hotel.lat,
                "lng": hotel.lng,
                "distance_km": round(great_circle_km(airport.latitude, airport.longitude, hotel.lat, hotel.lng), 2),
                "stars": hotel.stars,
                "accessible_rooms": hotel.accessible_rooms,
                "address": hotel.address,
                "phone": hotel.phone,
                "vendor_ids": vendor_ids(hotel.key),
            },
        )
    return len(HOTELS)
