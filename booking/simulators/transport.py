"""The ground-transport simulator: an Uber-shaped and a Cabify-shaped API on one process.

Uber-shaped (ride requests, v1.2):
    POST   /v1.2/requests        {start_latitude, start_longitude, end_latitude, end_longitude,
                                  start_address?, end_address?, scheduled_at?, external_ref}
                                 → 202 {request_id, status: "processing", eta, product_id, ...}
    DELETE /v1.2/requests/{id}   → 204 (errors are ``{"code", "message"}``, as Uber's)
Cabify-shaped (journeys, v4):
    POST   /api/v4/journey       {stops: [{loc: [lat, lon], addr?}, …], start_at?, external_reference}
                                 → 201 {id, state: {name: "hire"}, eta: {pickup_seconds}, ...}
    POST   /api/v4/journey/{id}/cancel → 200 {id, state: {name: "rider_cancel"}}

Refusals (``refuse`` keyed by sub-case URN — ``external_ref`` / ``external_reference`` — or ``*``) answer
422 with the code (e.g. ``no_drivers_available``). Cancelling a cancelled ride answers its state again.
"""

from __future__ import annotations

import random

from booking.simulators.common import Simulator, SimulatorError, iso, new_id, parse_time, route, utcnow


def _coordinate(value, field: str, limit: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise SimulatorError(422, "invalid_location", f"{field} must be a number")
    if not -limit <= number <= limit:
        raise SimulatorError(422, "invalid_location", f"{field} is out of range")
    return number


class TransportSimulator(Simulator):
    name = "transport"

    def reset_state(self) -> None:
        self.rides: dict[str, dict] = {}

    def _request(self, provider: str, subject: str | None, pickup: dict, dropoff: dict, pickup_at: str | None) -> dict:
        if not subject:
            raise SimulatorError(400, "invalid_request", "the external reference (sub-case URN) is required")
        if code := self.refusal_for(subject):
            raise SimulatorError(422, code, f"{provider.lower()} refused the ride: {code}")
        if pickup_at:
            parse_time(pickup_at, "pickup time")
        ride = {
            "rideId": new_id(provider.lower()),
            "provider": provider,
            "subCaseUrn": subject,
            "pickup": pickup,
            "dropoff": dropoff,
            "pickupAt": pickup_at,
            "etaMinutes": random.randint(3, 15),
            "status": "REQUESTED",
            "requestedAt": iso(utcnow()),
        }
        self.rides[ride["rideId"]] = ride
        self.record("ride_requested", rideId=ride["rideId"], provider=provider, subCaseUrn=subject)
        return ride

    def _cancel(self, provider: str, ride_id: str) -> dict:
        ride = self.rides.get(ride_id)
        if ride is None or ride["provider"] != provider:
            raise SimulatorError(404, "ride_not_found", f"no ride {ride_id}")
        if ride["status"] != "CANCELLED":
            ride["status"] = "CANCELLED"
            self.record("ride_cancelled", rideId=ride_id, provider=provider, subCaseUrn=ride["subCaseUrn"])
        return ride

    # --- Uber-shaped -------------------------------------------------------------------------------

    @route("POST", r"/v1.2/requests")
    def uber_request(self, body: dict):
        try:
            pickup = {
                "lat": _coordinate(body.get("start_latitude"), "start_latitude", 90),
                "lng": _coordinate(body.get("start_longitude"), "start_longitude", 180),
                "address": body.get("start_address"),
            }
            dropoff = {
                "lat": _coordinate(body.get("end_latitude"), "end_latitude", 90),
                "lng": _coordinate(body.get("end_longitude"), "end_longitude", 180),
                "address": body.get("end_address"),
            }
            ride = self._request("UBER", body.get("external_ref"), pickup, dropoff, body.get("scheduled_at"))
        except SimulatorError as error:
            raise SimulatorError(
                error.status, error.code, error.message, body={"code": error.code, "message": error.message}
            )
        return 202, {
            "request_id": ride["rideId"],
            "product_id": body.get("product_id") or "uberx",
            "status": "processing",
            "eta": ride["etaMinutes"],
            "surge_multiplier": 1.0,
            "driver": None,
            "vehicle": None,
            "location": None,
        }

    @route("DELETE", r"/v1.2/requests/(?P<ride_id>[^/]+)")
    def uber_cancel(self, body: dict, ride_id: str):
        try:
            self._cancel("UBER", ride_id)
        except SimulatorError as error:
            raise SimulatorError(
                error.status, error.code, error.message, body={"code": error.code, "message": error.message}
            )
        return 204, None

    # --- Cabify-shaped -----------------------------------------------------------------------------

    @route("POST", r"/api/v4/journey")
    def cabify_request(self, body: dict):
        stops = body.get("stops")
        if not isinstance(stops, list) or len(stops) < 2:
            raise SimulatorError(422, "invalid_location", "stops needs a pickup and a drop-off")
        points = []
        for index, stop in enumerate(stops[:2]):
            loc = stop.get("loc") if isinstance(stop, dict) else None
            if not isinstance(loc, list) or len(loc) != 2:
                raise SimulatorError(422, "invalid_location", f"stops[{index}].loc must be [lat, lon]")
            points.append(
                {
                    "lat": _coordinate(loc[0], f"stops[{index}].loc[0]", 90),
                    "lng": _coordinate(loc[1], f"stops[{index}].loc[1]", 180),
                    "address": stop.get("addr"),
                }
            )
        ride = self._request("CABIFY", body.get("external_reference"), points[0], points[1], body.get("start_at"))
        return 201, {
            "id": ride["rideId"],
            "state": {"name": "hire"},
            "eta": {"pickup_seconds": ride["etaMinutes"] * 60},
            "product": {"id": body.get("product_id") or "cabify-standard"},
            "start_at": ride["pickupAt"],
        }

    @route("POST", r"/api/v4/journey/(?P<ride_id>[^/]+)/cancel")
    def cabify_cancel(self, body: dict, ride_id: str):
        ride = self._cancel("CABIFY", ride_id)
        return 200, {"id": ride["rideId"], "state": {"name": "rider_cancel"}}
