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
    max_occupancy: int | None = 2  # the policy's maxOccupancy.perRoom (None: absent, read as 2)
    accessible_room_for_prm: bool = True
    # maxOccupancy.familyException: a family (a PNR party with a minor) shares one room beyond perRoom, up
    # to family_room_max people (a family room), rather than a child being alone or the family split.
    family_exception: bool = False
    family_room_max: int = 4


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
    passenger_keys: tuple[str, ...] = ()  # the group's sub-case URNs (sorted): none of them was placed


@dataclass(frozen=True)
class Plan:
    assignments: tuple[Assignment, ...] = ()
    unallocated: tuple[Unallocated, ...] = field(default_factory=tuple)


DEFAULT_PER_ROOM = 2
DEFAULT_FAMILY_ROOM_MAX = 4
# The alternatives an assignment carries (the booking saga's fallbacks when a hold fails).
MAX_ALTERNATIVES = 5


def allocate(request: AllocationInput) -> Plan:
    """The plan for ``request`` (see the module docstring and docs/booking.md § Allocation rules).

    Groups are placed one after another, hardest first (:func:`group_order`), each consuming the
    inventory it is given, so the order decides who gets the scarce contract and accessible rooms.
    A group is placed whole or not at all: a group that cannot be placed consumes nothing.
    """
    offers = _ranked_offers(request.inventory)
    stock = {offer.offer_id: _Stock(offer.rooms_available, offer.accessible_rooms) for offer in offers}
    currency = offers[0].currency if offers else ""
    seen: dict[str, str] = {}
    assignments: list[Assignment] = []
    unallocated: list[Unallocated] = []
    for group in sorted((_normalised(group) for group in request.groups), key=group_order):
        keys = tuple(passenger.key for passenger in group.passengers)
        outcome = _refusal(group, request.rules_by_tier, seen)
        for key in keys:
            seen.setdefault(key, group.label or group.urn)
        if outcome is None:
            rules = request.rules_by_tier[group.passengers[0].tier]
            assert rules is not None  # _refusal checked it
            outcome = _place(group, rules, offers, stock, currency)
        if isinstance(outcome, tuple):
            category, reason = outcome
            unallocated.append(Unallocated(group.urn, category, reason, keys))
        else:
            assignments.extend(outcome)
    return Plan(assignments=tuple(assignments), unallocated=tuple(unallocated))


def group_order(group: Group) -> tuple:
    """The order groups are placed in, hardest first, so scarce rooms go where they matter:

    1. groups with a reduced-mobility passenger (they need accessible rooms, the scarcest stock);
    2. then groups with an unaccompanied minor (a room each, escorted);
    3. then larger groups before smaller ones (a big family is harder to keep at one hotel);
    4. then by label and URN (stable tie-break, so the same input always gives the same plan).
    """
    passengers = group.passengers
    return (
        0 if any(passenger.reduced_mobility for passenger in passengers) else 1,
        0 if any(passenger.unaccompanied_minor for passenger in passengers) else 1,
        -len(passengers),
        group.label,
        group.urn,
    )


def offer_rank(offer: Offer) -> tuple:
    """Best first: contract allotments before vendor inventory, then lowest rate, then nearest; offer id last."""
    return (0 if offer.source == SOURCE_CONTRACT else 1, offer.nightly_rate, offer.distance_km, offer.offer_id)


def complies(offer: Offer, rules: Rules) -> bool:
    """Whether ``offer``'s hotel and rate satisfy ``rules`` (occupancy is the room layout's business)."""
    if rules.max_distance_km is not None and offer.distance_km > rules.max_distance_km:
        return False
    if rules.min_stars is not None and offer.stars < rules.min_stars:
        return False
    return rules.max_nightly_rate is None or offer.nightly_rate <= rules.max_nightly_rate


def is_minor(passenger: Passenger) -> bool:
    """A child who must sleep with an adult of their PNR (unaccompanied minors are handled apart)."""
    return passenger.minor or "INFANT" in passenger.needs or passenger.unaccompanied_minor


def room_capacity(rules: Rules, *, family: bool) -> int:
    """People one room may hold: ``max_occupancy``, or a family room under the policy's family exception."""
    # An absent perRoom (None) reads as the dataclass default of 2, never as "no limit".
    capacity = max(1, rules.max_occupancy if rules.max_occupancy is not None else DEFAULT_PER_ROOM)
    if family and rules.family_exception:
        capacity = max(capacity, rules.family_room_max or DEFAULT_FAMILY_ROOM_MAX)
    return capacity


# --- internals --------------------------------------------------------------------------------------------


@dataclass
class _Stock:
    rooms: int
    accessible: int

    def __post_init__(self) -> None:
        self.rooms = max(0, self.rooms)
        self.accessible = max(0, min(self.accessible, self.rooms))

    def fits(self, rooms: int, accessible: int) -> bool:
        return self.rooms >= rooms and self.accessible >= accessible

    def take(self, rooms: int, accessible: int) -> None:
        # Standard rooms come out of the non-accessible stock first; only when it runs dry do they
        # take accessible rooms, hence the min().
        self.rooms -= rooms
        self.accessible = min(self.accessible - accessible, self.rooms)


@dataclass(frozen=True)
class _Party:
    """One PNR's passengers in a group, laid out in rooms (adjoining when more than one)."""

    pnr: str
    rooms: tuple[Room, ...]

    @property
    def accessible(self) -> int:
        return sum(1 for room in self.rooms if room.accessible)


def _ranked_offers(inventory: tuple[Offer, ...]) -> list[Offer]:
    """The inventory best first; an offer id listed twice counts once (the first in a stable order)."""
    unique: dict[str, Offer] = {}
    for offer in sorted(inventory, key=lambda offer: (offer.offer_id, repr(offer))):
        unique.setdefault(offer.offer_id, offer)
    return sorted(unique.values(), key=offer_rank)


def _normalised(group: Group) -> Group:
    """The group with its passengers in a stable order (the caller's order must not change the plan)."""
    passengers = sorted(
        group.passengers,
        key=lambda p: (p.key, p.pnr, p.tier, sorted(p.needs), p.minor, p.missing),
    )
    return Group(urn=group.urn, label=group.label, passengers=tuple(passengers))


def _refusal(group: Group, rules_by_tier: dict[str, Rules | None], seen: dict[str, str]) -> tuple[str, str] | None:
    """Why the group cannot be considered at all (category, reason), or None."""
    passengers = group.passengers
    if not passengers:
        return DATA_INCOMPLETE, "the group has no passengers"
    twice = [f"{p.key} (also in {seen[p.key]})" for p in passengers if p.key in seen]
    if twice or len({p.key for p in passengers}) != len(passengers):
        listed = ", ".join(twice) or "a passenger listed twice in the group"
        return DATA_INCOMPLETE, f"passenger in more than one group: {listed}"
    missing = [p for p in passengers if p.missing]
    if missing:
        detail = "; ".join(f"{p.key}: {', '.join(p.missing)}" for p in missing)
        return DATA_INCOMPLETE, f"manifest fields missing for {len(missing)} passenger(s): {detail}"
    tiers = sorted({p.tier for p in passengers})
    if len(tiers) > 1:
        return MIXED_TIER_GROUP, (
            f"the group mixes tiers {', '.join(tiers)}: the engine does not choose whose policy applies; "
            "split the group by tier or place it by hand"
        )
    if rules_by_tier.get(tiers[0]) is None:
        return POLICY_VIOLATION, f"no policy resolves for tier {tiers[0]}"
    return None


def _layout(group: Group, rules: Rules) -> list[_Party] | str:
    """The group's rooms, one PNR party at a time, or why they cannot be laid out.

    An unaccompanied minor sleeps alone (escorted). The rest of a party shares rooms of at most
    :func:`room_capacity` people, every room holding a minor also holding an adult of the PNR, with
    reduced-mobility passengers placed first so they share as few (accessible) rooms as possible.
    """
    by_pnr: dict[str, list[Passenger]] = {}
    for passenger in group.passengers:
        by_pnr.setdefault(passenger.pnr, []).append(passenger)
    parties = []
    for pnr in sorted(by_pnr):
        members = by_pnr[pnr]
        rooms = [
            _room([p], rules, escort=True) for p in members if p.unaccompanied_minor
        ]  # never shared, not even with another unaccompanied minor
        rest = [p for p in members if not p.unaccompanied_minor]
        adults = sorted((p for p in rest if not is_minor(p)), key=_prm_first)
        minors = sorted((p for p in rest if is_minor(p)), key=_prm_first)
        capacity = room_capacity(rules, family=bool(minors))
        if minors and not adults:
            return (
                f"PNR {pnr}: minor(s) {', '.join(p.key for p in minors)} without an adult of their PNR in the "
                "group and not flagged UNACCOMPANIED_MINOR"
            )
        if minors and capacity < 2:
            return (
                f"PNR {pnr}: the policy allows 1 person per room without a family exception, so minor(s) "
                f"{', '.join(p.key for p in minors)} cannot sleep with an adult of their PNR"
            )
        minor_rooms = -(-len(minors) // (capacity - 1)) if minors else 0
        if minor_rooms > len(adults):
            return f"PNR {pnr}: {len(adults)} adult(s) cannot stay with {len(minors)} minor(s) at {capacity} per room"
        if rest:
            rooms.extend(_room(occupants, rules) for occupants in _pack(adults, minors, capacity, minor_rooms))
        parties.append(_Party(pnr=pnr, rooms=tuple(rooms)))
    return parties


def _prm_first(passenger: Passenger) -> tuple:
    return (not passenger.reduced_mobility, passenger.key)


def _pack(adults: list[Passenger], minors: list[Passenger], capacity: int, minor_rooms: int) -> list[list[Passenger]]:
    """Fill rooms of ``capacity``: one adult opens each of the first ``minor_rooms`` rooms, the minors
    fill those (at most capacity - 1 each, in order), the remaining adults fill the first free places."""
    count = max(-(-(len(adults) + len(minors)) // capacity), minor_rooms)
    rooms: list[list[Passenger]] = [[] for _ in range(count)]
    for index in range(minor_rooms):
        rooms[index].append(adults[index])
    for index, minor in enumerate(minors):
        rooms[index // (capacity - 1)].append(minor)
    for adult in adults[minor_rooms:]:
        next(room for room in rooms if len(room) < capacity).append(adult)
    return [room for room in rooms if room]


def _room(occupants: list[Passenger], rules: Rules, *, escort: bool = False) -> Room:
    accessible = rules.accessible_room_for_prm and any(p.reduced_mobility for p in occupants)
    return Room(occupants=tuple(sorted(p.key for p in occupants)), accessible=accessible, escort=escort)


def _hotel_key(offer: Offer) -> str:
    return offer.hotel_urn or f"name:{offer.hotel_name}"


def _place(
    group: Group, rules: Rules, offers: list[Offer], stock: dict[str, _Stock], currency: str
) -> list[Assignment] | tuple[str, str]:
    parties = _layout(group, rules)
    if isinstance(parties, str):
        return ALLOCATION_FAILED, parties
    rooms = sum(len(party.rooms) for party in parties)
    accessible = sum(party.accessible for party in parties)
    compliant = [offer for offer in offers if complies(offer, rules)]
    if not compliant:
        return ALLOCATION_FAILED, f"no hotel {_criteria(rules, currency)} in the inventory"

    # 1. The whole group at one offer (one hotel, one booking).
    fitting = [offer for offer in compliant if stock[offer.offer_id].fits(rooms, accessible)]
    if fitting:
        chosen = fitting[0]
        stock[chosen.offer_id].take(rooms, accessible)
        all_rooms = tuple(room for party in parties for room in party.rooms)
        return [_assignment(group, rules, chosen, all_rooms, tuple(fitting[1 : 1 + MAX_ALTERNATIVES]), "")]

    # 2. The whole group at one hotel, its PNR parties over several of that hotel's offers.
    hotels: dict[str, list[Offer]] = {}
    for offer in compliant:
        hotels.setdefault(_hotel_key(offer), []).append(offer)
    for hotel_offers in hotels.values():
        packed = _pack_parties(parties, hotel_offers, stock)
        if packed is not None:
            note = f"; the group's PNR parties over {len(packed)} offers at this hotel"
            return _commit(group, rules, packed, compliant, stock, note)

    # 3. Across hotels, each PNR party whole at one hotel (preferring hotels the group already uses).
    packed = _pack_parties(parties, compliant, stock)
    if packed is not None:
        count = len({_hotel_key(offer) for offer, _ in packed})
        note = (
            f"; no single hotel could take the whole group ({rooms} rooms, {accessible} accessible): "
            f"placed across {count} hotels by PNR party"
        )
        return _commit(group, rules, packed, compliant, stock, note)
    return ALLOCATION_FAILED, _shortage(parties, rules, compliant, stock, currency)


def _pack_parties(
    parties: list[_Party], offers: list[Offer], stock: dict[str, _Stock]
) -> list[tuple[Offer, list[_Party]]] | None:
    """Each party whole at one of ``offers`` (hardest party first; an offer or hotel already used by the
    group preferred, then rank), on a copy of the stock; None when some party fits nowhere."""
    left = {offer.offer_id: _Stock(stock[offer.offer_id].rooms, stock[offer.offer_id].accessible) for offer in offers}
    used: dict[str, list[_Party]] = {}
    hotels: set[str] = set()
    for party in sorted(parties, key=lambda party: (-party.accessible, -len(party.rooms), party.pnr)):
        candidates = [offer for offer in offers if left[offer.offer_id].fits(len(party.rooms), party.accessible)]
        if not candidates:
            return None
        best = min(
            candidates,
            key=lambda offer: (offer.offer_id not in used, _hotel_key(offer) not in hotels, offer_rank(offer)),
        )
        left[best.offer_id].take(len(party.rooms), party.accessible)
        used.setdefault(best.offer_id, []).append(party)
        hotels.add(_hotel_key(best))
    by_id = {offer.offer_id: offer for offer in offers}
    return sorted(
        ((by_id[offer_id], sorted(group, key=lambda party: party.pnr)) for offer_id, group in used.items()),
        key=lambda item: offer_rank(item[0]),
    )


def _commit(
    group: Group,
    rules: Rules,
    packed: list[tuple[Offer, list[_Party]]],
    compliant: list[Offer],
    stock: dict[str, _Stock],
    note: str,
) -> list[Assignment]:
    # Alternatives are read before any of the group's rooms are taken: what could replace each part.
    parts = []
    for offer, parties in packed:
        rooms = tuple(room for party in parties for room in party.rooms)
        accessible = sum(party.accessible for party in parties)
        alternatives = tuple(
            other
            for other in compliant
            if other.offer_id != offer.offer_id and stock[other.offer_id].fits(len(rooms), accessible)
        )[:MAX_ALTERNATIVES]
        parts.append((offer, rooms, accessible, alternatives))
    assignments = []
    for offer, rooms, accessible, alternatives in parts:
        stock[offer.offer_id].take(len(rooms), accessible)
        assignments.append(_assignment(group, rules, offer, rooms, alternatives, note))
    return assignments


def _assignment(
    group: Group, rules: Rules, offer: Offer, rooms: tuple[Room, ...], alternatives: tuple[Offer, ...], note: str
) -> Assignment:
    source = "contract" if offer.source == SOURCE_CONTRACT else (offer.vendor or "vendor")
    reason = f"{source} rate {offer.nightly_rate:.2f} {offer.currency}, {offer.distance_km:.1f} km, {offer.stars}★"
    return Assignment(
        group_urn=group.urn,
        offer=offer,
        rooms=rooms,
        policy_urn=rules.policy_urn,
        reason=reason + note,
        alternatives=alternatives,
    )


def _criteria(rules: Rules, currency: str) -> str:
    parts = []
    if rules.max_distance_km is not None:
        parts.append(f"within {rules.max_distance_km:g} km")
    if rules.min_stars is not None:
        parts.append(f"of ≥ {rules.min_stars}★")
    if rules.max_nightly_rate is not None:
        parts.append(f"at ≤ {rules.max_nightly_rate:.2f} {currency}".rstrip())
    return " ".join(parts) or "at all"


def _shortage(
    parties: list[_Party], rules: Rules, compliant: list[Offer], stock: dict[str, _Stock], currency: str
) -> str:
    """What was short, in words, for a group no compliant inventory could take."""
    criteria = _criteria(rules, currency)
    rooms = sum(len(party.rooms) for party in parties)
    accessible = sum(party.accessible for party in parties)
    rooms_left = sum(stock[offer.offer_id].rooms for offer in compliant)
    accessible_left = sum(stock[offer.offer_id].accessible for offer in compliant)
    if accessible and accessible_left == 0:
        return f"no accessible room {criteria} (the group needs {accessible})"
    if accessible > accessible_left:
        return f"only {accessible_left} accessible room(s) {criteria} left; the group needs {accessible}"
    if rooms_left == 0:
        return f"no room {criteria} left (the group needs {rooms})"
    if rooms > rooms_left:
        return f"only {rooms_left} room(s) {criteria} left; the group needs {rooms}"
    most = max(stock[offer.offer_id].rooms for offer in compliant)
    most_accessible = max(stock[offer.offer_id].accessible for offer in compliant)
    hardest = max(parties, key=lambda party: (len(party.rooms), party.accessible, party.pnr))
    return (
        f"no single hotel {criteria} has {len(hardest.rooms)} room(s) ({hardest.accessible} accessible) left for "
        f"PNR {hardest.pnr}'s party, which must stay together (at most {most} room(s), {most_accessible} "
        "accessible, left at one offer)"
    )
