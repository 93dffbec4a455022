"""Validation of a compensation request (``POST /v1/subcases/{urn}/compensate``).

Rules: known item types only (MEAL, CASH, TRANSPORT, HOTEL — a room on the booking saga's hotel steps,
docs/booking.md); positive amounts with at most two decimals; ISO 4217 currencies;
the required fields of each type (:func:`validate_request`, before any lock).

Limits (:func:`check_limits`, under the sub-case's row lock; docs/compensation.md "Limits"): per
passenger (sub-case) per disruption, per item type, **summed over every saga run of the sub-case**, in
the airline's settlement currency, from its :class:`~nexa.platform.models.TenantSettings` (defaults
from the environment). A currency other than the settlement currency is accepted only when the airline
has a rate for it; the amount is converted with that rate (rounded up to the cent) and the rate is
recorded on the run (``SagaRun.fx``), the converted amount on the step (``SagaStep.settled_amount``).

Every violation is named in ``errors`` (``items[1].amount`` …). Shape errors are a 400; a
well-formed request the domain refuses (HOTEL, a currency the airline does not allow, a limit) is a 422.
"""

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from decimal import ROUND_UP, Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.db import connection

from booking.services import HOTEL_VENDOR_CODES as HOTEL_VENDORS
from cases import saga
from cases.models import SagaRun, SagaStep
from nexa.platform.breakers import breaker_for
from nexa.platform.inputs import parse_aware_datetime
from nexa.platform.models import TenantSettings
from nexa.platform.problems import downstream_unavailable_problem, validation_problem
from nexa.platform.urns import InvalidUrn, parse_urn

ITEM_TYPES = ("MEAL", "CASH", "TRANSPORT")
HOTEL = "HOTEL"
TRANSPORT_PROVIDERS = ("UBER", "CABIFY")
REGULATIONS = ("EU261", "UK261", "APPR", "DOT", "AIRLINE_GOODWILL")
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


@dataclass(frozen=True, slots=True)
class Limits:
    """An airline's compensation limits: per item type, per passenger per disruption, in ``currency``."""

    currency: str
    per_type: dict[str, Decimal]
    rates: dict[str, Decimal]  # other allowed currencies → value of one unit in ``currency``


def limits_for(airline: str) -> Limits:
    """The airline's TenantSettings (one primary-key read), each empty field from the environment."""

    row = TenantSettings.objects.filter(airline=airline).first()
    defaults = {
        "MEAL": settings.NEXA_COMPENSATION_LIMIT_MEAL,
        "CASH": settings.NEXA_COMPENSATION_LIMIT_CASH,
        "TRANSPORT": settings.NEXA_COMPENSATION_LIMIT_TRANSPORT,
    }
    own = {"MEAL": row.meal_limit, "CASH": row.cash_limit, "TRANSPORT": row.transport_limit} if row else {}
    per_type = {kind: Decimal(str(own.get(kind) if own.get(kind) is not None else value))
                for kind, value in defaults.items()}  # fmt: skip
    currency = (row.settlement_currency if row else "") or settings.NEXA_SETTLEMENT_CURRENCY
    rates = (row.currency_rates if row else None) or settings.NEXA_COMPENSATION_CURRENCY_RATES or {}
    return Limits(
        currency=currency,
        per_type=per_type,
        rates={code: Decimal(str(rate)) for code, rate in rates.items() if code != currency},
    )


@dataclass(frozen=True, slots=True)
class Settlement:
    """A request in the settlement currency: ``amounts[i]`` for ``items[i]`` (``None`` without an
    amount), the totals per type, and the conversion used (recorded on the run)."""

    amounts: list[Decimal | None]
    totals: dict[str, Decimal]
    fx: dict[str, Any]


def settle(request: CompensationRequest, limits: Limits) -> Settlement:
    """Convert each item to the settlement currency; a currency the airline does not allow is a 422."""
    refused: list[dict[str, str]] = []
    amounts: list[Decimal | None] = []
    totals: dict[str, Decimal] = {}
    used: dict[str, str] = {}
    for index, item in enumerate(request.items):
        if "amount" not in item:
            amounts.append(None)
            continue
        amount, currency = Decimal(item["amount"]), item["currency"]
        if currency == limits.currency:
            settled = amount
        elif currency in limits.rates:
            rate = limits.rates[currency]
            settled = (amount * rate).quantize(Decimal("0.01"), rounding=ROUND_UP)
            used[currency] = str(rate)
        else:
            allowed = ", ".join(sorted([limits.currency, *limits.rates]))
            refused.append(
                {
                    "field": f"items[{index}].currency",
                    "message": f"{currency} is not accepted by the airline (it settles in {limits.currency}; "
                    f"accepted: {allowed})",
                }
            )
            amounts.append(None)
            continue
        amounts.append(settled)
        totals[item["type"]] = totals.get(item["type"], Decimal("0")) + settled
    if refused:
        raise validation_problem(refused, status=422)
    return Settlement(amounts=amounts, totals=totals, fx={"settlementCurrency": limits.currency, "rates": used})


def granted_for(sub_case_id) -> dict[str, Decimal]:
    """What the passenger has been granted per type over EVERY run of the sub-case (one statement, by
    the saga run's sub-case index and the step's run index). Counted: every step not truly undone —
    pending, running, completed, in doubt, or whose compensation failed. Not counted: a step
    compensated (the provider undid it), skipped (never ran), or FAILED with a known outcome (the
    provider refused it: nothing was paid)."""

    sql = f"""
    SELECT st.kind, SUM(st.settled_amount)
      FROM {SagaStep._meta.db_table} st
      JOIN {SagaRun._meta.db_table} r ON r.id = st.run_id
     WHERE r.sub_case_id = %s AND st.settled_amount IS NOT NULL
       AND st.status NOT IN ('COMPENSATED', 'SKIPPED')
       AND NOT (st.status = 'FAILED' AND NOT st.outcome_unknown)
     GROUP BY st.kind
    """  # noqa: S608 (table names from the models)
    with connection.cursor() as cursor:
        cursor.execute(sql, [sub_case_id])
        return {kind: total for kind, total in cursor.fetchall()}


def check_limits(*, limits: Limits, granted: dict[str, Decimal], adding: dict[str, Decimal]) -> None:
    """422 naming each limit ``adding`` would exceed, with what is already granted."""
    exceeded = []
    for kind in ITEM_TYPES:
        extra = adding.get(kind, Decimal("0"))
        if not extra:
            continue
        already, limit = granted.get(kind, Decimal("0")), limits.per_type[kind]
        if already + extra > limit:
            exceeded.append((kind, limit, already, extra))
    if not exceeded:
        return
    money = lambda value: {"amount": str(value.quantize(Decimal("0.01"))), "currency": limits.currency}  # noqa: E731
    errors = [
        {
            "field": "items",
            "message": f"{kind} {extra:.2f} {limits.currency} would exceed the airline's limit of {limit:.2f} "
            f"{limits.currency} per passenger per disruption ({already:.2f} {limits.currency} already granted)",
        }
        for kind, limit, already, extra in exceeded
    ]
    problem = validation_problem(errors, status=422)
    kind, limit, already, extra = exceeded[0]
    problem.extensions.update(
        limit={"type": kind, **money(limit)},
        alreadyGranted={"type": kind, **money(already)},
        requested={"type": kind, **money(extra)},
        limits=[
            {"type": k, "limit": money(lim), "alreadyGranted": money(alr), "requested": money(ext)}
            for k, lim, alr, ext in exceeded
        ],
    )
    raise problem


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


HOTEL_MAX_NIGHTS = 30


def _hotel_item(item: dict, where: str, errors: list, *, now: dt.datetime) -> dict[str, Any]:
    """``{type: HOTEL, offerId | hotelUrn, checkIn, nights}``: a room for this passenger on the hotel steps
    (``cases.saga.hotel``). ``offerId`` as the hotel search answers it (``<vendor>~<ref>`` or
    ``contract~<contract URN>``); ``hotelUrn`` a hotel of the airline's catalog (its active contract, else
    that hotel's offer from a fresh vendor search: :func:`cases.services.booking.hotel_items_resolve`)."""
    out: dict[str, Any] = {"type": HOTEL}
    unknown = sorted(set(item) - {"type", "offerId", "hotelUrn", "checkIn", "nights"})
    errors += [{"field": f"{where}.{name}", "message": "Unknown member."} for name in unknown]
    offer_id, hotel_urn = item.get("offerId"), item.get("hotelUrn")
    if (offer_id is None) == (hotel_urn is None):
        errors.append({"field": f"{where}.offerId", "message": "give exactly one of offerId and hotelUrn"})
    elif offer_id is not None:
        vendor, _, ref = offer_id.partition("~") if isinstance(offer_id, str) else ("", "", "")
        if not vendor or not ref or len(offer_id) > 400:
            errors.append({"field": f"{where}.offerId", "message": "must be <vendor>~<ref> or contract~<contract URN>"})
        elif vendor == "contract":
            try:
                parse_urn(ref, "contract")
                out["offerId"] = offer_id
            except InvalidUrn as error:
                errors.append({"field": f"{where}.offerId", "message": error.message})
        elif vendor not in HOTEL_VENDORS:
            errors.append({"field": f"{where}.offerId", "message": f"unknown vendor {vendor!r}"})
        else:
            out["offerId"] = offer_id
    else:
        try:
            parse_urn(hotel_urn, "hotel")
            out["hotelUrn"] = hotel_urn
        except InvalidUrn as error:
            errors.append({"field": f"{where}.hotelUrn", "message": error.message})
    check_in = None
    try:
        check_in = dt.date.fromisoformat(item["checkIn"]) if isinstance(item.get("checkIn"), str) else None
    except ValueError:
        check_in = None
    if check_in is None:
        errors.append({"field": f"{where}.checkIn", "message": "must be a date YYYY-MM-DD"})
    elif check_in < now.date() - dt.timedelta(days=1):
        errors.append({"field": f"{where}.checkIn", "message": "must not be in the past"})
    else:
        out["checkIn"] = check_in.isoformat()
    nights = item.get("nights")
    if isinstance(nights, bool) or not isinstance(nights, int) or not 1 <= nights <= HOTEL_MAX_NIGHTS:
        errors.append({"field": f"{where}.nights", "message": f"must be an integer from 1 to {HOTEL_MAX_NIGHTS}"})
    else:
        out["nights"] = nights
    return out


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
    for index, item in enumerate(items[:MAX_ITEMS]):
        where = f"items[{index}]"
        if not isinstance(item, dict):
            shape.append({"field": where, "message": "must be an object"})
            continue
        kind = item.get("type")
        if kind == HOTEL:
            before = len(shape)
            hotel = _hotel_item(item, where, shape, now=now)
            if len(shape) == before:
                normalised.append(hotel)
            continue
        if kind not in ITEM_TYPES:
            known = ", ".join((*ITEM_TYPES, HOTEL))
            shape.append({"field": f"{where}.type", "message": f"must be one of {known} (got {kind!r})"})
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
        if len(shape) == before:
            normalised.append(out)

    if shape:
        raise validation_problem(shape + refused)
    if refused:
        raise validation_problem(refused, status=422)
    return CompensationRequest(items=normalised, reason=reason.strip())


def dependencies_of(request: CompensationRequest) -> list[str]:
    """The circuit-breaker names the saga of ``request`` will call, in item order, without repeats."""
    names: list[str] = []
    for item in request.items:
        name = saga.kind_of(item["type"]).breaker(item)
        if name is not None and name not in names:
            names.append(name)
    return names


def refuse_while_circuit_open(request: CompensationRequest) -> None:
    """A new saga is refused with 503 (``failedDomain``, ``Retry-After: 30``) while a provider it needs
    has an open circuit: accepting work that can only wait and then fail would hide the outage."""

    for name in dependencies_of(request):
        if breaker_for(name).current_state == "open":
            raise downstream_unavailable_problem(name)
