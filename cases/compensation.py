"""Validation of a compensation request (``POST /v1/subcases/{urn}/compensate``).

Rules: known item types only (MEAL, CASH, TRANSPORT; HOTEL arrives with the booking issue and is
refused with a 422 saying so); positive amounts with at most two decimals; ISO 4217 currencies;
the required fields of each type; and a per-airline ceiling per type (the sum of that type's items in
one request), from ``settings.NEXA_COMPENSATION_CEILINGS``::

    {"MEAL": "50.00", "CASH": "600.00", "TRANSPORT": "150.00", "airlines": {"IB": {"CASH": "400.00"}}}

Every violation is named in ``errors`` (``items[1].amount`` …). Shape errors are a 400; a
well-formed request the domain refuses (HOTEL, a ceiling) is a 422.
"""

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings

from nexa.platform.inputs import parse_aware_datetime
from nexa.platform.problems import validation_problem

ITEM_TYPES = ("MEAL", "CASH", "TRANSPORT")
HOTEL = "HOTEL"
TRANSPORT_PROVIDERS = ("UBER", "CABIFY")
REGULATIONS = ("EU261", "UK261", "APPR", "DOT", "AIRLINE_GOODWILL")
DEFAULT_CEILINGS = {"MEAL": "50.00", "CASH": "600.00", "TRANSPORT": "150.00"}
MAX_ITEMS = 20
REASON_MAX_LENGTH = 2000
MEAL_CARD_DEFAULT_VALIDITY = dt.timedelta(hours=24)
MAX_AMOUNT = Decimal("100000")

# fmt: off
# ISO 4217 active alphabetic codes (2024 list; funds codes and precious metals excluded).
ISO_4217 = frozenset(
    [
        "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT", "BGN", "BHD", "BIF",
        "BMD", "BND", "BOB", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD", "CDF", "CHF", "CLP", "CNY", "COP", "CRC",
        "CUP", "CVE", "CZK", "DJF", "DKK", "DOP", "DZD", "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL", "GHS",
        "GIP", "GMD", "GNF", "GTQ", "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR", "IQD", "IRR", "ISK", "JMD",
        "JOD", "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD", "KYD", "KZT", "LAK", "LBP", "LKR", "LRD", "LSL",
        "LYD", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRU", "MUR", "MVR", "MWK", "MXN", "MYR", "MZN", "NAD",
        "NGN", "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN", "PGK", "PHP", "PKR", "PLN", "PYG", "QAR", "RON", "RSD",
        "RUB", "RWF", "SAR", "SBD", "SCR", "SDG", "SEK", "SGD", "SHP", "SLE", "SOS", "SRD", "SSP", "STN", "SVC", "SYP",
        "SZL", "THB", "TJS", "TMT", "TND", "TOP", "TRY", "TTD", "TWD", "TZS", "UAH", "UGX", "USD", "UYU", "UZS", "VED",
        "VES", "VND", "VUV", "WST", "XAF", "XCD", "XCG", "XOF", "XPF", "YER", "ZAR", "ZMW", "ZWG",
    ]
)
# fmt: on


@dataclass(frozen=True, slots=True)
class CompensationRequest:
    """A validated request: plain JSON items (amounts as strings) and the reason."""

    items: list[dict[str, Any]]
    reason: str

    def as_payload(self) -> dict[str, Any]:
        return {"items": self.items, "reason": self.reason}


def ceilings_for(airline: str) -> dict[str, Decimal]:
    configured = getattr(settings, "NEXA_COMPENSATION_CEILINGS", None) or DEFAULT_CEILINGS
    merged = {**DEFAULT_CEILINGS, **{k: v for k, v in configured.items() if k in ITEM_TYPES}}
    merged.update((configured.get("airlines") or {}).get(airline, {}))
    return {kind: Decimal(str(value)) for kind, value in merged.items() if kind in ITEM_TYPES}


def payload_hash(*, version: Any, items: Any, reason: Any) -> str:
    """SHA-256 of the canonical request (key order and whitespace do not matter). The version is part
    of it: the same body sent again is the same request; a new compensation is made against a newer
    version."""
    canonical = json.dumps(
        {"version": version, "items": items, "reason": reason}, sort_keys=True, separators=(",", ":"), default=str
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _amount(item: dict, where: str, errors: list, *, required: bool = True) -> Decimal | None:
    raw = item.get("amount")
    if raw is None:
        if required:
            errors.append({"field": f"{where}.amount", "message": "is required"})
        return None
    if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
        errors.append({"field": f"{where}.amount", "message": 'must be a decimal string such as "25.00"'})
        return None
    try:
        value = Decimal(str(raw))
    except InvalidOperation:
        errors.append({"field": f"{where}.amount", "message": f"{raw!r} is not a number"})
        return None
    if not value.is_finite() or value <= 0:
        errors.append({"field": f"{where}.amount", "message": "must be positive"})
        return None
    if value.as_tuple().exponent < -2:
        errors.append({"field": f"{where}.amount", "message": "at most two decimals"})
        return None
    if value > MAX_AMOUNT:
        errors.append({"field": f"{where}.amount", "message": f"must not exceed {MAX_AMOUNT}"})
        return None
    return value.quantize(Decimal("0.01"))


def _currency(item: dict, where: str, errors: list, *, required: bool = True) -> str | None:
    raw = item.get("currency")
    if raw is None:
        if required:
            errors.append({"field": f"{where}.currency", "message": "is required"})
        return None
    if not isinstance(raw, str) or raw not in ISO_4217:
        errors.append({"field": f"{where}.currency", "message": f"{raw!r} is not an ISO 4217 currency code"})
        return None
    return raw


def _place(item: dict, name: str, where: str, errors: list) -> dict | None:
    """``{lat, lng, address?}``: providers route by coordinates; the address is shown to the driver."""
    raw = item.get(name)
    if raw is None:
        errors.append({"field": f"{where}.{name}", "message": "is required"})
        return None
    if not isinstance(raw, dict):
        errors.append({"field": f"{where}.{name}", "message": "must be an object {lat, lng, address?}"})
        return None
    place: dict[str, Any] = {}
    address = raw.get("address")
    if address is not None:
        if not isinstance(address, str) or not address.strip() or len(address) > 300:
            errors.append({"field": f"{where}.{name}.address", "message": "must be a non-empty string"})
            return None
        place["address"] = address.strip()
    lat, lng = raw.get("lat"), raw.get("lng")
    if lat is None or lng is None:
        errors.append({"field": f"{where}.{name}", "message": "lat and lng are required"})
        return None
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (lat, lng))
    if not numeric or not (-90 <= lat <= 90 and -180 <= lng <= 180):
        errors.append({"field": f"{where}.{name}", "message": "lat/lng must be numbers within range"})
        return None
    place["lat"], place["lng"] = lat, lng
    return place


def _future_datetime(item: dict, name: str, where: str, errors: list, *, now: dt.datetime) -> str | None:
    raw = item.get(name)
    if raw is None:
        return None
    parsed = parse_aware_datetime(raw)  # never raises: 12:99, month 13 or year 10000 are None
    if parsed is None:
        errors.append({"field": f"{where}.{name}", "message": "must be a date-time with a UTC offset"})
        return None
    if parsed <= now:
        errors.append({"field": f"{where}.{name}", "message": "must be in the future"})
        return None
    return parsed.isoformat()


def validate_request(*, airline: str, items: Any, reason: Any, now: dt.datetime) -> CompensationRequest:
    """Validate and normalise; raise a 400/422 problem listing every violation."""
    shape: list[dict[str, str]] = []
    refused: list[dict[str, str]] = []
    if not isinstance(reason, str) or not reason.strip():
        shape.append({"field": "reason", "message": "is required"})
    elif len(reason) > REASON_MAX_LENGTH:
        shape.append({"field": "reason", "message": f"at most {REASON_MAX_LENGTH} characters"})
    if not isinstance(items, list) or not items:
        shape.append({"field": "items", "message": "must be a non-empty list"})
        raise validation_problem(shape)
    if len(items) > MAX_ITEMS:
        shape.append({"field": "items", "message": f"at most {MAX_ITEMS} items"})

    normalised: list[dict[str, Any]] = []
    totals: dict[tuple[str, str], Decimal] = {}
    for index, item in enumerate(items[:MAX_ITEMS]):
        where = f"items[{index}]"
        if not isinstance(item, dict):
            shape.append({"field": where, "message": "must be an object"})
            continue
        kind = item.get("type")
        if kind == HOTEL:
            refused.append(
                {
                    "field": f"{where}.type",
                    "message": "HOTEL compensation is not available here yet: hotel rooms arrive with booking "
                    "(demand, allocation and book-rooms)",
                }
            )
            continue
        if kind not in ITEM_TYPES:
            shape.append(
                {"field": f"{where}.type", "message": f"must be one of {', '.join(ITEM_TYPES)} (got {kind!r})"}
            )
            continue
        before = len(shape)
        out: dict[str, Any] = {"type": kind}
        if kind in ("MEAL", "CASH"):
            amount = _amount(item, where, shape)
            currency = _currency(item, where, shape)
        else:
            amount = _amount(item, where, shape, required=False)
            currency = _currency(item, where, shape, required=amount is not None)
        if kind == "MEAL":
            expires = _future_datetime(item, "expiresAt", where, shape, now=now)
            out["expiresAt"] = expires or (now + MEAL_CARD_DEFAULT_VALIDITY).astimezone(dt.UTC).isoformat()
        if kind == "CASH":
            regulation = item.get("regulation")
            if regulation is None:
                shape.append({"field": f"{where}.regulation", "message": "is required"})
            elif regulation not in REGULATIONS:
                shape.append({"field": f"{where}.regulation", "message": f"must be one of {', '.join(REGULATIONS)}"})
            else:
                out["regulation"] = regulation
        if kind == "TRANSPORT":
            provider = item.get("provider")
            if provider not in TRANSPORT_PROVIDERS:
                shape.append(
                    {"field": f"{where}.provider", "message": f"must be one of {', '.join(TRANSPORT_PROVIDERS)}"}
                )
            else:
                out["provider"] = provider
            pickup = _place(item, "pickup", where, shape)
            dropoff = _place(item, "dropoff", where, shape)
            out["pickup"], out["dropoff"] = pickup, dropoff
            out["pickupAt"] = (
                _future_datetime(item, "pickupAt", where, shape, now=now) or now.astimezone(dt.UTC).isoformat()
            )
        if amount is not None and currency is not None:
            out["amount"], out["currency"] = str(amount), currency
            totals[(kind, currency)] = totals.get((kind, currency), Decimal("0")) + amount
        if len(shape) == before:
            normalised.append(out)

    ceilings = ceilings_for(airline)
    for (kind, currency), total in sorted(totals.items()):
        ceiling = ceilings.get(kind)
        if ceiling is not None and total > ceiling:
            refused.append(
                {
                    "field": "items",
                    "message": f"{kind} total {total} {currency} exceeds the airline's ceiling of {ceiling}",
                }
            )
    if shape:
        raise validation_problem(shape + refused)
    if refused:
        raise validation_problem(refused, status=422)
    return CompensationRequest(items=normalised, reason=reason.strip())


def dependencies_of(request: CompensationRequest) -> list[str]:
    """The circuit-breaker names the saga of ``request`` will call, in item order, without repeats."""
    names: list[str] = []
    for item in request.items:
        name = "psp" if item["type"] in ("MEAL", "CASH") else f"transport-{item['provider'].lower()}"
        if name not in names:
            names.append(name)
    return names


def refuse_while_circuit_open(request: CompensationRequest) -> None:
    """A new saga is refused with 503 (``failedDomain``, ``Retry-After: 30``) while a provider it needs
    has an open circuit: accepting work that can only wait and then fail would hide the outage."""
    from nexa.platform.breakers import breaker_for
    from nexa.platform.problems import downstream_unavailable_problem

    for name in dependencies_of(request):
        if breaker_for(name).current_state == "open":
            raise downstream_unavailable_problem(name)
