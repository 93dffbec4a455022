"""Hotel vendor simulators: several vendors with different HTTP API shapes, in ONE process.

``python -m booking.simulators hotels --port 8713`` serves every vendor of
``booking.hotel_data.VENDORS`` under its own prefix: ``http://host:8713/<vendor>/…``. Each vendor is a
full simulator of its own (``nexa.platform.simulator``): its own ``/<vendor>/_control``,
``/<vendor>/_ledger``, ``/<vendor>/_reset``, ``/<vendor>/v1/idempotency-keys/{key}`` and idempotency store,
so latency, error rate, outage and hanging are switched per vendor at runtime. The process-wide
``/_health``, ``/_reset`` (every vendor) and ``/_ledger`` (``{vendors: {name: ledger}}``) serve tests.

Extra control keys of a hotel vendor: ``hang`` (``true``: every API request waits without answering
until the vendor is reset or ``hang`` is switched off — "hangs forever"), ``holdTtlSeconds`` (default
900), ``inventory`` (``"normal"`` or ``"none"``: nothing available anywhere).

Inventory: the demo hotels of ``booking.hotel_data`` that the vendor carries, rooms per hotel per night
derived deterministically from hotel, vendor and date, minus the vendor's active holds and bookings.
Only around MAD, BCN, FRA, MUC, LHR, CDG; elsewhere nothing.

Shapes (see docs/providers.md § Hotel vendors):

``geo-post`` (stayhub, roomrack; Hotelbeds-like; prices are stay totals)
    POST /hotel-api/1.0/hotels  {stay: {checkIn, checkOut}, occupancies: [{rooms, adults}],
                                 geolocation: {latitude, longitude, radius, unit: "km"}, filter?: {accessible}}
        → {hotels: {hotels: [{code, name, categoryCode: "4EST", latitude, longitude, currency,
           rooms: [{code, name, accessible, rates: [{rateKey, net, allotment}]}]}], total, checkIn, checkOut}}
    POST /hotel-api/1.0/holds  {rateKey, rooms, clientReference}
        → 201 {hold: {reference, status: "HELD", expiresAt, totalNet, currency}}
    POST /hotel-api/1.0/holds/{ref}/confirm → {booking: {reference, status: "CONFIRMED"}}
    DELETE /hotel-api/1.0/bookings/{ref}    → {booking: {reference, status: "CANCELLED"}}
``rapid`` (globerooms, bedbank; Expedia-Rapid-like; nightly prices)
    POST /v3/properties/availability  {checkin, checkout, occupancy, rooms, latitude, longitude, radius_km,
                                       accessible?}
        → {properties: [{property_id, property_name, star_rating: "4.0", location: {coordinates: {latitude,
           longitude}}, rooms: [{id, room_name, accessible, rates: [{id, available_rooms, currency,
           nightly: [{value, date}]}]}]}]}
    POST /v3/itineraries  {rate_id, rooms, affiliate_reference_id, hold: true}
        → 201 {itinerary_id, status: "held", hold_expires_at}
    PUT  /v3/itineraries/{id}/resume → {itinerary_id, status: "booked"}
    DELETE /v3/itineraries/{id}      → {itinerary_id, status: "canceled"}
``paged`` (nightbed; searched by IATA code; paginated; prices per night in minor units)
    POST /api/search  {iata, arrival, departure, rooms, guests, page?, page_size?}
        → {data: [{hotelId, title, stars, geo: {lat, lon}, price: {perNight: {amountMinor, currency}}, free,
           wheelchair, offerToken}], meta: {page, pages, next_page}}
    POST /api/holds  {offerToken, rooms, reference} → 201 {holdId, state: "PROVISIONAL", ttlSeconds, expiresAt}
    POST /api/holds/{id}/commit → {bookingId, state: "COMMITTED"}
    POST /api/bookings/{id}/cancel → {bookingId, state: "CANCELLED"}

Errors are ``{"error": {"code", "message"}}``: ``hold_expired`` (410), ``not_enough_rooms`` (409),
``hold_not_found`` / ``booking_not_found`` (404), ``invalid_request`` (400).
"""

from __future__ import annotations

import hashlib
import math
import threading
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from booking.hotel_data import AIRPORTS, HOTELS, VENDORS, DemoHotel, great_circle_km, vendor_hotel_id
from booking.simulators.common import DROP, Simulator, SimulatorError, iso, new_id, route, utcnow

HANG_MAX_SECONDS = 600.0
DEFAULT_HOLD_TTL_SECONDS = 900
FX_FROM_EUR = {"EUR": Decimal("1"), "USD": Decimal("1.08"), "GBP": Decimal("0.85"), "CHF": Decimal("0.95")}
MAX_NIGHTS = 30


def _parse_day(value: Any, field: str) -> date:
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise SimulatorError(400, "invalid_request", f"{field} must be YYYY-MM-DD")


def _positive_int(value: Any, field: str, maximum: int = 100) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise SimulatorError(400, "invalid_request", f"{field} must be an integer")
    if not 1 <= number <= maximum:
        raise SimulatorError(400, "invalid_request", f"{field} must be 1 to {maximum}")
    return number


class HotelVendorSimulator(Simulator):
    """One vendor: inventory, holds with a TTL, bookings. Subclasses add the shape's routes."""

    shape = ""
    default_config = {"hang": False, "holdTtlSeconds": DEFAULT_HOLD_TTL_SECONDS, "inventory": "normal"}

    def __init__(self, vendor: str) -> None:
        self.vendor = vendor
        self.name = vendor
        self.currency = VENDORS[vendor]["currency"]
        self.hotels = {vendor_hotel_id(vendor, h.key): h for h in HOTELS if vendor in h.vendors}
        super().__init__()

    def reset_state(self) -> None:
        previous = getattr(self, "release", None)
        if previous is not None:
            previous.set()  # requests hanging until now give up
        self.release = threading.Event()
        self.holds: dict[str, dict] = {}

    def control(self, body: dict) -> dict:
        if "hang" in body and not isinstance(body["hang"], bool):
            raise SimulatorError(400, "invalid_request", "hang is true or false")
        if body.get("inventory") not in (None, "normal", "none"):
            raise SimulatorError(400, "invalid_request", 'inventory is "normal" or "none"')
        if "holdTtlSeconds" in body and (
            not isinstance(body["holdTtlSeconds"], int | float) or body["holdTtlSeconds"] <= 0
        ):
            raise SimulatorError(400, "invalid_request", "holdTtlSeconds is a positive number")
        if body.get("hang") is False:
            with self.lock:
                self.release.set()
                self.release = threading.Event()
        return super().control(body)

    def _dispatch(self, method, path, key, raw, config, generation):
        if config.get("hang"):
            with self.lock:
                release = self.release
            release.wait(HANG_MAX_SECONDS)
            return DROP
        return super()._dispatch(method, path, key, raw, config, generation)

    # --- inventory -----------------------------------------------------------------------------

    def _seed(self, *parts: str) -> int:
        return int.from_bytes(hashlib.sha256("|".join([self.vendor, *parts]).encode()).digest()[:4], "big")

    def _base_rooms(self, hotel: DemoHotel, night: date) -> int:
        if self.config.get("inventory") == "none":
            return 0
        share = 0.25 + (self._seed(hotel.key, night.isoformat()) % 60) / 100  # 25 to 84 % of the hotel's rooms
        return max(1, int(hotel.rooms * share))

    def nightly_rate(self, hotel: DemoHotel, night: date) -> Decimal:
        factor = Decimal(90 + self._seed(hotel.key, "rate", night.isoformat()) % 30) / 100  # 0.90 to 1.19
        return (Decimal(hotel.base_rate_eur) * factor * FX_FROM_EUR[self.currency]).quantize(Decimal("0.01"))

    def _taken(self, hotel_id: str, night: date) -> int:
        now = utcnow()
        return sum(
            hold["rooms"]
            for hold in self.holds.values()
            if hold["hotelId"] == hotel_id
            and hold["status"] in ("HELD", "CONFIRMED")
            and (hold["status"] == "CONFIRMED" or hold["expiresAt"] > now)
            and hold["checkIn"] <= night < hold["checkOut"]
        )

    def available(self, hotel_id: str, check_in: date, check_out: date) -> int:
        hotel = self.hotels[hotel_id]
        nights = [check_in + timedelta(days=n) for n in range((check_out - check_in).days)]
        return min(self._base_rooms(hotel, night) - self._taken(hotel_id, night) for night in nights)

    def _stay(self, check_in: Any, check_out: Any) -> tuple[date, date]:
        start, end = _parse_day(check_in, "check-in"), _parse_day(check_out, "check-out")
        if not 1 <= (end - start).days <= MAX_NIGHTS:
            raise SimulatorError(400, "invalid_request", f"a stay is 1 to {MAX_NIGHTS} nights")
        return start, end

    def find(
        self,
        *,
        check_in: date,
        check_out: date,
        rooms: int,
        near: tuple[float, float] | None = None,
        radius_km: float = 0,
        iata: str | None = None,
        accessible: bool = False,
    ) -> list[tuple[str, DemoHotel, int]]:
        """(vendor hotel id, hotel, rooms available) for every hotel with ``rooms`` free every night."""
        found = []
        for hotel_id, hotel in self.hotels.items():
            if iata is not None and hotel.airport != iata:
                continue
            if near is not None and great_circle_km(near[0], near[1], hotel.lat, hotel.lng) > radius_km:
                continue
            if accessible and hotel.accessible_rooms <= 0:
                continue
            free = self.available(hotel_id, check_in, check_out)
            if free >= rooms:
                found.append((hotel_id, hotel, free))
        return found

    def rate_key(self, hotel_id: str, check_in: date, check_out: date, rooms: int, occupancy: int) -> str:
        return f"{hotel_id}|{check_in.isoformat()}|{check_out.isoformat()}|{rooms}|{occupancy}"

    def stay_total(self, hotel: DemoHotel, check_in: date, check_out: date) -> Decimal:
        nights = [check_in + timedelta(days=n) for n in range((check_out - check_in).days)]
        return sum((self.nightly_rate(hotel, night) for night in nights), Decimal("0"))

    # --- holds ---------------------------------------------------------------------------------

    def hold(self, *, rate_key: Any, rooms: Any, reference: Any) -> dict:
        if not isinstance(rate_key, str) or rate_key.count("|") != 4:
            raise SimulatorError(400, "invalid_request", "unknown rate key")
        hotel_id, check_in, check_out, _rooms, _occupancy = rate_key.split("|")
        if hotel_id not in self.hotels:
            raise SimulatorError(404, "rate_not_found", "no such rate")
        start, end = self._stay(check_in, check_out)
        count = _positive_int(rooms, "rooms")
        if self.available(hotel_id, start, end) < count:
            raise SimulatorError(409, "not_enough_rooms", "the hotel no longer has that many rooms")
        hotel = self.hotels[hotel_id]
        ttl = float(self.config["holdTtlSeconds"])
        hold = {
            "holdId": new_id(self.vendor),
            "hotelId": hotel_id,
            "checkIn": start,
            "checkOut": end,
            "rooms": count,
            "reference": reference,
            "status": "HELD",
            "expiresAt": utcnow() + timedelta(seconds=ttl),
            "total": self.stay_total(hotel, start, end) * count,
        }
        self.holds[hold["holdId"]] = hold
        self.record("hold", holdId=hold["holdId"], hotelId=hotel_id, rooms=count, reference=reference)
        return hold

    def _get(self, hold_id: str) -> dict:
        hold = self.holds.get(hold_id)
        if hold is None:
            raise SimulatorError(404, "hold_not_found", f"no hold {hold_id}")
        return hold

    def confirm(self, hold_id: str) -> dict:
        hold = self._get(hold_id)
        if hold["status"] == "CONFIRMED":
            return hold
        if hold["status"] != "HELD" or hold["expiresAt"] <= utcnow():
            raise SimulatorError(410, "hold_expired", "the hold expired or was released")
        hold["status"] = "CONFIRMED"
        self.record("confirm", holdId=hold_id, hotelId=hold["hotelId"], rooms=hold["rooms"])
        return hold

    def cancel(self, hold_id: str) -> dict:
        hold = self._get(hold_id)
        if hold["status"] != "CANCELLED":
            hold["status"] = "CANCELLED"
            self.record("cancel", holdId=hold_id, hotelId=hold["hotelId"], rooms=hold["rooms"])
        return hold


class GeoPostVendor(HotelVendorSimulator):
    """Hotelbeds-like: geo search by POST, stay totals, rates keyed by ``rateKey``."""

    shape = "geo-post"

    @route("POST", r"/hotel-api/1\.0/hotels", effectful=False)
    def search(self, body: dict):
        stay = body.get("stay") or {}
        start, end = self._stay(stay.get("checkIn"), stay.get("checkOut"))
        occupancies = body.get("occupancies") or [{}]
        rooms = _positive_int(occupancies[0].get("rooms", 1), "occupancies[0].rooms")
        adults = _positive_int(occupancies[0].get("adults", 1), "occupancies[0].adults", 8)
        geo = body.get("geolocation") or {}
        try:
            near = (float(geo["latitude"]), float(geo["longitude"]))
            radius = float(geo.get("radius", 20))
        except (KeyError, TypeError, ValueError):
            raise SimulatorError(400, "invalid_request", "geolocation needs latitude and longitude")
        accessible = bool((body.get("filter") or {}).get("accessible"))
        hotels = []
        for hotel_id, hotel, free in self.find(
            check_in=start, check_out=end, rooms=rooms, near=near, radius_km=radius, accessible=accessible
        ):
            hotels.append(
                {
                    "code": hotel_id,
                    "name": hotel.name,
                    "categoryCode": f"{hotel.stars}EST",
                    "latitude": f"{hotel.lat:.6f}",
                    "longitude": f"{hotel.lng:.6f}",
                    "currency": self.currency,
                    "rooms": [
                        {
                            "code": "DBL.ST",
                            "name": "Double standard",
                            "accessible": hotel.accessible_rooms > 0,
                            "rates": [
                                {
                                    "rateKey": self.rate_key(hotel_id, start, end, rooms, adults),
                                    "net": str(self.stay_total(hotel, start, end)),
                                    "allotment": free,
                                }
                            ],
                        }
                    ],
                }
            )
        return 200, {"hotels": {"hotels": hotels, "total": len(hotels), "checkIn": str(start), "checkOut": str(end)}}

    @route("POST", r"/hotel-api/1\.0/holds")
    def create_hold(self, body: dict):
        hold = self.hold(
            rate_key=body.get("rateKey"), rooms=body.get("rooms", 1), reference=body.get("clientReference")
        )
        return 201, {
            "hold": {
                "reference": hold["holdId"],
                "status": "HELD",
                "expiresAt": iso(hold["expiresAt"]),
                "totalNet": str(hold["total"]),
                "currency": self.currency,
            }
        }

    @route("POST", r"/hotel-api/1\.0/holds/(?P<reference>[^/]+)/confirm")
    def confirm_hold(self, body: dict, reference: str):
        hold = self.confirm(reference)
        return 200, {"booking": {"reference": hold["holdId"], "status": "CONFIRMED"}}

    @route("DELETE", r"/hotel-api/1\.0/bookings/(?P<reference>[^/]+)")
    def cancel_booking(self, body: dict, reference: str):
        hold = self.cancel(reference)
        return 200, {"booking": {"reference": hold["holdId"], "status": "CANCELLED"}}


class RapidVendor(HotelVendorSimulator):
    """Expedia-Rapid-like: a list of properties, nightly prices per date, itineraries."""

    shape = "rapid"

    @route("POST", r"/v3/properties/availability", effectful=False)
    def search(self, body: dict):
        start, end = self._stay(body.get("checkin"), body.get("checkout"))
        rooms = _positive_int(body.get("rooms", 1), "rooms")
        occupancy = _positive_int(body.get("occupancy", 1), "occupancy", 8)
        try:
            near = (float(body["latitude"]), float(body["longitude"]))
            radius = float(body.get("radius_km", 20))
        except (KeyError, TypeError, ValueError):
            raise SimulatorError(400, "invalid_request", "latitude and longitude are required")
        properties = []
        for hotel_id, hotel, free in self.find(
            check_in=start,
            check_out=end,
            rooms=rooms,
            near=near,
            radius_km=radius,
            accessible=bool(body.get("accessible")),
        ):
            nights = [start + timedelta(days=n) for n in range((end - start).days)]
            properties.append(
                {
                    "property_id": hotel_id,
                    "property_name": hotel.name,
                    "star_rating": f"{hotel.stars:.1f}",
                    "location": {"coordinates": {"latitude": hotel.lat, "longitude": hotel.lng}},
                    "rooms": [
                        {
                            "id": "std",
                            "room_name": "Standard room",
                            "accessible": hotel.accessible_rooms > 0,
                            "rates": [
                                {
                                    "id": self.rate_key(hotel_id, start, end, rooms, occupancy),
                                    "available_rooms": free,
                                    "currency": self.currency,
                                    "nightly": [
                                        {"date": str(night), "value": str(self.nightly_rate(hotel, night))}
                                        for night in nights
                                    ],
                                }
                            ],
                        }
                    ],
                }
            )
        return 200, {"properties": properties}

    @route("POST", r"/v3/itineraries")
    def create_itinerary(self, body: dict):
        hold = self.hold(
            rate_key=body.get("rate_id"), rooms=body.get("rooms", 1), reference=body.get("affiliate_reference_id")
        )
        return 201, {"itinerary_id": hold["holdId"], "status": "held", "hold_expires_at": iso(hold["expiresAt"])}

    @route("PUT", r"/v3/itineraries/(?P<itinerary_id>[^/]+)/resume")
    def resume(self, body: dict, itinerary_id: str):
        hold = self.confirm(itinerary_id)
        return 200, {"itinerary_id": hold["holdId"], "status": "booked"}

    @route("DELETE", r"/v3/itineraries/(?P<itinerary_id>[^/]+)")
    def cancel_itinerary(self, body: dict, itinerary_id: str):
        hold = self.cancel(itinerary_id)
        return 200, {"itinerary_id": hold["holdId"], "status": "canceled"}


class PagedVendor(HotelVendorSimulator):
    """Searched by IATA code, paginated (``page_size`` default 2), prices in minor units."""

    shape = "paged"
    page_size = 2

    @route("POST", r"/api/search", effectful=False)
    def search(self, body: dict):
        iata = str(body.get("iata") or "").upper()
        if len(iata) != 3:
            raise SimulatorError(400, "invalid_request", "iata is a 3-letter code")
        start, end = self._stay(body.get("arrival"), body.get("departure"))
        rooms = _positive_int(body.get("rooms", 1), "rooms")
        _positive_int(body.get("guests", 1), "guests", 8)
        page = _positive_int(body.get("page", 1), "page", 10_000)
        size = _positive_int(body.get("page_size", self.page_size), "page_size", 50)
        found = self.find(check_in=start, check_out=end, rooms=rooms, iata=iata) if iata in AIRPORTS else []
        found.sort(key=lambda row: row[0])
        pages = max(1, math.ceil(len(found) / size))
        data = [
            {
                "hotelId": hotel_id,
                "title": hotel.name,
                "stars": hotel.stars,
                "geo": {"lat": hotel.lat, "lon": hotel.lng},
                "price": {
                    "perNight": {
                        "amountMinor": int(self.stay_total(hotel, start, end) * 100 / (end - start).days),
                        "currency": self.currency,
                    }
                },
                "free": free,
                "wheelchair": hotel.accessible_rooms > 0,
                "offerToken": self.rate_key(hotel_id, start, end, rooms, 1),
            }
            for hotel_id, hotel, free in found[(page - 1) * size : page * size]
        ]
        return 200, {
            "data": data,
            "meta": {"page": page, "pages": pages, "next_page": page + 1 if page < pages else None},
        }

    @route("POST", r"/api/holds")
    def create_hold(self, body: dict):
        hold = self.hold(rate_key=body.get("offerToken"), rooms=body.get("rooms", 1), reference=body.get("reference"))
        ttl = int(self.config["holdTtlSeconds"])
        return 201, {
            "holdId": hold["holdId"],
            "state": "PROVISIONAL",
            "ttlSeconds": ttl,
            "expiresAt": iso(hold["expiresAt"]),
        }

    @route("POST", r"/api/holds/(?P<hold_id>[^/]+)/commit")
    def commit(self, body: dict, hold_id: str):
        hold = self.confirm(hold_id)
        return 200, {"bookingId": hold["holdId"], "state": "COMMITTED"}

    @route("POST", r"/api/bookings/(?P<booking_id>[^/]+)/cancel")
    def cancel_booking(self, body: dict, booking_id: str):
        hold = self.cancel(booking_id)
        return 200, {"bookingId": hold["holdId"], "state": "CANCELLED"}


SHAPES: dict[str, type[HotelVendorSimulator]] = {"geo-post": GeoPostVendor, "rapid": RapidVendor, "paged": PagedVendor}


class HotelVendorsSimulator(Simulator):
    """Every vendor of ``VENDORS`` in one process, each under ``/<vendor>``."""

    name = "hotels"

    def __init__(self) -> None:
        self.vendors = {vendor: SHAPES[spec["shape"]](vendor) for vendor, spec in VENDORS.items()}
        super().__init__()

    def reset(self) -> None:
        super().reset()
        for vendor in getattr(self, "vendors", {}).values():
            vendor.reset()

    def handle(self, method: str, path: str, headers: dict[str, str], raw: bytes):
        bare = path.split("?", 1)[0]
        if bare == "/_ledger" and method == "GET":
            return 200, {"simulator": self.name, "vendors": {v: sim.ledger() for v, sim in self.vendors.items()}}, {}
        if bare in ("/_health", "/_reset"):
            return super().handle(method, path, headers, raw)
        prefix, _, rest = bare.lstrip("/").partition("/")
        vendor = self.vendors.get(prefix)
        if vendor is None:
            return 404, {"error": {"code": "unknown_vendor", "message": f"no vendor {prefix!r}"}}, {}
        return vendor.handle(method, "/" + rest, headers, raw)


__all__ = ["SHAPES", "HotelVendorsSimulator", "great_circle_km"]
