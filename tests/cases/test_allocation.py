"""Allocation of an approved demand wave: POST /v1/allocation/allocate and POST /v1/cases/{case_urn}/allocate
(cases/services/allocation.py, docs/booking.md § Allocation (routes)).

The engine (``booking.allocation.allocate``) is built in parallel. Until it lands, the ``engine`` fixture
swaps in :func:`fake_allocate_until_the_engine_lands` — in tests only — and every assertion here is one a
correct engine must also satisfy (statuses, invariants, categories that the input forces), so the same tests
run unchanged against the real engine once it is merged.

The searches and the policy resolution run on their own connections (compose worker threads), so every
test commits its data (``transaction=True``).
"""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from booking.allocation import (
    DATA_INCOMPLETE,
    POLICY_VIOLATION,
)
from booking.hotels import hotels_seed_demo
from booking.models import Hotel, HotelSearch, Reservation, ReservationSource, ReservationStatus
from cases.models import (
    Allocation,
    DemandKind,
    DemandStatus,
    DemandWave,
    DemandWaveMember,
    SubCase,
    SubCaseStatus,
    Tier,
)
from nexa.platform.models import OutboxEvent
from nexa.platform.roles import Role
from tests.api_base import assert_problem
from tests.booking.test_contracts_api import make_contract
from tests.cases.factories import CaseFactory, PassengerGroupFactory, SubCaseFactory
from tests.policies.factories import active_policy

pytestmark = pytest.mark.django_db(transaction=True)

VENDORS = ("stayhub", "globerooms", "nightbed")
ALLOCATE = "/v1/allocation/allocate"
GENEROUS_RULES = {
    "maxDistanceKm": 60,
    "minStars": 1,
    "maxNightlyRate": {"amount": "1000.00", "currency": "EUR"},
    "maxOccupancy": {"perRoom": 2, "familyException": True},
    "accessibleRoomForPrm": True,
}

OFFER_KEYS = {"offerId", "hotelUrn", "hotelName", "source", "vendor", "contractUrn", "nightlyRate"}
ASSIGNMENT_KEYS = OFFER_KEYS | {
    "groupUrn",
    "groupLabel",
    "rooms",
    "policyUrn",
    "reason",
    "checkIn",
    "nights",
    "alternatives",
}


@pytest.fixture
def engine():
    """The real allocation engine (booking.allocation.allocate): these tests run the whole use case."""
    return "real"


@pytest.fixture
def vendors(simulator_control, settings):
    settings.NEXA_HOTEL_VENDORS = list(VENDORS)
    return simulator_control


# --- fixtures: a case, its groups and an approved wave -----------------------------------------------------


def make_wave(case, sub_cases, *, status=DemandStatus.APPROVED, expires_in=dt.timedelta(minutes=30), kind=None):
    check_in = timezone.now().date() + dt.timedelta(days=1)
    wave = DemandWave.objects.create(
        airline=case.airline,
        case=case,
        kind=kind or DemandKind.INITIAL,
        status=status,
        check_in=check_in,
        nights=1,
        rooms=len(sub_cases),
        people=len(sub_cases),
        requested_by=f"urn:nexa:user:{case.airline.lower()}-airport_operator",
        expires_at=timezone.now() + expires_in,
    )
    DemandWaveMember.objects.bulk_create(
        DemandWaveMember(airline=case.airline, wave=wave, sub_case=s, group_id=s.group_id) for s in sub_cases
    )
    return wave


def grouped(case, *parties, tier=Tier.ECONOMY):
    """One group per party; a party is a list of special-needs lists (one per passenger), same PNR."""
    sub_cases = []
    for index, party in enumerate(parties):
        group = PassengerGroupFactory(case=case, airline=case.airline)
        pnr = f"Q{index:05d}"
        for needs in party:
            sub_case = SubCaseFactory(
                case=case, airline=case.airline, group=group, pnr=pnr, tier=tier,
                special_needs=list(needs), status=SubCaseStatus.GROUPED,
            )  # fmt: skip
            sub_cases.append(sub_case)
    return sub_cases


def contract_hotel(airline="IB", *, accessible_rooms=3, stars=4) -> Hotel:
    return Hotel.objects.create(
        airline=airline, airport="MAD", name=f"Contract hotel {airline}", lat=40.47, lng=-3.57,
        distance_km=2.5, stars=stars, accessible_rooms=accessible_rooms,
    )  # fmt: skip


@pytest.fixture
def world(vendors, engine):
    """IB's catalog and a permissive default policy."""
    hotels_seed_demo(airline="IB")
    active_policy(airline="IB", rules=dict(GENEROUS_RULES))
    return engine


def allocate(client_for, wave, *, role=Role.OPS_SUPERVISOR, airline="IB", **headers):
    return client_for(airline, role).post(ALLOCATE, {"demandUrn": wave.urn}, format="json", **headers)


def statuses(sub_cases) -> dict[str, str]:
    return dict(SubCase.objects.filter(pk__in=[s.pk for s in sub_cases]).values_list("pk", "status"))


def assert_rooms_sound(plan, sub_cases):
    """What any correct plan satisfies: each passenger in one room at most; only one PNR per room."""
    pnr_of = {s.urn: s.pnr for s in sub_cases}
    seen: list[str] = []
    for assignment in plan["assignments"]:
        for room in assignment["rooms"]:
            seen += room["occupants"]
            assert len({pnr_of[o] for o in room["occupants"]}) == 1, room  # no unrelated passengers together
    assert len(seen) == len(set(seen))
    unallocated = [urn for entry in plan["unallocated"] for urn in entry["subCaseUrns"]]
    assert set(seen).isdisjoint(unallocated)
    assert set(seen) | set(unallocated) == set(pnr_of)


# --- the happy path ----------------------------------------------------------------------------------------


def test_an_approved_wave_is_allocated_contract_first(world, client_for):
    case = CaseFactory(airline="IB", airport="MAD")
    sub_cases = grouped(case, [[], []], [["WHEELCHAIR"]], [[]])
    hotel = contract_hotel()
    contract = make_contract(hotelUrn=hotel.urn, allotment=10)
    wave = make_wave(case, sub_cases)

    response = allocate(client_for, wave)

    assert response.status_code == 201, response.content
    plan = response.json()
    allocation = Allocation.objects.get()
    assert plan == allocation.plan
    assert (plan["allocationUrn"], plan["demandUrn"], plan["caseUrn"]) == (allocation.urn, wave.urn, case.urn)
    assert plan["unallocated"] == [] and plan["partialFailures"] == []
    assert_rooms_sound(plan, sub_cases)
    assert len(plan["assignments"]) == 3
    for assignment in plan["assignments"]:  # contract allotment before any vendor inventory
        assert set(assignment) == ASSIGNMENT_KEYS  # the shape book-rooms reads
        assert all(set(alternative) == OFFER_KEYS for alternative in assignment["alternatives"])
        assert assignment["source"] == "CONTRACT"
        assert assignment["offerId"] == f"contract~{contract.urn}"
        assert (assignment["contractUrn"], assignment["hotelUrn"]) == (contract.urn, hotel.urn)
        assert assignment["vendor"] == ""
        assert assignment["nightlyRate"] == {"amount": "89.50", "currency": "EUR"}
        assert assignment["checkIn"] == wave.check_in.isoformat() and assignment["nights"] == 1
        assert assignment["policyUrn"].startswith("urn:nexa:policy:") and assignment["reason"]
    family = next(a for a in plan["assignments"] if a["groupUrn"] == sub_cases[0].group.urn)
    assert family["groupLabel"] == sub_cases[0].group.label
    assert [sorted(r["occupants"]) for r in family["rooms"]] == [sorted([sub_cases[0].urn, sub_cases[1].urn])]
    prm = next(a for a in plan["assignments"] if a["groupUrn"] == sub_cases[2].group.urn)
    assert prm["rooms"] == [{"occupants": [sub_cases[2].urn], "accessible": True, "escort": False}]

    assert set(statuses(sub_cases).values()) == {SubCaseStatus.ALLOCATED}
    wave.refresh_from_db()
    assert (wave.status, wave.version) == (DemandStatus.ALLOCATED, 2)
    changed = OutboxEvent.objects.filter(event="subcase:state-changed")
    assert sorted(e.payload["subCaseUrn"] for e in changed) == sorted(s.urn for s in sub_cases)
    assert {e.payload["status"] for e in changed} == {"ALLOCATED"}
    assert OutboxEvent.objects.filter(event="case:updated", payload__caseUrn=case.urn).exists()
    assert not OutboxEvent.objects.filter(event="allocation:failed").exists()
    # one search per distinct need: standard rooms, and accessible ones for the PRM passenger
    assert sorted(s.request["accessible"] for s in HotelSearch.objects.filter(case_urn=case.urn)) == [False, True]


def test_the_composition_route_answers_the_same_plan(world, client_for):
    case = CaseFactory(airline="IB", airport="MAD")
    sub_cases = grouped(case, [[]])
    wave = make_wave(case, sub_cases)
    client = client_for("IB", Role.ADMIN)
    response = client.post(f"/v1/cases/{case.urn}/allocate", {"demandUrn": wave.urn}, format="json")
    assert response.status_code == 201, response.content
    assert response.json() == Allocation.objects.get(demand=wave).plan
    assert statuses(sub_cases) == {sub_cases[0].pk: SubCaseStatus.ALLOCATED}


def test_reserved_contract_rooms_are_not_offered_again(world, client_for):
    """Active reservations called off a contract leave fewer rooms of its allotment for the stay."""
    case = CaseFactory(airline="IB", airport="MAD")
    sub_cases = grouped(case, [[]], [[]])
    wave = make_wave(case, sub_cases)
    hotel = contract_hotel()
    contract = make_contract(hotelUrn=hotel.urn, allotment=2)
    Reservation.objects.create(
        airline="IB", case=case, hotel=hotel, hotel_name=hotel.name, source=ReservationSource.CONTRACT,
        contract_id=contract.pk, check_in=wave.check_in, nights=1, rooms=[{"occupants": [], "accessible": False}],
        status=ReservationStatus.CONFIRMED, created_by="urn:nexa:user:ib-ops_supervisor",
    )  # fmt: skip
    plan = allocate(client_for, wave).json()
    contract_groups = [a for a in plan["assignments"] if a["source"] == "CONTRACT"]
    assert len(contract_groups) == 1  # one room left of two; the other group goes to a vendor
    assert [a["source"] for a in plan["assignments"]].count("VENDOR") == 1
    assert_rooms_sound(plan, sub_cases)


# --- unplaced groups ---------------------------------------------------------------------------------------


def test_a_group_without_a_policy_goes_to_review_with_its_category(vendors, engine, client_for):
    hotels_seed_demo(airline="IB")
    active_policy(airline="IB", scope_tier=Tier.ECONOMY, rules=dict(GENEROUS_RULES))  # no policy for BUSINESS
    case = CaseFactory(airline="IB", airport="MAD")
    economy = grouped(case, [[]])
    business = grouped(case, [[], []], tier=Tier.BUSINESS)
    wave = make_wave(case, economy + business)

    plan = allocate(client_for, wave).json()

    group = business[0].group
    assert plan["unallocated"] == [
        {
            "groupUrn": group.urn,
            "groupLabel": group.label,
            "subCaseUrns": [business[0].urn, business[1].urn],
            "category": POLICY_VIOLATION,
            "reason": plan["unallocated"][0]["reason"],
        }
    ]
    assert plan["unallocated"][0]["reason"]
    assert [a["groupUrn"] for a in plan["assignments"]] == [economy[0].group.urn]
    assert statuses(economy + business) == {
        economy[0].pk: SubCaseStatus.ALLOCATED,
        business[0].pk: SubCaseStatus.MANUAL_REVIEW,
        business[1].pk: SubCaseStatus.MANUAL_REVIEW,
    }
    (failed,) = OutboxEvent.objects.filter(event="allocation:failed")
    assert failed.payload == {
        "caseUrn": case.urn,
        "demandUrn": wave.urn,
        "allocationUrn": plan["allocationUrn"],
        "groupUrn": group.urn,
        "subCaseUrns": [business[0].urn, business[1].urn],
        "category": POLICY_VIOLATION,
        "reason": plan["unallocated"][0]["reason"],
    }
    assert failed.rooms == [f"case:{case.urn}"]


def test_incomplete_manifest_data_is_data_incomplete(world, client_for):
    case = CaseFactory(airline="IB", airport="MAD")
    sub_cases = grouped(case, [[]], [[]])
    SubCase.objects.filter(pk=sub_cases[1].pk).update(first_name="")
    wave = make_wave(case, sub_cases)
    plan = allocate(client_for, wave).json()
    assert [(u["groupUrn"], u["category"]) for u in plan["unallocated"]] == [(sub_cases[1].group.urn, DATA_INCOMPLETE)]
    assert statuses(sub_cases)[sub_cases[1].pk] == SubCaseStatus.MANUAL_REVIEW


# --- refusals ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "expires_in", "named"),
    [
        (DemandStatus.PENDING_APPROVAL, dt.timedelta(minutes=30), "PENDING_APPROVAL"),
        (DemandStatus.PENDING_APPROVAL, -dt.timedelta(minutes=1), "EXPIRED"),  # lazy expiry
        (DemandStatus.REJECTED, dt.timedelta(minutes=30), "REJECTED"),
        (DemandStatus.EXPIRED, dt.timedelta(minutes=30), "EXPIRED"),
    ],
)
def test_a_demand_that_is_not_approved_is_409_naming_its_status(engine, client_for, status, expires_in, named):
    case = CaseFactory(airline="IB", airport="MAD")
    sub_cases = grouped(case, [[]])
    wave = make_wave(case, sub_cases, status=status, expires_in=expires_in)
    body = assert_problem(allocate(client_for, wave), 409, "demand-not-approved")
    assert body["demandStatus"] == named and named in body["detail"]
    assert not Allocation.objects.exists() and not HotelSearch.objects.exists()
    assert statuses(sub_cases) == {sub_cases[0].pk: SubCaseStatus.GROUPED}


def test_allocating_twice_is_409_allocated(world, client_for):
    case = CaseFactory(airline="IB", airport="MAD")
    wave = make_wave(case, grouped(case, [[]]))
    assert allocate(client_for, wave).status_code == 201
    body = assert_problem(allocate(client_for, wave), 409, "demand-not-approved")
    assert body["demandStatus"] == "ALLOCATED"
    assert Allocation.objects.count() == 1


def test_two_concurrent_allocations_of_one_wave_one_wins(world, client_for):
    case = CaseFactory(airline="IB", airport="MAD")
    sub_cases = grouped(case, [[]], [[]])
    wave = make_wave(case, sub_cases)
    clients = [client_for("IB", Role.OPS_SUPERVISOR) for _ in range(2)]
    barrier = threading.Barrier(2)
    responses = []

    def run(client):
        barrier.wait()
        responses.append(client.post(ALLOCATE, {"demandUrn": wave.urn}, format="json"))

    threads = [threading.Thread(target=run, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(r.status_code for r in responses) == [201, 409]
    loser = next(r for r in responses if r.status_code == 409)
    assert loser.json()["demandStatus"] == "ALLOCATED"
    assert Allocation.objects.count() == 1
    assert set(statuses(sub_cases).values()) == {SubCaseStatus.ALLOCATED}
    assert OutboxEvent.objects.filter(event="subcase:state-changed").count() == 2


def test_a_wave_with_no_grouped_passenger_left_is_409(engine, client_for):
    case = CaseFactory(airline="IB", airport="MAD")
    sub_cases = grouped(case, [[]])
    wave = make_wave(case, sub_cases)
    SubCase.objects.filter(pk=sub_cases[0].pk).update(status=SubCaseStatus.CANCELLED)  # left the case
    assert_problem(allocate(client_for, wave), 409, "nothing-to-allocate")
    wave.refresh_from_db()
    assert wave.status == DemandStatus.APPROVED and not Allocation.objects.exists()


def test_another_airlines_demand_and_case_are_404(engine, client_for):
    foreign_case = CaseFactory(airline="LH", airport="FRA")
    foreign = make_wave(foreign_case, grouped(foreign_case, [[]]))
    own_case = CaseFactory(airline="IB", airport="MAD")
    own = make_wave(own_case, grouped(own_case, [[]]))
    client = client_for("IB", Role.ADMIN)
    assert_problem(client.post(ALLOCATE, {"demandUrn": foreign.urn}, format="json"), 404, "not-found")
    assert_problem(
        client.post(f"/v1/cases/{own_case.urn}/allocate", {"demandUrn": foreign.urn}, format="json"), 404, "not-found"
    )
    assert_problem(
        client.post(f"/v1/cases/{foreign_case.urn}/allocate", {"demandUrn": own.urn}, format="json"), 404, "not-found"
    )
    foreign.refresh_from_db()
    assert foreign.status == DemandStatus.APPROVED and not Allocation.objects.exists()


def test_a_demand_of_another_case_through_the_composition_route_is_422(engine, client_for):
    case, other = CaseFactory(airline="IB", airport="MAD"), CaseFactory(airline="IB", airport="MAD")
    wave = make_wave(other, grouped(other, [[]]))
    response = client_for("IB", Role.OPS_SUPERVISOR).post(
        f"/v1/cases/{case.urn}/allocate", {"demandUrn": wave.urn}, format="json"
    )
    body = assert_problem(response, 422, "unprocessable")
    assert body["errors"][0]["field"] == "demandUrn" and case.urn in body["errors"][0]["message"]
    assert not Allocation.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "demandUrn"),
        ({"demandUrn": "urn:nexa:demand:nope"}, "demandUrn"),
        ({"demandUrn": "urn:nexa:case:019371a8-5e2c-7c3d-9a4b-2f6e8d1c0b7a"}, "demandUrn"),
        ({"demandUrn": 7}, "demandUrn"),
        ({"demandUrn": "urn:nexa:demand:019371a8-5e2c-7c3d-9a4b-2f6e8d1c0b7a", "extra": 1}, "extra"),
        ([], "body"),
    ],
)
def test_bad_bodies_are_400_naming_the_field(client_for, body, field):
    response = client_for("IB", Role.OPS_SUPERVISOR).post(ALLOCATE, body, format="json")
    problem = assert_problem(response, 400, "validation-error")
    assert field in [error["field"] for error in problem["errors"]]


# --- idempotency, vendors, scale ---------------------------------------------------------------------------


def test_a_replayed_allocation_answers_the_same_plan(world, client_for):
    case = CaseFactory(airline="IB", airport="MAD")
    wave = make_wave(case, grouped(case, [[]]))
    client = client_for("IB", Role.OPS_SUPERVISOR)
    key = {"HTTP_IDEMPOTENCY_KEY": "5f0c1d2e-3a4b-4c5d-8e9f-0a1b2c3d4e5f"}
    first = client.post(ALLOCATE, {"demandUrn": wave.urn}, format="json", **key)
    again = client.post(ALLOCATE, {"demandUrn": wave.urn}, format="json", **key)
    assert first.status_code == again.status_code == 201
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert Allocation.objects.count() == 1


def test_a_vendor_down_is_a_partial_failure_and_the_rest_is_placed(world, client_for, vendors):
    vendors.hotels.vendor("stayhub").outage()
    case = CaseFactory(airline="IB", airport="MAD")
    sub_cases = grouped(case, [[], []], [[]])
    wave = make_wave(case, sub_cases)  # no contract: vendor inventory only

    response = allocate(client_for, wave)

    assert response.status_code == 201, response.content
    plan = response.json()
    assert [(f["domain"], f["status"]) for f in plan["partialFailures"]] == [("stayhub", "error")]
    assert plan["unallocated"] == []
    assert {a["source"] for a in plan["assignments"]} == {"VENDOR"}
    assert "stayhub" not in {a["vendor"] for a in plan["assignments"]}
    assert all(a["offerId"].startswith(f"{a['vendor']}~") for a in plan["assignments"])
    assert_rooms_sound(plan, sub_cases)
    assert set(statuses(sub_cases).values()) == {SubCaseStatus.ALLOCATED}


def test_every_vendor_down_and_contracts_short_is_503_and_nothing_is_written(world, client_for, vendors):
    """An outage is not a verdict: with no vendor answering, the groups the contracts cannot place are not
    sent to review; the wave stays APPROVED and the supervisor retries."""
    for vendor in VENDORS:
        vendors.hotels.vendor(vendor).outage()
    case = CaseFactory(airline="IB", airport="MAD")
    sub_cases = grouped(case, [[]], [[]])
    wave = make_wave(case, sub_cases)  # no contract

    response = allocate(client_for, wave)

    assert response.status_code == 503, response.content
    assert response.json()["failedDomain"] == "booking"
    assert response.headers["Retry-After"] == "30"
    wave.refresh_from_db()
    assert wave.status == DemandStatus.APPROVED
    assert not Allocation.objects.filter(demand=wave).exists()
    assert set(statuses(sub_cases).values()) == {SubCaseStatus.GROUPED}


def test_a_hung_vendor_does_not_hold_the_allocation_past_its_time_box(world, client_for, vendors):
    vendors.hotels.vendor("globerooms").hang()
    case = CaseFactory(airline="IB", airport="MAD")
    wave = make_wave(case, grouped(case, [[]]))
    plan = allocate(client_for, wave).json()
    # The hung vendor is reported as timed out (its section was abandoned at the search's time box).
    assert ("globerooms", "timeout") in [(f["domain"], f["status"]) for f in plan["partialFailures"]]
    assert len(plan["assignments"]) == 1


def test_three_hundred_passengers_allocate_without_per_passenger_reads(world, client_for):
    case = CaseFactory(airline="IB", airport="MAD")
    hotel = contract_hotel(accessible_rooms=20)
    make_contract(hotelUrn=hotel.urn, allotment=200, rate={"amount": "70.00", "currency": "EUR"})
    parties = [[[]] * 2] * 100 + [[["WHEELCHAIR"]]] * 20 + [[[]]] * 80  # 300 passengers in 200 groups
    sub_cases = grouped(case, *parties)
    wave = make_wave(case, sub_cases)

    with CaptureQueriesContext(connection) as queries:
        response = allocate(client_for, wave)

    assert response.status_code == 201, response.content
    plan = response.json()
    assert plan["partialFailures"] == []
    assert_rooms_sound(plan, sub_cases)
    placed = sum(len(r["occupants"]) for a in plan["assignments"] for r in a["rooms"])
    assert placed == 300
    assert set(statuses(sub_cases).values()) == {SubCaseStatus.ALLOCATED}
    # No N+1 reads: per sub-case only its audit row, its event, and the entity-lock guard and holder lookup
    # (hooks that answer one sub-case at a time); the status change itself is one UPDATE for all of them.
    assert len(queries) <= 4 * 300 + 60, len(queries)
    assert Decimal(plan["assignments"][0]["nightlyRate"]["amount"]) == Decimal("70.00")
