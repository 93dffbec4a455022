"""The allocation engine (booking/allocation.py): a pure function, so plain pytest — no database.

One test per rule of docs/booking.md § Allocation rules, then a property test over a generated
300-passenger manifest and a size check (300 passengers, 200 offers)."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from dataclasses import replace
from decimal import Decimal

import pytest

from booking.allocation import (
    ALLOCATION_FAILED,
    DATA_INCOMPLETE,
    MIXED_TIER_GROUP,
    POLICY_VIOLATION,
    SOURCE_CONTRACT,
    SOURCE_VENDOR,
    AllocationInput,
    Group,
    Offer,
    Passenger,
    Plan,
    Rules,
    allocate,
    complies,
    is_minor,
    room_capacity,
)

RULES = Rules(policy_urn="urn:nexa:policy:eco", max_distance_km=20, min_stars=3, max_nightly_rate=Decimal("120.00"))


def pax(key: str, pnr: str = "PNR1", tier: str = "ECONOMY", *needs: str, minor: bool = False, missing=()) -> Passenger:
    return Passenger(
        key=f"urn:nexa:subcase:{key}", pnr=pnr, tier=tier, needs=frozenset(needs), minor=minor, missing=tuple(missing)
    )


def group(label: str, *passengers: Passenger) -> Group:
    return Group(urn=f"urn:nexa:group:{label}", label=label, passengers=passengers)


def offer(
    ref: str,
    *,
    rate: str = "90.00",
    km: float = 5.0,
    stars: int = 4,
    rooms: int = 10,
    accessible: int = 0,
    contract: bool = False,
    hotel: str | None = None,
) -> Offer:
    hotel = hotel or ref
    if contract:
        return Offer(
            offer_id=f"contract~urn:nexa:contract:{ref}",
            source=SOURCE_CONTRACT,
            hotel_urn=f"urn:nexa:hotel:{hotel}",
            hotel_name=f"Hotel {hotel}",
            stars=stars,
            distance_km=km,
            nightly_rate=Decimal(rate),
            currency="EUR",
            rooms_available=rooms,
            accessible_rooms=accessible,
            contract_urn=f"urn:nexa:contract:{ref}",
        )
    return Offer(
        offer_id=f"stayhub~{ref}",
        source=SOURCE_VENDOR,
        hotel_urn=f"urn:nexa:hotel:{hotel}",
        hotel_name=f"Hotel {hotel}",
        stars=stars,
        distance_km=km,
        nightly_rate=Decimal(rate),
        currency="EUR",
        rooms_available=rooms,
        accessible_rooms=accessible,
        vendor="stayhub",
    )


def run(groups, inventory, rules=None) -> Plan:
    rules_by_tier = rules if rules is not None else {"ECONOMY": RULES}
    return allocate(AllocationInput(groups=tuple(groups), rules_by_tier=rules_by_tier, inventory=tuple(inventory)))


def only(plan: Plan, label: str):
    found = [a for a in plan.assignments if a.group_urn == f"urn:nexa:group:{label}"]
    assert len(found) == 1, found
    return found[0]


def occupants(assignment) -> list[set[str]]:
    return [{key.rsplit(":", 1)[1] for key in room.occupants} for room in assignment.rooms]


# --- policy compliance and ranking ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ({"km": 20.5}, "too far"),
        ({"stars": 2}, "too few stars"),
        ({"rate": "120.01"}, "too dear"),
    ],
)
def test_a_non_compliant_offer_is_never_used_even_when_it_ranks_first(bad, why):
    cheap_but_bad = offer("bad", rate="50.00", **{k: v for k, v in bad.items() if k != "rate"}, contract=True)
    if "rate" in bad:
        cheap_but_bad = replace(cheap_but_bad, nightly_rate=Decimal(bad["rate"]))
    plan = run([group("G1", pax("a"))], [cheap_but_bad, offer("good", rate="119.00")])
    assert only(plan, "G1").offer.offer_id == "stayhub~good", why
    assert not complies(cheap_but_bad, RULES)


def test_the_limits_themselves_are_compliant():
    edge = offer("edge", rate="120.00", km=20.0, stars=3)
    assert complies(edge, RULES)
    assert only(run([group("G1", pax("a"))], [edge]), "G1").offer == edge


def test_absent_rules_constrain_nothing():
    anything = offer("far", rate="999.00", km=300, stars=1)
    plan = run([group("G1", pax("a"))], [anything], {"ECONOMY": Rules(policy_urn="urn:nexa:policy:any")})
    assert only(plan, "G1").offer == anything


def test_an_absent_per_room_rule_means_two_per_room_not_unlimited():
    family = group("G1", *(pax(str(n), "FAM") for n in range(3)))
    plan = run([family], [offer("h")], {"ECONOMY": Rules(policy_urn="urn:nexa:policy:any", max_occupancy=None)})
    assert [len(room.occupants) for room in only(plan, "G1").rooms] == [2, 1]


def test_contract_rooms_before_vendor_rooms_even_when_the_vendor_is_cheaper():
    plan = run([group("G1", pax("a"))], [offer("vendor", rate="60.00"), offer("c1", rate="100.00", contract=True)])
    assignment = only(plan, "G1")
    assert assignment.offer.source == SOURCE_CONTRACT
    assert assignment.reason == "contract rate 100.00 EUR, 5.0 km, 4★"
    assert assignment.policy_urn == "urn:nexa:policy:eco"


def test_then_the_lowest_rate_then_the_nearest_then_the_offer_id():
    inventory = [offer("near-dear", rate="95.00", km=1), offer("far-cheap", rate="80.00", km=15)]
    assert only(run([group("G1", pax("a"))], inventory), "G1").offer.offer_id == "stayhub~far-cheap"
    inventory = [offer("far", rate="80.00", km=15), offer("near", rate="80.00", km=2)]
    assert only(run([group("G1", pax("a"))], inventory), "G1").offer.offer_id == "stayhub~near"
    inventory = [offer("b", rate="80.00", km=2), offer("a", rate="80.00", km=2)]
    assert only(run([group("G1", pax("a"))], inventory), "G1").offer.offer_id == "stayhub~a"


def test_a_room_never_holds_more_than_max_occupancy():
    party = [pax(str(n), "FAM") for n in range(5)]
    plan = run([group("G1", *party)], [offer("h", rooms=10)])
    assignment = only(plan, "G1")
    assert [len(room.occupants) for room in assignment.rooms] == [2, 2, 1]
    singles = Rules(policy_urn="urn:nexa:policy:biz", max_occupancy=1)
    plan = run([group("G1", pax("a", "P"), pax("b", "P"))], [offer("h")], {"ECONOMY": singles})
    assert occupants(only(plan, "G1")) == [{"a"}, {"b"}]


# --- PRM, families, minors ---------------------------------------------------------------------------------


def test_a_reduced_mobility_passenger_gets_an_accessible_room_from_the_accessible_stock():
    inventory = [offer("no-access", rate="70.00", rooms=10, contract=True), offer("access", accessible=1)]
    plan = run(
        [group("G1", pax("w", "P1", "ECONOMY", "WHEELCHAIR")), group("G2", pax("m", "P2", "ECONOMY", "MEDICAL"))],
        inventory,
    )
    first = only(plan, "G1")
    assert first.offer.offer_id == "stayhub~access"
    assert first.rooms[0].accessible is True
    # the one accessible room is gone: the second PRM group finds none
    (failed,) = plan.unallocated
    assert failed.group_urn == "urn:nexa:group:G2"
    assert failed.category == ALLOCATION_FAILED
    assert failed.reason == "no accessible room within 20 km of ≥ 3★ at ≤ 120.00 EUR (the group needs 1)"
    assert failed.passenger_keys == ("urn:nexa:subcase:m",)


def test_prm_and_companion_share_one_accessible_room_and_the_rule_can_be_off():
    family = group("G1", pax("w", "P1", "ECONOMY", "WHEELCHAIR"), pax("c", "P1"), pax("d", "P1"))
    assignment = only(run([family], [offer("h", accessible=1)]), "G1")
    rooms = zip(occupants(assignment), assignment.rooms, strict=True)
    assert [(occupants_, room.accessible) for occupants_, room in rooms] == [
        ({"c", "w"}, True),
        ({"d"}, False),
    ]
    no_rule = {"ECONOMY": replace(RULES, accessible_room_for_prm=False)}
    assignment = only(run([group("G1", pax("w", "P1", "ECONOMY", "WHEELCHAIR"))], [offer("h")], no_rule), "G1")
    assert assignment.rooms[0].accessible is False


def test_standard_rooms_use_accessible_stock_only_when_standard_stock_is_gone():
    # 2 rooms of which 1 accessible: a standard room for G1 leaves the accessible one for the PRM group
    inventory = [offer("h", rooms=2, accessible=1)]
    plan = run([group("G1", pax("a", "P1")), group("G2", pax("w", "P2", "ECONOMY", "WHEELCHAIR"))], inventory)
    assert {a.group_urn for a in plan.assignments} == {"urn:nexa:group:G1", "urn:nexa:group:G2"}
    # 1 room, accessible: once a standard group takes it, nothing is left
    plan = run([group("G1", pax("a", "P1")), group("G2", pax("b", "P2"))], [offer("h", rooms=1, accessible=1)])
    assert len(plan.assignments) == 1 and plan.unallocated[0].reason.startswith("no room within 20 km")


def test_a_family_larger_than_a_room_gets_adjoining_rooms_at_one_hotel():
    family = group("G1", *(pax(str(n), "FAM") for n in range(4)))
    inventory = [offer("small", rate="60.00", rooms=1), offer("big", rate="90.00", rooms=5)]
    assignment = only(run([family], inventory), "G1")
    assert assignment.offer.offer_id == "stayhub~big"
    assert len(assignment.rooms) == 2


def test_when_no_single_offer_fits_a_family_it_stays_at_one_hotel_over_that_hotels_offers():
    # two PNRs in one group; no offer has 2 rooms, but hotel H has one contract and one vendor room
    grp = group("G1", pax("a", "P1"), pax("b", "P1"), pax("c", "P2"))
    inventory = [
        offer("other", rate="50.00", rooms=1, hotel="X"),
        offer("h-contract", rooms=1, contract=True, hotel="H"),
        offer("h-vendor", rate="100.00", rooms=1, hotel="H"),
    ]
    plan = run([grp], inventory)
    assert {a.offer.hotel_urn for a in plan.assignments} == {"urn:nexa:hotel:H"}
    assert len(plan.assignments) == 2
    assert all("over 2 offers at this hotel" in a.reason for a in plan.assignments)


def test_a_minor_always_sleeps_with_an_adult_of_their_pnr():
    family = group(
        "G1",
        pax("mum", "FAM"),
        pax("dad", "FAM"),
        pax("kid1", "FAM", minor=True),
        pax("kid2", "FAM", minor=True),
        pax("baby", "FAM", "ECONOMY", "INFANT"),
    )
    family_rooms = {"ECONOMY": replace(RULES, family_exception=True, family_room_max=3)}
    assignment = only(run([family], [offer("h")], family_rooms), "G1")
    assert occupants(assignment) == [{"dad", "baby", "kid1"}, {"mum", "kid2"}]
    for room in occupants(assignment):
        if room & {"kid1", "kid2", "baby"}:
            assert room & {"mum", "dad"}, room


def test_a_minor_without_an_adult_of_their_pnr_or_with_too_few_adults_is_not_placed():
    alone = group("G1", pax("kid", "P1", minor=True), pax("adult", "P2"))
    (failed,) = run([alone], [offer("h")]).unallocated
    assert failed.category == ALLOCATION_FAILED
    assert "PNR P1: minor(s) urn:nexa:subcase:kid without an adult of their PNR" in failed.reason
    crowded = group("G1", pax("mum", "P1"), pax("k1", "P1", minor=True), pax("k2", "P1", minor=True))
    (failed,) = run([crowded], [offer("h")]).unallocated
    assert failed.reason == "PNR P1: 1 adult(s) cannot stay with 2 minor(s) at 2 per room"


def test_single_rooms_keep_a_child_with_a_parent_only_under_the_family_exception():
    family = group("G1", pax("mum", "P1"), pax("kid", "P1", minor=True))
    singles = Rules(policy_urn="urn:nexa:policy:biz", max_occupancy=1)
    (failed,) = run([family], [offer("h")], {"ECONOMY": singles}).unallocated
    assert "allows 1 person per room without a family exception" in failed.reason
    exception = replace(singles, family_exception=True, family_room_max=4)
    assert occupants(only(run([family], [offer("h")], {"ECONOMY": exception}), "G1")) == [{"kid", "mum"}]
    assert room_capacity(exception, family=True) == 4 and room_capacity(exception, family=False) == 1


def test_an_unaccompanied_minor_sleeps_alone_escorted_never_with_another():
    grp = group(
        "G1",
        pax("u1", "P1", "ECONOMY", "UNACCOMPANIED_MINOR"),
        pax("u2", "P1", "ECONOMY", "UNACCOMPANIED_MINOR", "WHEELCHAIR"),
    )
    assignment = only(run([grp], [offer("h", accessible=1)]), "G1")
    rooms = zip(occupants(assignment), assignment.rooms, strict=True)
    assert [(occ, room.escort, room.accessible) for occ, room in rooms] == [
        ({"u1"}, True, False),
        ({"u2"}, True, True),
    ]
    assert is_minor(pax("u", "P", "ECONOMY", "UNACCOMPANIED_MINOR"))


# --- unrelated passengers, groups, inventory ---------------------------------------------------------------


def test_passengers_of_different_pnrs_never_share_even_when_grouped_together():
    grp = group("G1", pax("a", "P1"), pax("b", "P2"), pax("c", "P3"))
    assignment = only(run([grp], [offer("h")]), "G1")
    assert occupants(assignment) == [{"a"}, {"b"}, {"c"}]


def test_a_group_no_hotel_can_take_whole_is_placed_across_hotels_by_pnr_party_and_says_so():
    grp = group("G1", pax("a", "P1"), pax("b", "P1"), pax("c", "P1"), pax("d", "P2"))
    inventory = [offer("x", rooms=2, hotel="X"), offer("y", rate="95.00", rooms=1, hotel="Y")]
    plan = run([grp], inventory)
    by_hotel = {a.offer.hotel_urn: occupants(a) for a in plan.assignments}
    assert by_hotel == {"urn:nexa:hotel:X": [{"a", "b"}, {"c"}], "urn:nexa:hotel:Y": [{"d"}]}
    assert all("no single hotel could take the whole group (3 rooms" in a.reason for a in plan.assignments)
    assert "placed across 2 hotels by PNR party" in plan.assignments[0].reason


def test_a_party_that_fits_no_single_hotel_fails_the_whole_group_which_consumes_nothing():
    grp = group("G1", pax("a", "P1"), pax("b", "P1"), pax("c", "P1"), pax("d", "P2"))
    inventory = [offer("x", rooms=1, hotel="X"), offer("y", rooms=1, hotel="Y"), offer("z", rooms=1, hotel="Z")]
    plan = run([grp, group("G2", pax("e", "P9"))], inventory)
    (failed,) = plan.unallocated
    assert failed.group_urn == "urn:nexa:group:G1"
    assert "no single hotel within 20 km of ≥ 3★ at ≤ 120.00 EUR has 2 room(s)" in failed.reason
    assert "PNR P1's party" in failed.reason
    assert only(plan, "G2").offer.offer_id == "stayhub~x"  # G1 took nothing


def test_inventory_is_consumed_so_two_groups_never_get_the_same_room():
    inventory = [offer("one", rooms=1, contract=True), offer("two", rate="100.00", rooms=1)]
    plan = run([group("G1", pax("a", "P1")), group("G2", pax("b", "P2")), group("G3", pax("c", "P3"))], inventory)
    assert [a.offer.offer_id for a in plan.assignments] == ["contract~urn:nexa:contract:one", "stayhub~two"]
    (failed,) = plan.unallocated
    assert failed.group_urn == "urn:nexa:group:G3"
    assert failed.reason == "no room within 20 km of ≥ 3★ at ≤ 120.00 EUR left (the group needs 1)"


def test_hardest_groups_first_prm_then_unaccompanied_minors_then_larger_then_label():
    inventory = [offer("contract", rooms=1, accessible=1, contract=True), offer("vendor", rate="100.00", rooms=9)]
    plain = group("A", pax("a", "P1"))
    prm = group("Z", pax("w", "P2", "ECONOMY", "WHEELCHAIR"))
    plan = run([plain, prm], inventory)
    assert only(plan, "Z").offer.source == SOURCE_CONTRACT  # the later label still goes first
    big = group("Y", pax("b", "P3"), pax("c", "P4"))
    umnr = group("X", pax("u", "P5", "ECONOMY", "UNACCOMPANIED_MINOR"))
    plan = run([plain, big], [offer("contract", rooms=2, contract=True), offer("vendor", rate="100.00")])
    assert only(plan, "Y").offer.source == SOURCE_CONTRACT
    plan = run([big, umnr], [offer("contract", rooms=1, contract=True), offer("vendor", rate="100.00")])
    assert only(plan, "X").offer.source == SOURCE_CONTRACT


# --- refusals -----------------------------------------------------------------------------------------------


def test_refused_groups_carry_their_category_and_reason_and_the_rest_is_still_placed():
    groups = [
        group("INCOMPLETE", pax("a", "P1", missing=("lastName", "phone"))),
        group("MIXED", pax("b", "P2", "ECONOMY"), pax("c", "P2", "BUSINESS")),
        group("NOPOLICY", pax("d", "P3", "FIRST")),
        group("NULLPOLICY", pax("e", "P4", "PREMIUM_ECONOMY")),
        group("OK", pax("f", "P5")),
    ]
    rules = {"ECONOMY": RULES, "BUSINESS": RULES, "PREMIUM_ECONOMY": None}
    plan = run(groups, [offer("h")], rules)
    assert only(plan, "OK").offer.offer_id == "stayhub~h"
    refused = {u.group_urn.rsplit(":", 1)[1]: (u.category, u.reason) for u in plan.unallocated}
    assert refused == {
        "INCOMPLETE": (
            DATA_INCOMPLETE,
            "manifest fields missing for 1 passenger(s): urn:nexa:subcase:a: lastName, phone",
        ),
        "MIXED": (
            MIXED_TIER_GROUP,
            "the group mixes tiers BUSINESS, ECONOMY: the engine does not choose whose policy applies; "
            "split the group by tier or place it by hand",
        ),
        "NOPOLICY": (POLICY_VIOLATION, "no policy resolves for tier FIRST"),
        "NULLPOLICY": (POLICY_VIOLATION, "no policy resolves for tier PREMIUM_ECONOMY"),
    }


def test_no_compliant_hotel_at_all_says_what_the_policy_asked_for():
    (failed,) = run([group("G1", pax("a"))], [offer("far", km=40)]).unallocated
    assert failed.reason == "no hotel within 20 km of ≥ 3★ at ≤ 120.00 EUR in the inventory"


# --- alternatives -------------------------------------------------------------------------------------------


def test_alternatives_are_the_other_compliant_offers_with_room_for_the_group_best_first_at_most_five():
    inventory = [
        offer("best", rooms=2, contract=True),
        offer("full", rate="70.00", rooms=1),
        offer("bad", rate="200.00"),
        *(offer(f"alt{n}", rate=f"{80 + n}.00") for n in range(7)),
    ]
    grp = group("G1", pax("a", "P1"), pax("b", "P2"))
    assignment = only(run([grp], inventory), "G1")
    assert assignment.offer.offer_id == "contract~urn:nexa:contract:best"
    assert [o.offer_id for o in assignment.alternatives] == [f"stayhub~alt{n}" for n in range(5)]


def test_alternatives_reflect_the_stock_left_when_the_group_was_placed():
    inventory = [offer("a", rooms=1, contract=True), offer("b", rate="100.00", rooms=1)]
    plan = run([group("G1", pax("x", "P1")), group("G2", pax("y", "P2"))], inventory)
    assert [o.offer_id for o in only(plan, "G1").alternatives] == ["stayhub~b"]
    assert only(plan, "G2").alternatives == ()


# --- determinism --------------------------------------------------------------------------------------------


def test_the_same_input_in_any_order_gives_the_same_plan():
    groups = [
        group("G1", pax("a", "P1"), pax("b", "P1", minor=True)),
        group("G2", pax("c", "P2", "ECONOMY", "WHEELCHAIR")),
        group("G3", pax("d", "P3"), pax("e", "P4")),
    ]
    inventory = [offer("x", rooms=2, accessible=1), offer("y", rooms=3, contract=True), offer("z", rate="80.00")]
    first = run(groups, inventory)
    shuffled = [Group(g.urn, g.label, tuple(reversed(g.passengers))) for g in reversed(groups)]
    assert run(shuffled, list(reversed(inventory))) == first == run(groups, inventory)


# --- the generated manifest ---------------------------------------------------------------------------------

TIERS = ("ECONOMY", "PREMIUM_ECONOMY", "BUSINESS", "FIRST")


def generated(seed: int, passengers: int = 300, offers: int = 60) -> AllocationInput:
    """A seeded manifest: families with children and infants, PRM passengers, unaccompanied minors,
    couples and solo travellers over four tiers; operator groups of one PNR, sometimes two; inventory
    from contracts and vendors of varied stars, distance, rates and accessible rooms."""
    rng = random.Random(seed)
    groups = []
    count = 0
    while count < passengers:
        tier = rng.choice(TIERS)
        parties = []
        for _ in range(2 if rng.random() < 0.15 else 1):
            pnr = f"PNR{len(groups):03d}{len(parties)}"
            kind = rng.random()
            if kind < 0.08:
                members = [pax(f"{pnr}-u", pnr, tier, "UNACCOMPANIED_MINOR")]
            elif kind < 0.40:
                adults = rng.choice((1, 2, 2, 3))
                children = rng.choice((1, 2, 3))
                members = [pax(f"{pnr}-a{n}", pnr, tier) for n in range(adults)]
                members += [pax(f"{pnr}-c{n}", pnr, tier, minor=True) for n in range(children)]
                if rng.random() < 0.3:
                    members.append(pax(f"{pnr}-i", pnr, tier, "INFANT"))
            else:
                members = [pax(f"{pnr}-a{n}", pnr, tier) for n in range(rng.choice((1, 1, 2, 3)))]
            if rng.random() < 0.12:
                members[0] = replace(members[0], needs=members[0].needs | {rng.choice(("WHEELCHAIR", "MEDICAL"))})
            parties.extend(members)
        if rng.random() < 0.03:
            parties[0] = replace(parties[0], missing=("email",))
        if rng.random() < 0.03:
            parties.append(pax(f"x{len(groups)}", parties[0].pnr, rng.choice(TIERS)))
        groups.append(group(f"GRP-{len(groups)}", *parties))
        count += len(parties)
    rules = {
        "ECONOMY": Rules("urn:nexa:policy:eco", 25, 3, Decimal("110.00"), 2, True, True, 4),
        "PREMIUM_ECONOMY": Rules("urn:nexa:policy:pey", 20, 3, Decimal("130.00"), 2, True, True, 4),
        "BUSINESS": Rules("urn:nexa:policy:biz", 15, 4, Decimal("180.00"), 1, True, True, 3),
        "FIRST": rng.choice((None, Rules("urn:nexa:policy:first", 10, 5, Decimal("300.00"), 1))),
    }
    inventory = []
    for n in range(offers):
        rooms = rng.randint(0, 12)
        inventory.append(
            replace(
                offer(
                    f"o{n}",
                    rate=f"{rng.randint(50, 320)}.{rng.randint(0, 99):02d}",
                    km=round(rng.uniform(0.5, 35), 1),
                    stars=rng.randint(2, 5),
                    rooms=rooms,
                    accessible=rng.randint(0, min(rooms, 3)),
                    contract=rng.random() < 0.3,
                    hotel=f"H{rng.randint(0, offers // 2)}",
                ),
            )
        )
    return AllocationInput(groups=tuple(groups), rules_by_tier=rules, inventory=tuple(inventory))


def check_invariants(request: AllocationInput, plan: Plan) -> None:
    passengers = {p.key: p for g in request.groups for p in g.passengers}
    placed = Counter()
    used = Counter()
    used_accessible = Counter()
    offers = {o.offer_id: o for o in request.inventory}
    groups = {g.urn: g for g in request.groups}
    for assignment in plan.assignments:
        tier = {passengers[key].tier for room in assignment.rooms for key in room.occupants}
        assert len(tier) == 1
        rules = request.rules_by_tier[tier.pop()]
        assert rules is not None and complies(assignment.offer, rules)
        assert assignment.policy_urn == rules.policy_urn
        assert {key for room in assignment.rooms for key in room.occupants} <= {
            p.key for p in groups[assignment.group_urn].passengers
        }
        for room in assignment.rooms:
            members = [passengers[key] for key in room.occupants]
            assert len({p.pnr for p in members}) == 1, "two PNRs share a room"
            family = any(is_minor(p) and not p.unaccompanied_minor for p in groups_party(groups, assignment, members))
            assert len(members) <= room_capacity(rules, family=family)
            if any(is_minor(p) and not p.unaccompanied_minor for p in members):
                assert any(not is_minor(p) for p in members), "a minor without an adult"
            if any(p.unaccompanied_minor for p in members):
                assert len(members) == 1 and room.escort
            if rules.accessible_room_for_prm and any(p.reduced_mobility for p in members):
                assert room.accessible
            placed.update(room.occupants)
        used[assignment.offer.offer_id] += len(assignment.rooms)
        used_accessible[assignment.offer.offer_id] += sum(room.accessible for room in assignment.rooms)
        for alternative in assignment.alternatives:
            assert complies(alternative, rules) and alternative.offer_id != assignment.offer.offer_id
        assert len(assignment.alternatives) <= 5
    for offer_id, rooms in used.items():
        assert rooms <= offers[offer_id].rooms_available, "overbooked offer"
        assert used_accessible[offer_id] <= offers[offer_id].accessible_rooms, "accessible rooms overbooked"
    for unallocated in plan.unallocated:
        assert unallocated.passenger_keys == tuple(sorted(p.key for p in groups[unallocated.group_urn].passengers))
        placed.update(unallocated.passenger_keys)
        assert unallocated.reason
    assert placed == Counter(passengers.keys()), "every passenger exactly once"
    # a PNR party of a placed group stays at one hotel
    hotels_by_pnr = defaultdict(set)
    for assignment in plan.assignments:
        for room in assignment.rooms:
            hotels_by_pnr[passengers[room.occupants[0]].pnr].add(assignment.offer.hotel_urn)
    assert all(len(hotels) == 1 for hotels in hotels_by_pnr.values())


def groups_party(groups, assignment, members):
    pnr = members[0].pnr
    return [p for p in groups[assignment.group_urn].passengers if p.pnr == pnr]


def shuffled(request: AllocationInput, seed: int) -> AllocationInput:
    rng = random.Random(seed)
    groups = [Group(g.urn, g.label, tuple(rng.sample(g.passengers, len(g.passengers)))) for g in request.groups]
    rng.shuffle(groups)
    inventory = list(request.inventory)
    rng.shuffle(inventory)
    return AllocationInput(tuple(groups), dict(reversed(request.rules_by_tier.items())), tuple(inventory))


@pytest.mark.parametrize("seed", range(8))
def test_generated_300_passenger_manifest_keeps_every_invariant_and_is_deterministic(seed):
    request = generated(seed)
    assert sum(len(g.passengers) for g in request.groups) >= 300
    plan = allocate(request)
    check_invariants(request, plan)
    categories = Counter(u.category for u in plan.unallocated)
    assert plan.assignments, "something was placed"
    assert allocate(request) == plan
    assert allocate(shuffled(request, seed + 100)) == plan
    assert set(categories) <= {ALLOCATION_FAILED, DATA_INCOMPLETE, MIXED_TIER_GROUP, POLICY_VIOLATION}


def test_the_generated_manifest_exercises_every_rule():
    """The generator is worth its salt: across the seeds, every kind of room and refusal occurs."""
    seen = Counter()
    for seed in range(8):
        plan = allocate(generated(seed))
        seen.update(u.category for u in plan.unallocated)
        for assignment in plan.assignments:
            seen["escort"] += sum(room.escort for room in assignment.rooms)
            seen["accessible"] += sum(room.accessible for room in assignment.rooms)
            seen["contract"] += assignment.offer.source == SOURCE_CONTRACT
            seen["vendor"] += assignment.offer.source == SOURCE_VENDOR
            seen["split"] += "placed across" in assignment.reason
    for what in ("escort", "accessible", "contract", "vendor", DATA_INCOMPLETE, MIXED_TIER_GROUP, ALLOCATION_FAILED):
        assert seen[what], what


def test_it_handles_300_passengers_and_200_offers():
    request = generated(42, passengers=300, offers=200)
    plan = allocate(request)
    check_invariants(request, plan)
    assert len(plan.assignments) > 50
