"""Each of spec 001's seven categories has a real origin: the failing domain fails for real (the allocation use
case, the room saga and the compensation saga against the provider simulators), its outbox event is handed to
the review consumer exactly as the relay does, and the item carries the category and its priority
(docs/review.md § Where each category comes from)."""

from __future__ import annotations

import pytest
from django.test import override_settings

from booking.hotels import hotels_seed_demo
from cases import services as case_services
from cases.models import SubCase, Tier
from nexa.platform.models import OutboxEvent
from nexa.platform.outbox import event_urn
from nexa.platform.roles import Role
from review import tasks
from review.models import ReviewItem
from tests.cases.booking_helpers import (
    allocation_for,
    check_in_day,
    drive,
    new_case,
    passengers,
    supervisor,
    vendor_offer,
)
from tests.cases.demand_helpers import principal as principal_of
from tests.cases.factories import CASH, CaseFactory, PassengerGroupFactory, SubCaseFactory
from tests.cases.test_allocation import GENEROUS_RULES, VENDORS, make_wave
from tests.policies.factories import active_policy
from tests.review.factories import delivery

FAST = {
    "NEXA_SAGA_BACKOFF_BASE_SECONDS": 0.01,
    "NEXA_SAGA_BACKOFF_MAX_SECONDS": 0.05,
    "NEXA_SAGA_UNAVAILABLE_WAIT_SECONDS": 0.01,
    "NEXA_SAGA_MAX_ATTEMPTS": 3,
}
CONSUMER = {
    "allocation:failed": tasks.review_item_from_allocation_failed,
    "booking:failed": tasks.review_item_from_booking_failed,
    "saga:failed": tasks.review_item_from_saga_failed,
}


def relay_failures(case) -> list[ReviewItem]:
    """Every failure event of the case, handed to its review consumer (twice: the outbox delivers at least
    once); the items made, oldest first."""
    rows = OutboxEvent.objects.filter(event__in=list(CONSUMER), payload__caseUrn=case.urn).order_by("created_at")
    for row in rows:
        for _ in range(2):
            CONSUMER[row.event](**delivery(row.event, row.payload, airline=row.airline, event_id=event_urn(row.id)))
    return list(ReviewItem.objects.filter(case=case).order_by("created_at", "id"))


def member(case, group, *, tier=Tier.ECONOMY, pnr="CAT001", **fields):
    return SubCaseFactory(case=case, airline=case.airline, group=group, pnr=pnr, tier=tier, status="GROUPED", **fields)


@pytest.mark.django_db(transaction=True)
def test_allocation_gives_allocation_failed_policy_violation_mixed_tier_and_data_incomplete(
    simulator_control, settings
):
    settings.NEXA_HOTEL_VENDORS = list(VENDORS)
    hotels_seed_demo(airline="IB")
    # ECONOMY may sleep anywhere; PREMIUM_ECONOMY only within 100 m of the airport (nothing is); BUSINESS has no
    # policy at all (and no airline default).
    active_policy(airline="IB", scope_tier=Tier.ECONOMY, rules=dict(GENEROUS_RULES))
    active_policy(airline="IB", scope_tier=Tier.PREMIUM_ECONOMY, rules={**GENEROUS_RULES, "maxDistanceKm": 0.1})
    case = CaseFactory(airline="IB", airport="MAD")
    placed, too_far, no_policy, mixed, incomplete = (PassengerGroupFactory(case=case, airline="IB") for _ in range(5))
    members = {
        "placed": [member(case, placed, pnr="CAT001")],
        "ALLOCATION_FAILED": [member(case, too_far, pnr="CAT002", tier=Tier.PREMIUM_ECONOMY)],
        "POLICY_VIOLATION": [member(case, no_policy, pnr="CAT003", tier=Tier.BUSINESS)],
        "MIXED_TIER_GROUP": [
            member(case, mixed, pnr="CAT004"),
            member(case, mixed, pnr="CAT004", tier=Tier.PREMIUM_ECONOMY),
        ],
        "DATA_INCOMPLETE": [member(case, incomplete, pnr="CAT005")],
    }
    SubCase.objects.filter(pk=members["DATA_INCOMPLETE"][0].pk).update(first_name="")
    wave = make_wave(case, [s for group in members.values() for s in group])

    case_services.allocation_create(principal=principal_of("IB", Role.OPS_SUPERVISOR), demand_urn=wave.urn)
    items = relay_failures(case)

    by_category = {item.category: item for item in items}
    assert len(items) == 4 and set(by_category) == {
        "ALLOCATION_FAILED", "POLICY_VIOLATION", "MIXED_TIER_GROUP", "DATA_INCOMPLETE",
    }  # fmt: skip
    priorities = {category: item.priority for category, item in by_category.items()}
    assert priorities == {
        "ALLOCATION_FAILED": "HIGH", "POLICY_VIOLATION": "LOW", "MIXED_TIER_GROUP": "LOW", "DATA_INCOMPLETE": "LOW",
    }  # fmt: skip
    for category, item in by_category.items():
        assert sorted(item.affected_subcase_urns) == sorted(s.urn for s in members[category]), category
        assert item.demand_urn == wave.urn and item.source_event == "allocation:failed"
    assert "first_name" in by_category["DATA_INCOMPLETE"].reason
    assert SubCase.objects.get(pk=members["placed"][0].pk).status == "ALLOCATED"


def book(case, allocation):
    answer = case_services.case_book_rooms(principal=supervisor(case.airline), case=case, allocation_id=allocation.pk)
    from cases.models import SagaRun

    return [SagaRun.objects.get(pk=run["sagaUrn"].rsplit(":", 1)[1]) for run in answer["runs"]]


@pytest.mark.django_db
@override_settings(**FAST)
def test_a_room_saga_no_hotel_takes_is_booking_failed_and_one_item(simulator_control):
    case, day = new_case(), check_in_day()
    pair = passengers(case, 2)
    simulator_control.hotels.vendor("stayhub").control(inventory="none")
    offers = [vendor_offer("IB", key, check_in=day, rooms=2) for key in ("mad-melia-barajas", "mad-auditorium")]
    allocation = allocation_for(case, [(pair, offers)], check_in=day)
    [run] = book(case, allocation)
    assert drive(run).status == "FAILED"

    [item] = relay_failures(case)  # booking:failed and saga:failed of one run: one item

    assert (item.category, item.priority, item.source_event) == ("BOOKING_FAILED", "HIGH", "booking:failed")
    assert [a["reason"] for a in item.attempted_hotels] == ["hotel-full", "hotel-full"]
    assert item.affected_subcase_urns == [m.urn for m in pair] and item.allocation_urn == allocation.urn


@pytest.mark.django_db
@override_settings(**FAST)
def test_one_group_booked_and_another_failed_is_partial_fulfillment(simulator_control):
    case, day = new_case(), check_in_day()
    [first], [second] = passengers(case, 1), passengers(case, 1)
    good = vendor_offer("IB", "mad-auditorium", check_in=day)
    bad = vendor_offer("IB", "mad-melia-barajas", check_in=day)
    bad["offerId"] = bad["offerId"].replace("SH", "XX")  # the vendor no longer has this rate
    allocation = allocation_for(case, [([first], [good]), ([second], [bad])], check_in=day)
    assert [drive(run).status for run in book(case, allocation)] == ["COMPLETED", "FAILED"]

    [item] = relay_failures(case)

    assert (item.category, item.priority) == ("PARTIAL_FULFILLMENT", "MEDIUM")
    assert item.affected_subcase_urns == [second.urn]
    assert item.reservation_urns  # the booked group's reservation is linked


@pytest.mark.django_db
@override_settings(**FAST)
def test_a_card_the_psp_refuses_in_the_room_saga_is_payment_failed(simulator_control):
    case, day = new_case(), check_in_day()
    [guest] = passengers(case, 1)
    allocation = allocation_for(case, [([guest], [vendor_offer("IB", "mad-auditorium", check_in=day)])], check_in=day)
    simulator_control.psp.refuse({guest.urn: "card_declined"})
    [run] = book(case, allocation)
    assert drive(run).status == "FAILED"

    [item] = relay_failures(case)

    assert (item.category, item.priority, item.source_event) == ("PAYMENT_FAILED", "MEDIUM", "booking:failed")
    assert item.attempted_hotels[-1]["reason"] == "payment-refused"


@pytest.mark.django_db
@override_settings(**FAST)
def test_a_cash_payout_the_psp_refuses_in_compensation_is_payment_failed(simulator_control):
    passenger = SubCaseFactory(case=CaseFactory(airline="IB"), airline="IB")
    simulator_control.psp.refuse({passenger.urn: "insufficient_funds"})
    run, _ = case_services.subcase_compensate(
        principal=supervisor(),
        sub_case_urn=passenger.urn,
        expected_version=passenger.version,
        items=[CASH],
        reason="storm",
    )
    assert drive(run).status == "FAILED"

    [item] = relay_failures(passenger.case)

    assert (item.category, item.priority, item.source_event) == ("PAYMENT_FAILED", "MEDIUM", "saga:failed")
    assert item.saga_urn == run.urn and item.failure["failedStep"] == "cash.payout"
    assert item.affected_subcase_urns == [passenger.urn]
