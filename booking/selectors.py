"""Reads of the booking domain that other apps and the API use.

The airport catalog comes from the maintained ``airportsdata`` package (not a table: it is
reference data that ships with the code and changes only on upgrades). It is loaded once per
process and holds only airports with an IATA code, because that is how cases, policies and
hotels refer to an airport.
"""

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from booking import allocation as engine
from booking.airports import (  # noqa: F401 - the public read surface of booking
    AIRPORT_SEARCH_MAX_LIMIT,
    Airport,
    airport_get,
    airports_search,
)
from booking.allocation import (  # noqa: F401 - the engine's plain-data interface, for cases
    ALLOCATION_FAILED,
    DATA_INCOMPLETE,
    MIXED_TIER_GROUP,
    POLICY_VIOLATION,
    SOURCE_CONTRACT,
    SOURCE_VENDOR,
    AllocationInput,
    Assignment,
    Group,
    Offer,
    Passenger,
    Plan,
    Room,
    Rules,
    Unallocated,
)
from booking.contracts.selectors import ContractOffer, contract_offers  # noqa: F401 - contract reads of booking
from booking.hotel_data import great_circle_km  # noqa: F401 - the one distance formula (entitlements use it too)
from booking.models import ACTIVE_RESERVATION_STATUSES, Hotel, Reservation, ReservationStatus, WalletEntry
from booking.vendors import Money

# cases gathers the passengers' data and renders the voucher with booking's pure renderer.
from booking.vouchers import (  # noqa: F401 - the voucher surface of booking
    VOUCHER_LANGUAGES,
    VoucherData,
    VoucherGrant,
    VoucherHotel,
    VoucherOccupant,
    VoucherRoom,
    VoucherToken,
    voucher_html,
    voucher_language,
    voucher_link_valid_until,
    voucher_qr_payload,
    voucher_token_read,
    voucher_token_sign,
)
from nexa.platform.auth import Principal
from nexa.platform.tenancy import for_principal, get_for_principal
from nexa.platform.urns import InvalidUrn, parse_urn


@dataclass(frozen=True, slots=True)
class WalletView:
    sub_case_urn: str
    balances: dict[str, str]  # currency → balance, "250.00"
    entries: list  # booking.models.WalletEntry, oldest first


def wallet_for_subcase(*, principal, sub_case) -> WalletView:
    """The sub-case's wallet ledger and its balance per currency (tenant-scoped: another airline's
    sub-case has an empty wallet here; callers resolve the sub-case through cases.selectors first)."""

    entries = list(
        WalletEntry.objects.filter(sub_case_id=sub_case.pk, airline=principal.airline).order_by("created_at", "id")
    )
    totals: dict[str, Decimal] = {}
    for entry in entries:
        totals[entry.currency] = totals.get(entry.currency, Decimal("0")) + entry.amount
    balances = {currency: str(total.quantize(Decimal("0.01"))) for currency, total in sorted(totals.items())}
    return WalletView(sub_case_urn=sub_case.urn, balances=balances, entries=entries)


# --- allocation (issue 12): what the allocation use case in ``cases`` reads from booking ---------------
# The engine is a pure function over plain data (booking/allocation.py); ``cases`` builds its input from
# these dataclasses and calls :func:`allocation_plan`.


def allocation_plan(request: AllocationInput) -> Plan:
    """The engine's plan for ``request`` (:func:`booking.allocation.allocate`, looked up at call time)."""
    return engine.allocate(request)


def airline_currency(airline: str):
    """The airline's settlement currency and its conversion rates (:class:`booking.hotel_search.Currency`).
    Imported at call time: ``booking.hotel_search`` imports this module."""
    from booking.hotel_search import airline_currency as currency_of  # noqa: PLC0415 - import cycle

    return currency_of(airline)


def contract_rooms_reserved(*, airline: str, contract_urns, check_in: dt.date, nights: int) -> dict[str, int]:
    """Rooms of active reservations (HELD, CONFIRMED) called off each contract, as the most reserved on any
    night of the stay ``check_in`` … ``check_in + nights - 1``: the allotment left for that stay is the
    allotment minus this. Keyed by contract URN (every version of a contract counts); one query."""
    ids = {}
    for urn in contract_urns:
        try:
            ids[parse_urn(urn, "contract").id] = urn
        except InvalidUrn:
            continue
    if not ids or nights < 1:
        return {}
    last_night = check_in + dt.timedelta(days=nights - 1)
    rows = Reservation.objects.filter(
        airline=airline,
        status__in=ACTIVE_RESERVATION_STATUSES,
        contract__contract_id__in=list(ids),
        check_in__lte=last_night,
    ).values_list("contract__contract_id", "check_in", "nights", "rooms")
    per_night: dict[tuple[str, dt.date], int] = {}
    for contract_id, start, length, rooms in rows:
        for offset in range(length):
            night = start + dt.timedelta(days=offset)
            if check_in <= night <= last_night:
                key = (ids[contract_id], night)
                per_night[key] = per_night.get(key, 0) + len(rooms or [])
    reserved: dict[str, int] = {}
    for (urn, _night), count in per_night.items():
        reserved[urn] = max(reserved.get(urn, 0), count)
    return reserved


def allocation_contract_offers(*, airline: str, airport: str, check_in: dt.date, nights: int) -> list[Offer]:
    """The airline's contract allotments at ``airport`` for the stay as engine offers: rooms left after active
    reservations (:func:`contract_rooms_reserved`), priced in the airline's currency, described by the catalog
    hotel (a contract whose hotel is not in the catalog, or whose rate cannot be converted, is left out).
    Contracts carry no accessibility of their own: the hotel's accessible rooms are taken as those of the
    allotment (at most the rooms left)."""
    allotments = contract_offers(airline=airline, airport=airport, check_in=check_in, nights=nights, rooms=1)
    if not allotments:
        return []
    reserved = contract_rooms_reserved(
        airline=airline, contract_urns=[offer.contract_urn for offer in allotments], check_in=check_in, nights=nights
    )
    hotel_ids = set()
    for offer in allotments:
        try:
            hotel_ids.add(parse_urn(offer.hotel_urn, "hotel").id)
        except InvalidUrn:
            continue
    hotels = {hotel.urn: hotel for hotel in Hotel.objects.filter(airline=airline, id__in=hotel_ids)}
    currency = airline_currency(airline)
    offers = []
    for allotment in allotments:
        hotel = hotels.get(allotment.hotel_urn)
        left = allotment.rooms_available - reserved.get(allotment.contract_urn, 0)
        rate = currency.convert(Money(Decimal(allotment.nightly_rate), allotment.currency))
        if hotel is None or left < 1 or rate is None:
            continue
        offers.append(
            Offer(
                offer_id=f"contract~{allotment.contract_urn}",
                source=SOURCE_CONTRACT,
                hotel_urn=hotel.urn,
                hotel_name=hotel.name,
                stars=hotel.stars,
                distance_km=round(hotel.distance_km, 2),
                nightly_rate=rate.amount,
                currency=rate.currency,
                rooms_available=left,
                accessible_rooms=min(hotel.accessible_rooms, left),
                contract_urn=allotment.contract_urn,
            )
        )
    return offers


# --- reservations (docs/booking.md § Reservations and vouchers) ------------------------------------------


def reservation_get(*, principal: Principal, reservation_urn: str) -> Reservation:
    """The reservation (hotel and contract loaded), or a 404 problem — also for another airline's; a
    malformed URN is a 400."""
    urn = parse_urn(reservation_urn, "reservation")
    return get_for_principal(Reservation.objects.select_related("hotel", "contract"), principal, id=urn.id)


def reservation_get_by_id(*, reservation_id) -> Reservation | None:
    """The reservation by id, whatever the airline (the signed passenger link names it; no principal)."""
    return Reservation.objects.select_related("hotel", "contract").filter(id=reservation_id).first()


def reservations_for_case(*, principal: Principal, case_id, status: str | None = None, hotel_urn: str | None = None):
    """The case's reservations (hotel loaded), optionally one status and/or one catalog hotel. The caller
    resolved the case through ``cases.selectors.case_get`` (tenant check); this scopes by airline too."""
    reservations = for_principal(Reservation.objects.filter(case_id=case_id), principal).select_related("hotel")
    if status:
        reservations = reservations.filter(status=status)
    if hotel_urn:
        reservations = reservations.filter(hotel_id=parse_urn(hotel_urn, "hotel").id)
    return reservations


@dataclass(frozen=True, slots=True)
class CaseHotelCount:
    """Rooms of a case at one hotel for one stay (check-in, nights) booked through one source."""

    hotel_urn: str | None
    name: str
    source: str
    check_in: object  # datetime.date
    nights: int
    rooms_held: int
    rooms_confirmed: int
    rooms_released: int


def case_hotel_counts(*, principal: Principal, case_id) -> list[CaseHotelCount]:
    """Per hotel (catalog hotel, else the booked name), source and stay: rooms HELD, CONFIRMED and released
    (CANCELLED reservations: released to the vendor or hotel). FAILED reservations never held a room and
    are not counted; a stay with nothing to count is left out. Ordered by check-in, then name."""
    rows = (
        for_principal(Reservation.objects.filter(case_id=case_id), principal)
        .select_related("hotel")
        .only("hotel_id", "hotel__id", "hotel__name", "hotel_name", "source", "check_in", "nights", "status", "rooms")
    )
    counters: dict[tuple, dict] = {}
    for reservation in rows:
        hotel = reservation.hotel
        key = (
            str(hotel.id) if hotel else reservation.hotel_name,
            reservation.source,
            reservation.check_in,
            reservation.nights,
        )
        entry = counters.setdefault(
            key,
            {
                "hotel_urn": hotel.urn if hotel else None,
                "name": hotel.name if hotel else reservation.hotel_name,
                "source": reservation.source,
                "check_in": reservation.check_in,
                "nights": reservation.nights,
                ReservationStatus.HELD: 0,
                ReservationStatus.CONFIRMED: 0,
                ReservationStatus.CANCELLED: 0,
            },
        )
        if reservation.status in entry:
            entry[reservation.status] += len(reservation.rooms or [])
    counts = [
        CaseHotelCount(
            hotel_urn=entry["hotel_urn"],
            name=entry["name"],
            source=entry["source"],
            check_in=entry["check_in"],
            nights=entry["nights"],
            rooms_held=entry[ReservationStatus.HELD],
            rooms_confirmed=entry[ReservationStatus.CONFIRMED],
            rooms_released=entry[ReservationStatus.CANCELLED],
        )
        for entry in counters.values()
    ]
    counts = [c for c in counts if c.rooms_held or c.rooms_confirmed or c.rooms_released]
    counts.sort(key=lambda c: (c.check_in, c.name, c.source, c.nights))
    return counts


def reservation_is_active(reservation: Reservation) -> bool:
    return reservation.status in ACTIVE_RESERVATION_STATUSES
