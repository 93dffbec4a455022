"""The allocation engine (ARCHITECTURE §2: a pure function over plain data in ``booking``; the use case
that gathers the data — ``cases.services.allocation`` — lives in ``cases``).

:func:`allocate` takes the wave's groups (passengers with tier, needs and PNR), the resolved policy
rules per tier and the inventory (contract allotments and vendor offers, prices in the airline's
currency) and returns a :class:`Plan`: which group sleeps in which rooms of which hotel, and which
groups could not be placed and why (spec 001 categories). It reads no database, clock or setting:
the same input gives the same plan.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

# Spec 001 categories a group can fail allocation with.
ALLOCATION_FAILED = "ALLOCATION_FAILED"
POLICY_VIOLATION = "POLICY_VIOLATION"
MIXED_TIER_GROUP = "MIXED_TIER_GROUP"
DATA_INCOMPLETE = "DATA_INCOMPLETE"

SOURCE_CONTRACT = "CONTRACT"
SOURCE_VENDOR = "VENDOR"


@dataclass(frozen=True)
class Passenger:
    """One sub-case as the engine sees it. ``key`` is the sub-case URN."""

    key: str
    pnr: str
    tier: str
    needs: frozenset[str] = frozenset()  # SpecialNeed values: WHEELCHAIR, INFANT, UNACCOMPANIED_MINOR, …
    minor: bool = False  # a child travelling with a guardian of the same PNR (INFANT counts)
    missing: tuple[str, ...] = ()  # required manifest fields that are empty (→ DATA_INCOMPLETE)

    @property
    def unaccompanied_minor(self) -> bool:
        return "UNACCOMPANIED_MINOR" in self.needs

    @property
    def reduced_mobility(self) -> bool:
        return bool(self.needs & {"WHEELCHAIR", "MEDICAL"})


@dataclass(frozen=True)
class Group:
    """A passenger group (``urn`` and human ``label``), the unit rooms are allocated to."""

    urn: str
    label: str
    passengers: tuple[Passenger, ...]


@dataclass(frozen=True)
class Rules:
    """The effective policy rules for one tier (any rule may be absent)."""

    policy_urn: str
    max_distance_km: float | None = None
    min_stars: int | None = None
    max_nightly_rate: Decimal | None = None  # in the airline's currency
    max_occupancy: int = 2
    accessible_room_for_prm: bool = True


@dataclass(frozen=True)
class Offer:
    """Rooms available at one hotel from one source, priced per room-night in the airline's currency."""

    offer_id: str  # "contract~urn:nexa:contract:…" or "<vendor>~<ref>" as the hotel search answers
    source: str  # SOURCE_CONTRACT | SOURCE_VENDOR
    hotel_urn: str | None
    hotel_name: str
    stars: int
    distance_km: float
    nightly_rate: Decimal
    currency: str
    rooms_available: int
    accessible_rooms: int = 0  # how many of rooms_available are accessible
    vendor: str = ""  # vendor code (SOURCE_VENDOR)
    contract_urn: str = ""  # (SOURCE_CONTRACT)


@dataclass(frozen=True)
class AllocationInput:
    groups: tuple[Group, ...]
    rules_by_tier: dict[str, Rules | None]  # None: no policy resolves for that tier (→ POLICY_VIOLATION)
    inventory: tuple[Offer, ...]


@dataclass(frozen=True)
class Room:
    occupants: tuple[str, ...]  # sub-case URNs
    accessible: bool = False
    escort: bool = False  # an unaccompanied minor's room: staff escort them


@dataclass(frozen=True)
class Assignment:
    group_urn: str
    offer: Offer
    rooms: tuple[Room, ...]
    policy_urn: str
    reason: str  # why this hotel, in words ("contract rate 89.00 EUR, 4.2 km, 4★")
    # Other compliant offers that could take the whole group, best first: the booking saga tries them
    # when the hold on ``offer`` fails.
    alternatives: tuple[Offer, ...] = ()


@dataclass(frozen=True)
class Unallocated:
    group_urn: str
    category: str
    reason: str


@dataclass(frozen=True)
class Plan:
    assignments: tuple[Assignment, ...] = ()
    unallocated: tuple[Unallocated, ...] = field(default_factory=tuple)


def allocate(request: AllocationInput) -> Plan:
    """The plan for ``request`` (see the module docstring and docs/booking.md § Allocation rules)."""
    raise NotImplementedError
