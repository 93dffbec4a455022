"""Hotel search: every vendor and the airline's contracts in flight at once, answered within
``NEXA_HOTEL_SEARCH_TIMEOUT_SECONDS`` (2 s) with what arrived (docs/hotels.md).

Three hooks let higher or sibling apps plug in without ``booking`` importing them (ARCHITECTURE §2):

* :func:`register_case_context_lookup` — ``fn(*, principal, case_urn) -> CaseContext``; raises the
  404 problem for a case that is not the principal's airline's (and 400 for a malformed URN).
  ``cases`` registers it at app ready (``cases/hotel_context.py``). Without it a ``caseUrn`` is a 404.
* :func:`register_policy_rules_source` — ``fn(*, principal, airport, tier, cause, case_urn) ->
  SearchRules | None``; ``None`` means no policy applies (every offer compliant, no violations), which
  is also the default with no source registered. ``booking.apps`` plugs ``policies.selectors
  .policy_resolve`` in when it exists (:func:`booking.policy_hook.rules_from_policies`).
* :func:`register_contract_offers_source` — ``fn(*, principal, query: SearchQuery) -> list[ContractOffer]``;
  default: none. The contracts work registers its source here; its offers rank before vendors'.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Protocol

import structlog
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit import services as audit
from booking import hotels as catalog
from booking.hotel_data import great_circle_km
from booking.models import HotelSearch
from booking.selectors import airport_get
from booking.vendors import Money, SearchArea, VendorOffer, configured_vendors, hotel_vendor
from nexa.platform.auth import Principal
from nexa.platform.composition import compose
from nexa.platform.models import TenantSettings
from nexa.platform.problems import downstream_unavailable_problem, not_found_problem, validation_problem
from nexa.platform.providers import ProviderError, ProviderUnavailable

logger = structlog.get_logger(__name__)

STATUS_OK = "ok"
STATUS_TIMEOUT = "timeout"
STATUS_ERROR = "error"
STATUS_CIRCUIT_OPEN = "circuit-open"
CONTRACTS_SECTION = "contracts"
POLICY_SECTION = "policies"
POLICY_UNAVAILABLE = "policyUnavailable"


# --- hook types ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CaseContext:
    case_urn: str
    airport: str
    cause: str | None = None


@dataclass(frozen=True)
class SearchRules:
    """The effective policy rules a search checks offers against (any rule may be absent)."""

    max_distance_km: float | None = None
    min_stars: int | None = None
    max_nightly_rate: Money | None = None
    max_occupancy: int | None = None
    accessible_room_for_prm: bool = False
    policy_urn: str | None = None


@dataclass(frozen=True)
class SearchQuery:
    airline: str
    airport: str
    check_in: date
    nights: int
    rooms: int
    occupancy: int
    accessible: bool = False
    tier: str | None = None
    cause: str | None = None
    case_urn: str | None = None


@dataclass(frozen=True)
class ContractOffer:
    contract_urn: str
    hotel_urn: str
    name: str
    stars: int
    distance_km: float
    nightly_rate: Money
    rooms_available: int
    accessible: bool


class CaseContextLookup(Protocol):
    def __call__(self, *, principal: Principal, case_urn: str) -> CaseContext: ...


class PolicyRulesSource(Protocol):
    def __call__(
        self, *, principal: Principal, airport: str, tier: str | None, cause: str | None, case_urn: str | None
    ) -> SearchRules | None: ...


class ContractOffersSource(Protocol):
    def __call__(self, *, principal: Principal, query: SearchQuery) -> list[ContractOffer]: ...


_hooks: dict[str, Callable | None] = {"case": None, "policy": None, "contracts": None}


def register_case_context_lookup(fn: CaseContextLookup | None) -> None:
    _hooks["case"] = fn


def register_policy_rules_source(fn: PolicyRulesSource | None) -> None:
    _hooks["policy"] = fn


def register_contract_offers_source(fn: ContractOffersSource | None) -> None:
    _hooks["contracts"] = fn


def case_context(*, principal: Principal, case_urn: str) -> CaseContext:
    """The case's airport and cause through the ``cases`` hook; a 404 when there is none."""
    lookup = _hooks["case"]
    if lookup is None:
        raise not_found_problem()
    return lookup(principal=principal, case_urn=case_urn)


# --- policy compliance and currency --------------------------------------------------------------

# Reference rates (value of one unit in EUR) used when the airline's TenantSettings.currency_rates do
# not cover a currency; demo data, like the simulators' prices.
REFERENCE_EUR_RATES = {"EUR": Decimal("1"), "USD": Decimal("0.926"), "GBP": Decimal("1.176"), "CHF": Decimal("1.053")}


@dataclass(frozen=True)
class Currency:
    code: str
    rates: dict[str, Decimal] = field(default_factory=dict)  # one unit of key = value of code

    def convert(self, money: Money, to: str | None = None) -> Money | None:
        target = to or self.code
        if money.currency == target:
            return money
        if target == self.code and money.currency in self.rates:
            return Money((money.amount * self.rates[money.currency]).quantize(Decimal("0.01")), target)
        if money.currency in REFERENCE_EUR_RATES and target in REFERENCE_EUR_RATES:
            eur = money.amount * REFERENCE_EUR_RATES[money.currency]
            return Money((eur / REFERENCE_EUR_RATES[target]).quantize(Decimal("0.01")), target)
        return None


def airline_currency(airline: str) -> Currency:
    row = TenantSettings.objects.filter(airline=airline).first()
    code = (row.settlement_currency if row and row.settlement_currency else None) or settings.NEXA_SETTLEMENT_CURRENCY
    raw = (row.currency_rates if row and row.currency_rates else None) or settings.NEXA_COMPENSATION_CURRENCY_RATES
    rates = {}
    for key, value in (raw or {}).items():
        try:
            rates[str(key).upper()] = Decimal(str(value))
        except ArithmeticError:
            continue
    return Currency(code=code.upper(), rates=rates)


def violations_for(
    *,
    rules: SearchRules | None,
    distance_km: float,
    stars: int,
    nightly: Money,
    accessible: bool,
    occupancy: int,
    accessible_requested: bool,
    currency: Currency,
) -> list[str]:
    if rules is None:
        return []
    found = []
    if rules.max_distance_km is not None and distance_km > rules.max_distance_km:
        found.append("maxDistanceKm")
    if rules.min_stars is not None and stars < rules.min_stars:
        found.append("minStars")
    if rules.max_nightly_rate is not None:
        converted = currency.convert(nightly, rules.max_nightly_rate.currency)
        if converted is None or converted.amount > rules.max_nightly_rate.amount:
            found.append("maxNightlyRate")
    if rules.max_occupancy is not None and occupancy > rules.max_occupancy:
        found.append("maxOccupancy")
    if rules.accessible_room_for_prm and accessible_requested and not accessible:
        found.append("accessibleRoomForPrm")
    return found


# --- the search ----------------------------------------------------------------------------------


@dataclass
class Candidate:
    """An offer normalised as its source answered (catalog match, distance, airline-currency price, quote
    times, the response row): only the policy check and the ranking are left for after the deadline."""

    row: dict[str, Any]  # the offer's JSON but policyCompliant/violations
    stars: int
    distance_km: float
    nightly: Money
    accessible: bool
    price: Decimal  # the ranking's price: in the airline's currency when convertible


@dataclass(frozen=True)
class Normaliser:
    """What normalising an offer needs, read before the scatter and shared (read-only) by the sections."""

    latitude: float
    longitude: float
    by_vendor_id: dict[tuple[str, str], Any]
    currency: Currency
    quote_ttl_seconds: int

    def _candidate(self, *, source, ref, hotel_urn, name, stars, distance_km, nightly, rooms_available, accessible,
                   quoted_at, expires_at) -> Candidate:  # fmt: skip
        converted = self.currency.convert(nightly)
        row = {
            "offerId": f"{source}~{ref}",
            "source": source,
            "hotelUrn": hotel_urn,
            "name": name,
            "stars": stars,
            "distanceKm": round(distance_km, 2),
            "nightlyRate": nightly.as_json(),
            "rateInAirlineCurrency": converted.as_json() if converted else None,
            "roomsAvailable": rooms_available,
            "accessible": accessible,
            "policyCompliant": True,
            "violations": [],
            "quotedAt": quoted_at,
            "expiresAt": expires_at,
        }
        price = converted.amount if converted else nightly.amount
        return Candidate(row, stars, distance_km, nightly, accessible, price)

    def _stamps(self) -> tuple[str, str]:
        now = timezone.now()
        expires = now + timedelta(seconds=self.quote_ttl_seconds)
        return now.isoformat().replace("+00:00", "Z"), expires.isoformat().replace("+00:00", "Z")

    def vendor_offers(self, offers: list[VendorOffer]) -> list[Candidate]:
        quoted_at, expires_at = self._stamps()
        candidates = []
        for offer in offers:
            hotel = self.by_vendor_id.get((offer.vendor, offer.vendor_hotel_id))
            distance = (
                hotel.distance_km if hotel else great_circle_km(self.latitude, self.longitude, offer.lat, offer.lng)
            )
            candidates.append(
                self._candidate(
                    source=offer.vendor,
                    ref=offer.ref,
                    hotel_urn=hotel.urn if hotel else None,
                    name=hotel.name if hotel else offer.name,
                    stars=hotel.stars if hotel else offer.stars,
                    distance_km=distance,
                    nightly=offer.nightly_rate,
                    rooms_available=offer.rooms_available,
                    accessible=offer.accessible,
                    quoted_at=quoted_at,
                    expires_at=expires_at,
                )
            )
        return candidates

    def contract_offers(self, offers: list[ContractOffer]) -> list[Candidate]:
        quoted_at, expires_at = self._stamps()
        return [
            self._candidate(
                source="contract",
                ref=offer.contract_urn,
                hotel_urn=offer.hotel_urn,
                name=offer.name,
                stars=offer.stars,
                distance_km=offer.distance_km,
                nightly=offer.nightly_rate,
                rooms_available=offer.rooms_available,
                accessible=offer.accessible,
                quoted_at=quoted_at,
                expires_at=expires_at,
            )
            for offer in offers
        ]


@dataclass
class VendorOutcome:
    vendor: str
    status: str
    elapsed_ms: int
    offers: list[Candidate] = field(default_factory=list)
    detail: str = ""


def _ask_vendor(vendor: str, query: SearchQuery, area: SearchArea, normaliser: Normaliser) -> VendorOutcome:
    """Ask one vendor and normalise its answer in this section's thread, as it arrives (before the deadline)."""
    started = time.monotonic()
    status, offers, detail = STATUS_OK, [], ""
    try:
        offers = hotel_vendor(vendor).search(
            area=area,
            check_in=query.check_in,
            nights=query.nights,
            rooms=query.rooms,
            occupancy=query.occupancy,
            accessible=query.accessible,
        )
    except ProviderUnavailable:
        status, detail = STATUS_CIRCUIT_OPEN, f"The {vendor} circuit is open; {vendor} was not asked."
    except ProviderError as error:
        status = STATUS_TIMEOUT if error.code == "timeout" else STATUS_ERROR
        detail = f"{vendor} failed: {error.code}."
    elapsed_ms = round((time.monotonic() - started) * 1000)
    return VendorOutcome(vendor, status, elapsed_ms, normaliser.vendor_offers(offers), detail)


def _vendor_rows(outcomes: list[VendorOutcome]) -> list[dict[str, Any]]:
    return [
        {"vendor": o.vendor, "status": o.status, "elapsedMs": o.elapsed_ms, "offerCount": len(o.offers)}
        for o in outcomes
    ]


def hotels_search(
    *,
    principal: Principal,
    airport: str | None,
    case_urn: str | None,
    check_in: date,
    nights: int,
    rooms: int,
    occupancy: int,
    tier: str | None = None,
    accessible: bool = False,
) -> dict[str, Any]:
    """Scatter-gather over every configured vendor, the contracts and the policy, answered within the
    search timeout; records the search (``searchUrn``) and audits it. All vendors failed and no
    contract offer → 503 problem, ``failedDomain: "booking"``."""
    started = time.monotonic()  # the 2 s count from here: the reads below overlap nothing, so they count too
    cause = None
    if case_urn:
        context = case_context(principal=principal, case_urn=case_urn)
        airport, cause = context.airport, context.cause
    place = airport_get(iata=airport or "")
    if place is None:  # as case_declare: an airport outside the catalog is a 400 on the field
        raise validation_problem(
            [{"field": "airport", "message": f"{airport!r} is not an IATA code in the airport catalog"}]
        )
    query = SearchQuery(
        airline=principal.airline,
        airport=place.iata,
        check_in=check_in,
        nights=nights,
        rooms=rooms,
        occupancy=occupancy,
        accessible=accessible,
        tier=tier,
        cause=cause,
        case_urn=case_urn,
    )
    area = SearchArea(place.iata, place.latitude, place.longitude, settings.NEXA_HOTEL_SEARCH_RADIUS_KM)
    # Read what normalising needs before the scatter: each section normalises its own offers as they
    # arrive, so once the deadline has passed only the policy check and the ranking are left (concurrent
    # searches reach their deadline together and would otherwise queue for the cores to normalise).
    currency = airline_currency(principal.airline)
    normaliser = Normaliser(
        latitude=place.latitude,
        longitude=place.longitude,
        by_vendor_id=catalog.hotels_by_vendor_id(principal=principal, airport=query.airport),
        currency=currency,
        quote_ttl_seconds=settings.NEXA_HOTEL_QUOTE_TTL_SECONDS,
    )
    vendors = configured_vendors()
    sections: dict[str, Callable[[], Any]] = {
        f"vendor:{vendor}": (lambda vendor=vendor: _ask_vendor(vendor, query, area, normaliser)) for vendor in vendors
    }
    if (contracts := _hooks["contracts"]) is not None:
        sections[CONTRACTS_SECTION] = lambda: normaliser.contract_offers(contracts(principal=principal, query=query))
    if (policy := _hooks["policy"]) is not None:
        sections[POLICY_SECTION] = lambda: policy(
            principal=principal, airport=query.airport, tier=tier, cause=cause, case_urn=case_urn
        )
    request = {
        "airport": query.airport,
        "caseUrn": case_urn,
        "checkIn": str(check_in),
        "nights": nights,
        "rooms": rooms,
        "occupancy": occupancy,
        "tier": tier,
        "accessible": accessible,
    }
    with transaction.atomic():
        search = HotelSearch.objects.create(
            airline=principal.airline,
            airport=query.airport,
            case_urn=case_urn or "",
            request=request,
            actor=principal.operator_urn,
        )
        audit.record(
            principal=principal, action="hotel.searched", entity_urn=search.urn, case_urn=case_urn, after=request
        )
    timeout = settings.NEXA_HOTEL_SEARCH_TIMEOUT_SECONDS
    joined = compose(sections, timeout=max(timeout - (time.monotonic() - started), 0.0))

    partial: list[dict[str, str]] = []
    outcomes: list[VendorOutcome] = []
    for vendor in vendors:
        outcome = joined.get(f"vendor:{vendor}")
        if outcome is None:
            late = any(
                f["domain"] == f"vendor:{vendor}" and f["status"] == STATUS_TIMEOUT for f in joined["partialFailures"]
            )
            outcome = VendorOutcome(
                vendor,
                STATUS_TIMEOUT if late else STATUS_ERROR,
                round(timeout * 1000) if late else 0,
                detail=f"{vendor} did not answer within {timeout:g} s." if late else f"{vendor} failed.",
            )
        outcomes.append(outcome)
        if outcome.status != STATUS_OK:
            partial.append({"domain": vendor, "status": outcome.status, "detail": outcome.detail})
    contract_offers: list[Candidate] = joined.get(CONTRACTS_SECTION) or []
    rules: SearchRules | None = joined.get(POLICY_SECTION)
    policy_failed = False
    for failure in joined["partialFailures"]:
        if failure["domain"] in (CONTRACTS_SECTION, POLICY_SECTION):
            partial.append(failure)
            policy_failed = policy_failed or failure["domain"] == POLICY_SECTION
    if vendors and all(outcome.status != STATUS_OK for outcome in outcomes) and not contract_offers:
        HotelSearch.objects.filter(pk=search.pk).update(vendors=_vendor_rows(outcomes))
        raise downstream_unavailable_problem("booking", "No hotel vendor answered; try again in 30 seconds.")

    # After the deadline: only the policy check (it needs the policy section's rules) and the ranking.
    candidates = contract_offers + [candidate for outcome in outcomes for candidate in outcome.offers]
    for candidate in candidates:
        violations = violations_for(
            rules=rules,
            distance_km=candidate.distance_km,
            stars=candidate.stars,
            nightly=candidate.nightly,
            accessible=candidate.accessible,
            occupancy=occupancy,
            accessible_requested=accessible,
            currency=currency,
        )
        if policy_failed:
            violations.append(POLICY_UNAVAILABLE)
        candidate.row["policyCompliant"], candidate.row["violations"] = not violations, violations
    candidates.sort(
        key=lambda c: (not c.row["policyCompliant"], c.row["source"] != "contract", c.row["distanceKm"], c.price)
    )
    offers = [candidate.row for candidate in candidates]

    vendor_rows = _vendor_rows(outcomes)
    # One UPDATE after the deadline: the row and its audit entry were written before the scatter.
    HotelSearch.objects.filter(pk=search.pk).update(vendors=vendor_rows, offer_count=len(offers))
    return {"searchUrn": search.urn, "offers": offers, "vendors": vendor_rows, "partialFailures": partial}
