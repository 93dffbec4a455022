"""Reads of contracts: the list route and the allotment offers the hotel search and allocation see first.

Every query is scoped to one airline: the principal's for the API, the ``airline`` argument for
:func:`contract_offers` (called by the search and allocation use cases, which hold the principal).
"""

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db.models import QuerySet
from django.utils import timezone

from booking.airports import airport_get
from booking.contracts.models import Contract
from nexa.platform.auth import Principal
from nexa.platform.tenancy import for_principal, get_for_principal
from nexa.platform.urns import parse_urn


def contracts_active(*, principal: Principal, today: dt.date, airport: str | None = None, on: dt.date | None = None):
    """Current versions of the airline's contracts that have not ended before ``today``; ``airport`` keeps one
    airport's, ``on`` those in force that night (``validFrom ≤ on ≤ validTo``)."""
    contracts: QuerySet[Contract] = for_principal(Contract.objects.filter(current=True, valid_to__gte=today), principal)
    if airport:
        contracts = contracts.filter(airport=airport)
    if on is not None:
        contracts = contracts.filter(valid_from__lte=on, valid_to__gte=on)
    return contracts


def contract_get(*, principal: Principal, contract_urn: str) -> Contract:
    """The current version, or a 404 problem (also for another airline's); a malformed URN is a 400."""
    urn = parse_urn(contract_urn, "contract")
    return get_for_principal(Contract.objects.filter(current=True), principal, contract_id=urn.id)


def contract_versions(*, principal: Principal, contract_urn: str) -> list[Contract]:
    urn = parse_urn(contract_urn, "contract")
    return list(for_principal(Contract.objects.filter(contract_id=urn.id), principal).order_by("version"))


@dataclass(frozen=True, slots=True)
class ContractOffer:
    """Contract allotment for one stay: the airline's agreed rate for ``rooms_available`` rooms a night at
    ``hotel_urn`` for every night of the stay."""

    contract_urn: str
    contract_version: int
    hotel_urn: str
    airport: str
    check_in: dt.date
    nights: int
    rooms_available: int  # the allotment (per night); reservations are not subtracted yet (booking issue)
    sufficient: bool  # rooms_available >= the rooms asked for
    nightly_rate: Decimal
    currency: str
    meals_included: tuple[str, ...]
    cancellation_terms: str
    release_at: dt.datetime  # rooms not called off by then go back to the hotel (aware, UTC)
    guaranteed: bool  # the release time has not passed: the allotment is still held for the airline


def _release_at(contract: Contract, check_in: dt.date) -> dt.datetime:
    """``releaseHours`` before the check-in day starts in the airport's time zone."""

    airport = airport_get(iata=contract.airport)
    zone = ZoneInfo(airport.time_zone) if airport is not None and airport.time_zone else dt.UTC
    start = dt.datetime.combine(check_in, dt.time.min, tzinfo=zone)
    return (start - dt.timedelta(hours=contract.release_hours)).astimezone(dt.UTC)


def contract_offers(
    *,
    airline: str,
    check_in: dt.date,
    nights: int,
    rooms: int,
    airport: str | None = None,
    hotel_urns: list[str] | tuple[str, ...] | None = None,
    at: dt.datetime | None = None,
) -> list[ContractOffer]:
    """The airline's contract allotments that cover every night from ``check_in`` for ``nights`` nights, at
    ``airport`` and/or among ``hotel_urns`` (both optional, both applied when given). Ordered: offers with
    enough rooms for ``rooms`` first, then guaranteed ones, then by rate (per currency), then hotel URN.

    Past its release time an allotment is still offered (the contract rate applies while the hotel has the
    rooms) but with ``guaranteed=False``; ``at`` is "now" for that (default: the current time)."""
    if nights < 1 or rooms < 1:
        raise ValueError("nights and rooms must be at least 1")
    last_night = check_in + dt.timedelta(days=nights - 1)
    contracts = Contract.objects.filter(
        airline=airline, current=True, valid_from__lte=check_in, valid_to__gte=last_night, allotment__gte=1
    )
    if airport:
        contracts = contracts.filter(airport=airport)
    if hotel_urns is not None:
        contracts = contracts.filter(hotel_urn__in=list(hotel_urns))
    now = at or timezone.now()
    offers = []
    for contract in contracts.order_by("hotel_urn", "id"):
        release_at = _release_at(contract, check_in)
        offers.append(
            ContractOffer(
                contract_urn=contract.urn,
                contract_version=contract.version,
                hotel_urn=contract.hotel_urn,
                airport=contract.airport,
                check_in=check_in,
                nights=nights,
                rooms_available=contract.allotment,
                sufficient=contract.allotment >= rooms,
                nightly_rate=contract.rate_amount,
                currency=contract.rate_currency,
                meals_included=tuple(contract.meals_included),
                cancellation_terms=contract.cancellation_terms,
                release_at=release_at,
                guaranteed=now < release_at,
            )
        )
    offers.sort(key=lambda o: (not o.sufficient, not o.guaranteed, o.currency, o.nightly_rate, o.hotel_urn))
    return offers
