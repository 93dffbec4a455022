"""Ground-transport adapters: Uber-shaped and Cabify-shaped APIs behind one interface
(ARCHITECTURE §7; docs/providers.md).

``transport_client("UBER" | "CABIFY")`` → :class:`TransportClient` with ``request_ride`` and
``cancel_ride``; both normalise to ``{rideId, provider, status, etaMinutes}`` (``status`` is
``REQUESTED`` or ``CANCELLED``). Locations are dicts ``{"lat", "lng", "address"?}`` (``lon``,
``latitude``/``longitude`` and ``name`` are accepted too). Calls go through the ``transport-uber`` /
``transport-cabify`` circuit breakers; ``idempotency_key`` is the saga step URN.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime
from urllib.parse import quote

from django.conf import settings

from nexa.platform.instants import iso
from nexa.platform.providers import ProviderHttpClient, ProviderPermanentError

PROVIDERS = ("UBER", "CABIFY")


def _point(location: dict, provider: str, field: str) -> tuple[float, float, str | None]:
    lat = location.get("lat", location.get("latitude"))
    lng = location.get("lng", location.get("lon", location.get("longitude")))
    if lat is None or lng is None:
        raise ProviderPermanentError(
            provider=provider.lower(),
            code="invalid_location",
            message=f"{field} needs lat and lng",
            attempt_detail={"httpStatus": None, "operation": "request_ride"},
        )
    return float(lat), float(lng), location.get("address") or location.get("name")


class TransportClient(ABC):
    """The shared interface; :class:`UberClient` and :class:`CabifyClient` speak each provider's API."""

    provider = ""

    def __init__(self, base_url: str | None = None):
        self.http = ProviderHttpClient(
            provider=self.provider.lower(),
            breaker=f"transport-{self.provider.lower()}",
            base_url=base_url or settings.NEXA_TRANSPORT_URL,
        )

    @abstractmethod
    def request_ride(
        self, *, idempotency_key: str, sub_case_urn: str, pickup: dict, dropoff: dict, pickup_at: datetime | None
    ) -> dict:
        """Request a ride → ``{rideId, provider, status: "REQUESTED", etaMinutes}``."""

    @abstractmethod
    def cancel_ride(self, *, idempotency_key: str, ride_id: str) -> dict:
        """Cancel a ride (compensation) → ``{rideId, provider, status: "CANCELLED", etaMinutes: None}``."""

    @abstractmethod
    def _ride(self, answer: dict) -> dict:
        """The provider's answer to a ride request → ``{rideId, provider, status, etaMinutes}``."""

    def ride_lookup(self, *, idempotency_key: str) -> dict | None:
        """The ride requested under ``idempotency_key`` (same shape as :meth:`request_ride`), or ``None``
        when the provider confirms it never executed that request."""
        found = self.http.lookup_idempotency_key(idempotency_key)
        return None if found is None else self._ride(found)


class UberClient(TransportClient):
    provider = "UBER"

    def request_ride(
        self, *, idempotency_key: str, sub_case_urn: str, pickup: dict, dropoff: dict, pickup_at: datetime | None
    ) -> dict:
        start_lat, start_lng, start_address = _point(pickup, self.provider, "pickup")
        end_lat, end_lng, end_address = _point(dropoff, self.provider, "dropoff")
        body = {
            "start_latitude": start_lat,
            "start_longitude": start_lng,
            "end_latitude": end_lat,
            "end_longitude": end_lng,
            "start_address": start_address,
            "end_address": end_address,
            "scheduled_at": iso(pickup_at),
            "external_ref": sub_case_urn,
        }
        answer = self.http.request(
            "POST", "/v1.2/requests", operation="request_ride", idempotency_key=idempotency_key, json=body
        )
        return self._ride(answer)

    def _ride(self, answer: dict) -> dict:
        return {
            "rideId": answer["request_id"],
            "provider": self.provider,
            "status": "REQUESTED",
            "etaMinutes": answer.get("eta"),
        }

    def cancel_ride(self, *, idempotency_key: str, ride_id: str) -> dict:
        self.http.request(
            "DELETE",
            f"/v1.2/requests/{quote(ride_id, safe='')}",
            operation="cancel_ride",
            idempotency_key=idempotency_key,
        )
        return {"rideId": ride_id, "provider": self.provider, "status": "CANCELLED", "etaMinutes": None}


class CabifyClient(TransportClient):
    provider = "CABIFY"

    def request_ride(
        self, *, idempotency_key: str, sub_case_urn: str, pickup: dict, dropoff: dict, pickup_at: datetime | None
    ) -> dict:
        stops = []
        for field, location in (("pickup", pickup), ("dropoff", dropoff)):
            lat, lng, address = _point(location, self.provider, field)
            stops.append({"loc": [lat, lng], "addr": address})
        body = {"stops": stops, "start_at": iso(pickup_at), "external_reference": sub_case_urn}
        answer = self.http.request(
            "POST", "/api/v4/journey", operation="request_ride", idempotency_key=idempotency_key, json=body
        )
        return self._ride(answer)

    def _ride(self, answer: dict) -> dict:
        pickup_seconds = (answer.get("eta") or {}).get("pickup_seconds")
        return {
            "rideId": answer["id"],
            "provider": self.provider,
            "status": "REQUESTED",
            "etaMinutes": None if pickup_seconds is None else round(pickup_seconds / 60),
        }

    def cancel_ride(self, *, idempotency_key: str, ride_id: str) -> dict:
        self.http.request(
            "POST",
            f"/api/v4/journey/{quote(ride_id, safe='')}/cancel",
            operation="cancel_ride",
            idempotency_key=idempotency_key,
            json={},
        )
        return {"rideId": ride_id, "provider": self.provider, "status": "CANCELLED", "etaMinutes": None}


def transport_client(provider: str) -> TransportClient:
    """The adapter for ``"UBER"`` or ``"CABIFY"`` (case-insensitive); anything else is a ``ValueError``."""
    clients = {"UBER": UberClient, "CABIFY": CabifyClient}
    try:
        return clients[provider.upper()]()
    except KeyError:
        raise ValueError(f"unknown transport provider {provider!r}; expected one of {', '.join(PROVIDERS)}")
