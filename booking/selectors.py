"""Reads of the booking domain that other apps and the API use.

The airport catalog comes from the maintained ``airportsdata`` package (not a table: it is
reference data that ships with the code and changes only on upgrades). It is loaded once per
process and holds only airports with an IATA code, because that is how cases, policies and
hotels refer to an airport.
"""

from dataclasses import dataclass
from decimal import Decimal

from booking.airports import (  # noqa: F401 - the public read surface of booking
    AIRPORT_SEARCH_MAX_LIMIT,
    Airport,
    airport_get,
    airports_search,
)
from booking.contracts.selectors import ContractOffer, contract_offers  # noqa: F401 - contract reads of booking
from booking.models import ACTIVE_RESERVATION_STATUSES, Reservation, ReservationStatus, WalletEntry

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
from nexa.platform.urns import parse_urn


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
