"""Hotel vendor adapters (ARCHITECTURE §3.9, §7; docs/providers.md § Hotel vendors).

Each vendor speaks its own HTTP API (booking/simulators/hotels.py documents the three shapes); its
adapter normalises it into :class:`VendorOffer` and :class:`VendorBooking`, and every call goes
through the vendor's own circuit breaker ``vendor-<code>`` (shared in Redis across processes).

``hotel_vendor(code)`` returns the adapter; ``configured_vendors()`` the vendors a search asks
(``NEXA_HOTEL_VENDORS``). The base URL of vendor ``code`` is ``NEXA_HOTELS_URL + "/" + code`` (the one
simulator process serves every vendor under its own prefix); ``NEXA_HOTEL_VENDOR_URLS`` overrides it
per vendor (``{"stayhub": "https://…"}``).

Effectful calls (hold, confirm, cancel) take ``idempotency_key`` (the saga step URN in the booking
flow), sent as ``Idempotency-Key``; ``lookup(idempotency_key=)`` is the vendor's status lookup
(``None``: the vendor confirms it never executed that key).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx
from django.conf import settings

from booking.hotel_data import VENDORS
from nexa.platform.providers import ProviderHttpClient, ProviderPermanentError

SEARCH_MAX_PAGES = 20


def breaker_name(vendor: str) -> str:
    return f"vendor-{vendor}"


@dataclass(frozen=True)
class Money:
    amount: Decimal
    currency: str

    def as_json(self) -> dict[str, str]:
        return {"amount": str(self.amount.quantize(Decimal("0.01"))), "currency": self.currency}


@dataclass(frozen=True)
class SearchArea:
    airport: str
    lat: float
    lng: float
    radius_km: float


@dataclass(frozen=True)
class VendorOffer:
    """One vendor's offer, normalised: ``ref`` is what :meth:`HotelVendorAdapter.hold` takes back."""

    vendor: str
    vendor_hotel_id: str
    ref: str
    name: str
    stars: int
    lat: float
    lng: float
    nightly_rate: Money
    rooms_available: int
    accessible: bool


@dataclass(frozen=True)
class VendorBooking:
    """A hold, a confirmed booking or a cancellation, normalised: ``status`` HELD, CONFIRMED or CANCELLED."""

    vendor: str
    booking_id: str
    status: str
    expires_at: datetime | None = None


def _decimal(value: Any) -> Decimal:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise ValueError(f"not a number: {value!r}") from None
    if not number.is_finite():
        raise ValueError(f"not a number: {value!r}")
    return number


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


class HotelVendorAdapter:
    """Common part: the HTTP client through the vendor's breaker."""

    shape = ""

    def __init__(self, vendor: str, base_url: str):
        self.vendor = vendor
        self.currency = VENDORS.get(vendor, {}).get("currency", "EUR")
        self.client = ProviderHttpClient(provider=vendor, breaker=breaker_name(vendor), base_url=base_url)
        search_seconds = settings.NEXA_HOTEL_SEARCH_TIMEOUT_SECONDS + 0.5
        self.search_client = ProviderHttpClient(
            provider=vendor,
            breaker=breaker_name(vendor),
            base_url=base_url,
            timeout=httpx.Timeout(
                search_seconds, connect=min(search_seconds, settings.NEXA_PROVIDER_CONNECT_TIMEOUT_SECONDS)
            ),
        )

    def search(
        self, *, area: SearchArea, check_in: date, nights: int, rooms: int, occupancy: int, accessible: bool = False
    ) -> list[VendorOffer]:
        raise NotImplementedError

    def hold(self, *, idempotency_key: str, offer_ref: str, rooms: int, reference: str) -> VendorBooking:
        raise NotImplementedError

    def confirm(self, *, idempotency_key: str, hold_id: str) -> VendorBooking:
        raise NotImplementedError

    def cancel(self, *, idempotency_key: str, booking_id: str) -> VendorBooking:
        raise NotImplementedError

    def lookup(self, *, idempotency_key: str) -> dict | None:
        return self.client.lookup_idempotency_key(idempotency_key)

    def _bad_answer(self, operation: str, error: Exception) -> ProviderPermanentError:
        return ProviderPermanentError(
            provider=self.vendor,
            code="malformed_answer",
            message=f"{operation}: {error}",
            attempt_detail={"operation": operation},
        )


class GeoPostAdapter(HotelVendorAdapter):
    """Hotelbeds-like: prices are stay totals (divided by the nights here)."""

    shape = "geo-post"

    def search(self, *, area, check_in, nights, rooms, occupancy, accessible=False):
        body = {
            "stay": {"checkIn": str(check_in), "checkOut": str(check_in + timedelta(days=nights))},
            "occupancies": [{"rooms": rooms, "adults": occupancy}],
            "geolocation": {"latitude": area.lat, "longitude": area.lng, "radius": area.radius_km, "unit": "km"},
        }
        if accessible:
            body["filter"] = {"accessible": True}
        answer = self.search_client.request("POST", "/hotel-api/1.0/hotels", operation="search", json=body)
        try:
            offers = []
            for hotel in answer["hotels"]["hotels"]:
                for room in hotel["rooms"]:
                    for rate in room["rates"]:
                        offers.append(
                            VendorOffer(
                                vendor=self.vendor,
                                vendor_hotel_id=str(hotel["code"]),
                                ref=rate["rateKey"],
                                name=hotel["name"],
                                stars=int(str(hotel["categoryCode"])[0]),
                                lat=float(hotel["latitude"]),
                                lng=float(hotel["longitude"]),
                                nightly_rate=Money(
                                    (_decimal(rate["net"]) / nights).quantize(Decimal("0.01")), hotel["currency"]
                                ),
                                rooms_available=int(rate["allotment"]),
                                accessible=bool(room.get("accessible")),
                            )
                        )
            return offers
        except (KeyError, TypeError, ValueError, IndexError) as error:
            raise self._bad_answer("search", error) from error

    def hold(self, *, idempotency_key, offer_ref, rooms, reference):
        answer = self.client.request(
            "POST",
            "/hotel-api/1.0/holds",
            operation="hold",
            idempotency_key=idempotency_key,
            json={"rateKey": offer_ref, "rooms": rooms, "clientReference": reference},
        )
        hold = answer["hold"]
        return VendorBooking(self.vendor, hold["reference"], "HELD", _time(hold.get("expiresAt")))

    def confirm(self, *, idempotency_key, hold_id):
        answer = self.client.request(
            "POST", f"/hotel-api/1.0/holds/{hold_id}/confirm", operation="confirm", idempotency_key=idempotency_key
        )
        return VendorBooking(self.vendor, answer["booking"]["reference"], "CONFIRMED")

    def cancel(self, *, idempotency_key, booking_id):
        answer = self.client.request(
            "DELETE", f"/hotel-api/1.0/bookings/{booking_id}", operation="cancel", idempotency_key=idempotency_key
        )
        return VendorBooking(self.vendor, answer["booking"]["reference"], "CANCELLED")


class RapidAdapter(HotelVendorAdapter):
    """Expedia-Rapid-like: nightly prices per date (their mean is the nightly rate)."""

    shape = "rapid"

    def search(self, *, area, check_in, nights, rooms, occupancy, accessible=False):
        body = {
            "checkin": str(check_in),
            "checkout": str(check_in + timedelta(days=nights)),
            "rooms": rooms,
            "occupancy": occupancy,
            "latitude": area.lat,
            "longitude": area.lng,
            "radius_km": area.radius_km,
            "accessible": accessible,
        }
        answer = self.search_client.request("POST", "/v3/properties/availability", operation="search", json=body)
        try:
            offers = []
            for prop in answer["properties"]:
                coordinates = prop["location"]["coordinates"]
                for room in prop["rooms"]:
                    for rate in room["rates"]:
                        nightly = [_decimal(night["value"]) for night in rate["nightly"]]
                        offers.append(
                            VendorOffer(
                                vendor=self.vendor,
                                vendor_hotel_id=str(prop["property_id"]),
                                ref=rate["id"],
                                name=prop["property_name"],
                                stars=math.floor(float(prop["star_rating"])),
                                lat=float(coordinates["latitude"]),
                                lng=float(coordinates["longitude"]),
                                nightly_rate=Money(
                                    (sum(nightly, Decimal(0)) / len(nightly)).quantize(Decimal("0.01")),
                                    rate["currency"],
                                ),
                                rooms_available=int(rate["available_rooms"]),
                                accessible=bool(room.get("accessible")),
                            )
                        )
            return offers
        except (KeyError, TypeError, ValueError, ZeroDivisionError) as error:
            raise self._bad_answer("search", error) from error

    def hold(self, *, idempotency_key, offer_ref, rooms, reference):
        answer = self.client.request(
            "POST",
            "/v3/itineraries",
            operation="hold",
            idempotency_key=idempotency_key,
            json={"rate_id": offer_ref, "rooms": rooms, "affiliate_reference_id": reference, "hold": True},
        )
        return VendorBooking(self.vendor, answer["itinerary_id"], "HELD", _time(answer.get("hold_expires_at")))

    def confirm(self, *, idempotency_key, hold_id):
        answer = self.client.request(
            "PUT", f"/v3/itineraries/{hold_id}/resume", operation="confirm", idempotency_key=idempotency_key
        )
        return VendorBooking(self.vendor, answer["itinerary_id"], "CONFIRMED")

    def cancel(self, *, idempotency_key, booking_id):
        answer = self.client.request(
            "DELETE", f"/v3/itineraries/{booking_id}", operation="cancel", idempotency_key=idempotency_key
        )
        return VendorBooking(self.vendor, answer["itinerary_id"], "CANCELLED")


class PagedAdapter(HotelVendorAdapter):
    """Searched by IATA code; follows ``meta.next_page`` (every page through the breaker); minor units."""

    shape = "paged"

    def search(self, *, area, check_in, nights, rooms, occupancy, accessible=False):
        offers: list[VendorOffer] = []
        page: int | None = 1
        deadline = time.monotonic() + settings.NEXA_HOTEL_SEARCH_TIMEOUT_SECONDS
        while page is not None and page <= SEARCH_MAX_PAGES and time.monotonic() < deadline:
            answer = self.search_client.request(
                "POST",
                "/api/search",
                operation="search",
                json={
                    "iata": area.airport,
                    "arrival": str(check_in),
                    "departure": str(check_in + timedelta(days=nights)),
                    "rooms": rooms,
                    "guests": occupancy,
                    "page": page,
                },
            )
            try:
                for item in answer["data"]:
                    price = item["price"]["perNight"]
                    offer = VendorOffer(
                        vendor=self.vendor,
                        vendor_hotel_id=str(item["hotelId"]),
                        ref=item["offerToken"],
                        name=item["title"],
                        stars=int(item["stars"]),
                        lat=float(item["geo"]["lat"]),
                        lng=float(item["geo"]["lon"]),
                        nightly_rate=Money(
                            (Decimal(int(price["amountMinor"])) / 100).quantize(Decimal("0.01")), price["currency"]
                        ),
                        rooms_available=int(item["free"]),
                        accessible=bool(item.get("wheelchair")),
                    )
                    if not accessible or offer.accessible:
                        offers.append(offer)
                next_page = answer["meta"].get("next_page")
                page = int(next_page) if next_page else None
            except (KeyError, TypeError, ValueError) as error:
                raise self._bad_answer("search", error) from error
        return offers

    def hold(self, *, idempotency_key, offer_ref, rooms, reference):
        answer = self.client.request(
            "POST",
            "/api/holds",
            operation="hold",
            idempotency_key=idempotency_key,
            json={"offerToken": offer_ref, "rooms": rooms, "reference": reference},
        )
        return VendorBooking(self.vendor, answer["holdId"], "HELD", _time(answer.get("expiresAt")))

    def confirm(self, *, idempotency_key, hold_id):
        answer = self.client.request(
            "POST", f"/api/holds/{hold_id}/commit", operation="confirm", idempotency_key=idempotency_key
        )
        return VendorBooking(self.vendor, answer["bookingId"], "CONFIRMED")

    def cancel(self, *, idempotency_key, booking_id):
        answer = self.client.request(
            "POST", f"/api/bookings/{booking_id}/cancel", operation="cancel", idempotency_key=idempotency_key
        )
        return VendorBooking(self.vendor, answer["bookingId"], "CANCELLED")


ADAPTERS: dict[str, type[HotelVendorAdapter]] = {
    "geo-post": GeoPostAdapter,
    "rapid": RapidAdapter,
    "paged": PagedAdapter,
}


def configured_vendors() -> tuple[str, ...]:
    return tuple(settings.NEXA_HOTEL_VENDORS)


def hotel_vendor(vendor: str) -> HotelVendorAdapter:
    if vendor not in VENDORS:
        raise ValueError(f"unknown hotel vendor {vendor!r}")
    base_url = (settings.NEXA_HOTEL_VENDOR_URLS or {}).get(vendor) or f"{settings.NEXA_HOTELS_URL.rstrip('/')}/{vendor}"
    return ADAPTERS[VENDORS[vendor]["shape"]](vendor, base_url)
