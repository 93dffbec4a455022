"""The review actions that book: ``POST /v1/manual-review/{urn}/rebook`` (the passengers planned at one hotel by
the allocation engine and booked there by the room sagas; driven to NOTIFIED by a real worker in
test_rebook_saga.py) and ``…/override`` (manual reservations of the offer the front desk confirmed). The platform
contracts (roles, 401, 404 across tenants, malformed URNs, audit), the claim rules (someone else's live claim:
409; nobody's: claimed by the action), the refusals (422 saying why, nothing written), idempotent replays and
the agent action recorded on the item."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from audit.models import AuditEntry
from booking.hotels import hotels_seed_demo
from booking.models import Hotel, HotelSearch, Reservation, ReservationSource, ReservationStatus
from cases.models import Allocation, DemandKind, DemandStatus, SagaRun, SubCase, SubCaseStatus
from nexa.platform.auth import Principal
from nexa.platform.models import OutboxEvent
from nexa.platform.roles import Role
from nexa.platform.urns import format_urn, new_id
from notifications.models import Notification
from policies.selectors import Relaxation, relaxation_register, relaxation_unregister
from review import services
from review.models import ReviewItem, ReviewState
from tests.api_base import APIContractTests, RouteContract, assert_problem, operator_urn
from tests.cases.booking_helpers import allocation_for, check_in_day, contract_offer, hotel, vendor_offer
from tests.cases.factories import CaseFactory
from tests.cases.test_allocation import GENEROUS_RULES, VENDORS, grouped, make_wave
from tests.policies.factories import active_policy
from tests.review.factories import ReviewItemFactory

ANA = "urn:nexa:user:ana"
BEN = "urn:nexa:user:ben"
AUDITORIUM = "mad-auditorium"  # 2.9 km from MAD, 4★, carried by stayhub, globerooms, nightbed
EUROBUILDING = "NH Collection Madrid Eurobuilding"  # 10.9 km from MAD, 5★


@pytest.fixture
def vendors(simulator_control, settings):
    settings.NEXA_HOTEL_VENDORS = list(VENDORS)
    return simulator_control


def world(airline: str = "IB", *, rules: dict | None = None, parties=([[], []],), kind=DemandKind.INITIAL) -> dict:
    """IB's catalog and policy; a case at MAD whose groups' passengers are in MANUAL_REVIEW after a failed
    booking of their (ALLOCATED) demand wave; the item naming them (claimed by nobody)."""
    hotels_seed_demo(airline=airline)
    active_policy(airline=airline, rules=dict(rules or GENEROUS_RULES))
    case = CaseFactory(airline=airline, airport="MAD")
    sub_cases = grouped(case, *parties)
    wave = make_wave(case, sub_cases, status=DemandStatus.ALLOCATED, kind=kind)
    SubCase.objects.filter(pk__in=[s.pk for s in sub_cases]).update(status=SubCaseStatus.MANUAL_REVIEW)
    groups = sorted({s.group for s in sub_cases}, key=lambda g: g.label)
    item = ReviewItemFactory(
        case=case,
        airline=airline,
        demand_urn=wave.urn,
        affected_groups=[g.label for g in groups],
        affected_group_urns=[g.urn for g in groups],
        affected_subcase_urns=[s.urn for s in sub_cases],
    )
    return {"item": item, "case": case, "wave": wave, "sub_cases": sub_cases, "hotel": hotel(airline, AUDITORIUM)}


def override_world(airline: str = "IB") -> dict:
    """``world`` plus the failed allocation the item came from: its vendor offer at the Auditorium is what the
    front desk confirmed."""
    objects = world(airline, kind=DemandKind.INCREMENTAL)  # the failed allocation's wave is the INITIAL one
    day = check_in_day()
    offer = vendor_offer(airline, AUDITORIUM, check_in=day, rooms=1, rate="95.00")
    failed = allocation_for(objects["case"], [(objects["sub_cases"], [offer])], check_in=day)
    ReviewItem.objects.filter(pk=objects["item"].pk).update(demand_urn="", allocation_urn=failed.urn)
    objects["item"].refresh_from_db()
    return {**objects, "offer": offer, "failed": failed}


def post(client, item, action: str, body: dict, **headers):
    return client.post(f"/v1/manual-review/{item.urn}/{action}", body, format="json", **headers)


def statuses(sub_cases) -> set[str]:
    return set(SubCase.objects.filter(pk__in=[s.pk for s in sub_cases]).values_list("status", flat=True))


def supervisor(operator: str = ANA, airline: str = "IB") -> Principal:
    return Principal(airline=airline, role=Role.OPS_SUPERVISOR, operator_urn=operator, subject=operator)


# --- platform contracts ---------------------------------------------------------------------------------------


def _rebooked(response, objects) -> bool:
    body = response.json()
    [entry] = body["actions"]
    return (
        body["urn"] == objects["item"].urn
        and body["state"] == "CLAIMED"
        and entry["action"] == "rebook"
        and entry["result"]["allocationUrn"].startswith("urn:nexa:allocation:")
        and len(entry["result"]["sagaUrns"]) == 1
        and body["resolution"] is None
    )


def _overridden(response, objects) -> bool:
    body = response.json()
    [entry] = body["actions"]
    return (
        body["urn"] == objects["item"].urn
        and entry["action"] == "override"
        and len(entry["result"]["reservationUrns"]) == 1
    )


class TestRebookContract(APIContractTests):
    routes = (
        RouteContract(
            "rebook",
            "POST",
            "/v1/manual-review/{item}/rebook",
            min_role=Role.OPS_SUPERVISOR,
            expect_status=202,
            body=lambda objects: {"hotelUrn": objects["hotel"].urn, "reason": "agent rec #1"},
            audit_actions=(
                "review.claimed",
                "review.rebooked",
                "allocation.created",
                "subcase.reallocate",
                "allocation.booking_requested",
                "subcase.start_booking",
            ),
            check=_rebooked,
        ),
    )

    @pytest.fixture(autouse=True)
    def _world(self, transactional_db, vendors):
        # The search and the policies are read on the compose workers' own connections: commit the objects.
        pass

    def make_objects(self, airline):
        return world(airline)


class TestOverrideContract(APIContractTests):
    routes = (
        RouteContract(
            "override",
            "POST",
            "/v1/manual-review/{item}/override",
            min_role=Role.OPS_SUPERVISOR,
            body=lambda objects: {
                "hotelUrn": objects["hotel"].urn,
                "providerOfferId": objects["offer"]["offerId"],
                "reason": "front-desk phone confirmation",
            },
            audit_actions=(
                "review.claimed",
                "review.overridden",
                "reservation.manual_created",
                "subcase.resolve_as_booked",
            ),
            check=_overridden,
        ),
    )

    def make_objects(self, airline):
        objects = world(airline)
        _, offer = contract_offer(airline, AUDITORIUM)  # a contract call-off: no vendor is asked
        return {**objects, "offer": offer}


# --- rebook -------------------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("where", ["too-far", "other-airline", "unknown"])
def test_a_hotel_that_cannot_take_them_is_422_saying_why_and_nothing_is_written(vendors, client_for, where):
    objects = world(rules={**GENEROUS_RULES, "maxDistanceKm": 5})
    item = objects["item"]
    hotel_urn = {
        "too-far": lambda: Hotel.objects.get(airline="IB", name=EUROBUILDING).urn,  # 10.9 km: the policy caps 5 km
        "other-airline": lambda: hotel("LH", AUDITORIUM).urn,
        "unknown": lambda: format_urn("hotel", new_id()),
    }[where]()
    audit_rows = AuditEntry.objects.exclude(action="hotel.searched").count()

    response = post(client_for("IB", Role.OPS_SUPERVISOR, ANA), item, "rebook", {"hotelUrn": hotel_urn, "reason": "x"})

    body = assert_problem(response, 422, "unprocessable")
    assert [e["field"] for e in body["errors"]] == ["hotelUrn"]
    if where == "too-far":
        assert "NH Collection Madrid Eurobuilding cannot take these passengers" in body["detail"]
        assert "within 5 km" in body["detail"] and "km from the airport, 5★" in body["detail"]
    else:
        assert body["errors"][0]["message"] == "is not a hotel of the airline's catalog"
    assert statuses(objects["sub_cases"]) == {"MANUAL_REVIEW"}
    assert not Allocation.objects.filter(case=item.case).exists() and not SagaRun.objects.exists()
    fresh = ReviewItem.objects.get(pk=item.pk)
    assert (fresh.state, fresh.assigned_to, fresh.actions, fresh.version) == ("OPEN", "", [], item.version)
    assert AuditEntry.objects.exclude(action="hotel.searched").count() == audit_rows
    assert not OutboxEvent.objects.filter(event__startswith="review:").exists()


@pytest.mark.django_db(transaction=True)
def test_a_case_relaxation_makes_a_hotel_beyond_the_policy_bookable(vendors, client_for):
    """The relax action's relaxations reach rebook through policies.selectors' relaxation sources (registered
    here as the relax action registers its own): the 10.9 km hotel refused under a 5 km policy is planned once
    this case's maxDistanceKm is relaxed to 40, and only for this case."""
    objects = world(rules={**GENEROUS_RULES, "maxDistanceKm": 5})
    item, far = objects["item"], Hotel.objects.get(airline="IB", name=EUROBUILDING)
    client = client_for("IB", Role.OPS_SUPERVISOR, ANA)
    body = {"hotelUrn": far.urn, "reason": "airport hotels all booked"}
    assert_problem(post(client, item, "rebook", body), 422, "unprocessable")

    def relaxed(*, principal, case_urn, policy):
        if case_urn != item.case.urn:
            return []
        return [Relaxation(rule="maxDistanceKm", value=40, reason="duty manager", source=item.urn)]

    relaxation_register(relaxed)
    try:
        response = post(client, item, "rebook", body)
    finally:
        relaxation_unregister(relaxed)
    assert response.status_code == 202, response.content
    allocation = Allocation.objects.get(pk=response.json()["actions"][0]["result"]["allocationUrn"].rsplit(":", 1)[1])
    assert {a["hotelUrn"] for a in allocation.plan["assignments"]} == {far.urn}
    assert statuses(objects["sub_cases"]) == {"BOOKING"}


@pytest.mark.django_db(transaction=True)
def test_an_item_claimed_by_another_operator_is_409_naming_them_before_any_search(vendors, client_for):
    objects = world()
    item = objects["item"]
    assert post(client_for("IB", Role.OPS_SUPERVISOR, BEN), item, "claim", {}).status_code == 200

    refused = post(client_for("IB", Role.OPS_SUPERVISOR, ANA), item, "rebook", {"hotelUrn": objects["hotel"].urn,
                                                                                 "reason": "x"})  # fmt: skip
    body = assert_problem(refused, 409, "review-claimed")
    assert body["assignedTo"] == BEN
    assert not HotelSearch.objects.exists() and statuses(objects["sub_cases"]) == {"MANUAL_REVIEW"}
    assert ReviewItem.objects.get(pk=item.pk).actions == []

    # Once Ben's lease lapses, Ana's rebook claims the item for her in the same transaction.
    ReviewItem.objects.filter(pk=item.pk).update(claimed_until=timezone.now() - dt.timedelta(seconds=1))
    taken = post(client_for("IB", Role.OPS_SUPERVISOR, ANA), item, "rebook", {"hotelUrn": objects["hotel"].urn,
                                                                               "reason": "x"})  # fmt: skip
    assert taken.status_code == 202, taken.content
    assert (taken.json()["assignedTo"], taken.json()["state"]) == (ANA, "CLAIMED")
    claimed = OutboxEvent.objects.filter(event="review:claimed").order_by("created_at", "id")
    assert [e.payload["assignedTo"] for e in claimed] == [BEN, ANA]


@pytest.mark.django_db(transaction=True)
def test_a_rebook_replayed_with_its_key_is_the_same_202_and_books_once(vendors, client_for):
    objects = world()
    item = objects["item"]
    client = client_for("IB", Role.OPS_SUPERVISOR, ANA)
    body = {"hotelUrn": objects["hotel"].urn, "reason": "agent rec #1"}

    first = post(client, item, "rebook", body, HTTP_IDEMPOTENCY_KEY="rebook-1")
    replay = post(client, item, "rebook", body, HTTP_IDEMPOTENCY_KEY="rebook-1")

    assert first.status_code == replay.status_code == 202, first.content
    assert replay.json() == first.json() and replay["Idempotent-Replayed"] == "true"
    assert Allocation.objects.filter(case=item.case).count() == 1 and SagaRun.objects.count() == 1
    assert len(ReviewItem.objects.get(pk=item.pk).actions) == 1
    # Without the key, a second rebook finds nobody left in review.
    again = post(client, item, "rebook", body)
    assert_problem(again, 409, "nothing-to-book")


@pytest.mark.django_db
def test_a_resolved_item_refuses_both_actions(client_for):
    objects = world()
    item = objects["item"]
    ReviewItem.objects.filter(pk=item.pk).update(state=ReviewState.RESOLVED, resolution="NO_ACTION")
    client = client_for("IB", Role.OPS_SUPERVISOR, ANA)
    body = assert_problem(post(client, item, "rebook", {"hotelUrn": objects["hotel"].urn, "reason": "x"}), 409,
                          "illegal-transition")  # fmt: skip
    assert body["currentState"] == "RESOLVED"
    override = {"hotelUrn": objects["hotel"].urn, "providerOfferId": "stayhub~x", "reason": "x"}
    assert_problem(post(client, item, "override", override), 409, "illegal-transition")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("action", "body", "field"),
    [
        ("rebook", {"reason": "x"}, "hotelUrn"),
        ("rebook", {"hotelUrn": "urn:nexa:case:019371a8-5e2c-7c3d-9a4b-2f6e8d1c0b7a", "reason": "x"}, "hotelUrn"),
        ("rebook", {"hotelUrn": "urn:nexa:hotel:019371a8-5e2c-7c3d-9a4b-2f6e8d1c0b7a", "reason": " "}, "reason"),
        ("rebook", {"hotelUrn": "urn:nexa:hotel:019371a8-5e2c-7c3d-9a4b-2f6e8d1c0b7a", "reason": "x", "n": 1}, "n"),
        ("override", {"hotelUrn": "urn:nexa:hotel:019371a8-5e2c-7c3d-9a4b-2f6e8d1c0b7a", "reason": "x"},
         "providerOfferId"),
    ],
)  # fmt: skip
def test_bad_bodies_are_400_naming_the_field(client_for, action, body, field):
    item = world()["item"]
    problem = assert_problem(post(client_for("IB", Role.OPS_SUPERVISOR), item, action, body), 400, "validation-error")
    assert field in [error["field"] for error in problem["errors"]]


# --- override -------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_override_books_the_confirmed_offer_manually_and_notifies(client_for):
    objects = override_world()
    item, chosen, sub_cases, offer = objects["item"], objects["hotel"], objects["sub_cases"], objects["offer"]
    client = client_for("IB", Role.OPS_SUPERVISOR, ANA)
    body = {"hotelUrn": chosen.urn, "providerOfferId": offer["offerId"], "reason": "front-desk phone confirmation"}

    response = post(client, item, "override", body, HTTP_IDEMPOTENCY_KEY="override-1")

    assert response.status_code == 200, response.content
    answer = response.json()
    assert (answer["state"], answer["assignedTo"], answer["resolution"]) == ("CLAIMED", ANA, None)
    [entry] = answer["actions"]
    assert entry["action"] == "override" and entry["params"] == {
        "hotelUrn": chosen.urn,
        "providerOfferId": offer["offerId"],
    }
    [reservation] = Reservation.objects.filter(case=item.case)
    assert entry["result"]["reservationUrns"] == [reservation.urn]
    assert (reservation.hotel_id, reservation.source, reservation.status) == (
        chosen.pk, ReservationSource.MANUAL, ReservationStatus.CONFIRMED,
    )  # fmt: skip
    assert reservation.confirmation_number == offer["offerId"][:80]
    assert (str(reservation.nightly_rate), reservation.currency) == ("95.00", "EUR")
    assert reservation.check_in == objects["failed"].demand.check_in and reservation.nights == 1
    assert sorted(reservation.rooms[0]["occupants"]) == sorted(s.urn for s in sub_cases)
    assert statuses(sub_cases) == {"NOTIFIED"}
    vouchers = Notification.objects.filter(case=item.case, template="hotel_voucher")
    assert vouchers.values("sub_case").distinct().count() == 2
    assert OutboxEvent.objects.filter(event="review:overridden", payload__reviewUrn=item.urn).count() == 1
    assert AuditEntry.objects.filter(action="review.overridden", entity_urn=item.urn, actor=ANA).count() == 1

    replay = post(client, item, "override", body, HTTP_IDEMPOTENCY_KEY="override-1")
    assert replay.status_code == 200 and replay.json() == answer and replay["Idempotent-Replayed"] == "true"
    assert Reservation.objects.filter(case=item.case).count() == 1

    resolved = post(client, item, "resolve", {"resolution": "OVERRIDDEN", "reason": "phone booking"})
    assert resolved.status_code == 200 and statuses(sub_cases) == {"NOTIFIED"}


@pytest.mark.django_db
def test_override_puts_unrelated_parties_in_their_own_reservations(client_for):
    objects = world(parties=([[], []], [[]]))
    _, offer = contract_offer("IB", AUDITORIUM)
    body = {"hotelUrn": objects["hotel"].urn, "providerOfferId": offer["offerId"], "reason": "phone"}
    response = post(client_for("IB", Role.OPS_SUPERVISOR, ANA), objects["item"], "override", body)
    assert response.status_code == 200, response.content
    reservations = Reservation.objects.filter(case=objects["case"])
    pnr_of = {s.urn: s.pnr for s in objects["sub_cases"]}
    assert reservations.count() == 2
    for reservation in reservations:
        assert len({pnr_of[u] for room in reservation.rooms for u in room["occupants"]}) == 1
    assert statuses(objects["sub_cases"]) == {"NOTIFIED"}


@pytest.mark.django_db
def test_override_with_an_offer_of_another_hotel_or_unknown_is_422(client_for):
    objects = override_world()
    client = client_for("IB", Role.OPS_SUPERVISOR, ANA)
    other = hotel("IB", "mad-melia-barajas")
    body = {"hotelUrn": other.urn, "providerOfferId": objects["offer"]["offerId"], "reason": "phone"}
    problem = assert_problem(post(client, objects["item"], "override", body), 422, "unprocessable")
    assert problem["errors"][0]["field"] == "providerOfferId" and "another hotel" in problem["errors"][0]["message"]
    unknown = {"hotelUrn": objects["hotel"].urn, "providerOfferId": f"contract~{format_urn('contract', new_id())}",
               "reason": "phone"}  # fmt: skip
    assert_problem(post(client, objects["item"], "override", unknown), 422, "unprocessable")
    assert statuses(objects["sub_cases"]) == {"MANUAL_REVIEW"}
    assert not Reservation.objects.filter(source=ReservationSource.MANUAL).exists()
    assert ReviewItem.objects.get(pk=objects["item"].pk).actions == []


@pytest.mark.django_db
def test_override_by_another_than_the_live_claimer_is_409(client_for):
    objects = override_world()
    item = objects["item"]
    assert post(client_for("IB", Role.OPS_SUPERVISOR, BEN), item, "claim", {}).status_code == 200
    body = {"hotelUrn": objects["hotel"].urn, "providerOfferId": objects["offer"]["offerId"], "reason": "phone"}
    refused = assert_problem(post(client_for("IB", Role.OPS_SUPERVISOR, ANA), item, "override", body), 409,
                             "review-claimed")  # fmt: skip
    assert refused["assignedTo"] == BEN
    assert statuses(objects["sub_cases"]) == {"MANUAL_REVIEW"}
    # Ben, the claimer, may.
    assert post(client_for("IB", Role.OPS_SUPERVISOR, BEN), item, "override", body).status_code == 200


# --- the agent's path: the services as the exception agent calls them -------------------------------------------


@pytest.mark.django_db
def test_the_executed_agent_action_is_recorded_on_the_item():
    objects = override_world()
    agent_action = format_urn("agent-action", new_id())
    item = services.review_item_override(
        principal=supervisor(),
        review_urn=objects["item"].urn,
        hotel_urn=objects["hotel"].urn,
        provider_offer_id=objects["offer"]["offerId"],
        reason="agent rec #2, confirmed by phone",
        agent_action_urn=agent_action,
    )
    item.refresh_from_db()
    assert item.accepted_agent_action_urn == agent_action
    assert item.actions[-1]["agentActionUrn"] == agent_action and item.actions[-1]["by"] == ANA
    audited = AuditEntry.objects.get(action="review.overridden", entity_urn=item.urn)
    assert audited.after["agentActionUrn"] == agent_action


@pytest.mark.django_db(transaction=True)
def test_rebook_through_the_service_records_the_agent_action(vendors):
    objects = world()
    agent_action = format_urn("agent-action", new_id())
    item = services.review_item_rebook(
        principal=supervisor(operator_urn("IB", Role.OPS_SUPERVISOR)),
        review_urn=objects["item"].urn,
        hotel_urn=objects["hotel"].urn,
        reason="agent rec #1",
        agent_action_urn=agent_action,
    )
    fresh = ReviewItem.objects.get(pk=item.pk)
    assert fresh.accepted_agent_action_urn == agent_action
    assert fresh.actions[-1]["agentActionUrn"] == agent_action and fresh.actions[-1]["action"] == "rebook"
    assert statuses(objects["sub_cases"]) == {"BOOKING"}
