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
from booking.hotel_data import great_circle_km  # noqa: F401 - the one distance formula (entitlements use it too)
from booking.models import WalletEntry


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
