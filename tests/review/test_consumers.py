"""Review items are born from failure events (saga:failed, allocation:failed, booking:failed): one item per
occurrence whatever the redeliveries, spec 001's category and priority, the airline's SLA, the links."""

import datetime as dt

import pytest
from django.db import transaction

from audit.models import AuditEntry
from booking.models import Reservation, ReservationSource
from cases import events as case_events
from cases.models import Tier
from nexa.platform.models import OutboxEvent, TenantSettings
from nexa.platform.outbox import Delivery, _consumers_for, event_urn, publish
from nexa.platform.urns import format_urn, new_id
from review import tasks
from review.models import ReviewItem
from tests.cases.factories import CaseFactory, PassengerGroupFactory, SubCaseFactory
from tests.review.factories import delivery

pytestmark = pytest.mark.django_db


@pytest.fixture
def case():
    return CaseFactory()


@pytest.fixture
def group(case):
    return PassengerGroupFactory(case=case, label="GRP-3")


@pytest.fixture
def passengers(case, group):
    return [SubCaseFactory(case=case, group=group, tier=tier) for tier in (Tier.ECONOMY, Tier.BUSINESS)]


def saga_failed_payload(case, sub_case, *, category="PAYMENT_FAILED", step="meal.issue_card") -> dict:
    return {
        "caseUrn": case.urn,
        "subCaseUrn": sub_case.urn,
        "sagaUrn": format_urn("saga", new_id()),
        "category": category,
        "failedStep": step,
        "compensationFailed": False,
        "outcomeUnknown": [],
        "attempts": [{"step": step, "provider": "psp", "code": "card_declined", "message": "declined", "at": None}],
    }


def allocation_failed_payload(case, group, passengers, category: str) -> dict:
    return {
        "caseUrn": case.urn,
        "demandUrn": format_urn("demand", new_id()),
        "allocationUrn": format_urn("allocation", new_id()),
        "groupUrn": group.urn,
        "subCaseUrns": [p.urn for p in passengers],
        "category": category,
        "reason": "no policy-compliant hotel within 25 km",
    }


def booking_failed_payload(case, group, passengers, category: str, allocation_urn: str | None = None) -> dict:
    return {
        "caseUrn": case.urn,
        "allocationUrn": allocation_urn or format_urn("allocation", new_id()),
        "groupUrn": group.urn,
        "subCaseUrns": [p.urn for p in passengers],
        "category": category,
        "reason": "every attempted hotel refused",
        "attemptedHotels": [
            {"hotelUrn": format_urn("hotel", new_id()), "reason": "hotel-full", "providerError": "409 no rooms"},
            {"hotelUrn": format_urn("hotel", new_id()), "reason": "payment-refused"},
        ],
    }


CONSUME = {
    "saga:failed": tasks.review_item_from_saga_failed,
    "allocation:failed": tasks.review_item_from_allocation_failed,
    "booking:failed": tasks.review_item_from_booking_failed,
}


def consume(event: str, payload: dict, **kw) -> ReviewItem | None:
    kwargs = delivery(event, payload, **kw)
    urn = CONSUME[event](**kwargs)
    return ReviewItem.objects.get(source_event_urn=kwargs["event_id"]) if urn else None


# --- wiring ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("event", ["saga:failed", "allocation:failed", "booking:failed"])
def test_each_failure_event_is_handed_to_its_review_consumer(event):
    assert (tasks.CONSUMERS[event], "default") in [(c.task_name, c.queue) for c in _consumers_for(event)]


def test_a_published_saga_failed_row_becomes_an_item(case, passengers):
    """The payload as the outbox stores it (checked against cases' declaration when published)."""
    with transaction.atomic():
        publish(
            case_events.SAGA_FAILED,
            saga_failed_payload(case, passengers[0]),
            case_events.case_rooms(case_urn=case.urn, airline=case.airline),
            airline=case.airline,
        )
    row = OutboxEvent.objects.get(event="saga:failed")
    # The keyword arguments exactly as the relay sends them (nexa.platform.outbox._deliver).
    kwargs = Delivery(
        event_id=event_urn(row.id), event=row.event, payload=row.payload, rooms=list(row.rooms), sequence=1,
        airline=row.airline, correlation_urn=row.correlation_urn,
    ).as_kwargs()  # fmt: skip
    urn = tasks.review_item_from_saga_failed(**kwargs)
    item = ReviewItem.objects.get()
    assert urn == item.urn and item.source_event_urn == event_urn(row.id)
    assert (item.category, item.priority, item.case_id) == ("PAYMENT_FAILED", "MEDIUM", case.id)
    assert item.affected_subcase_urns == [passengers[0].urn] and item.affected_groups == ["GRP-3"]
    assert item.saga_urn == row.payload["sagaUrn"] and item.failure["failedStep"] == "meal.issue_card"


# --- idempotency -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("event", ["saga:failed", "allocation:failed", "booking:failed"])
def test_the_same_event_delivered_twice_makes_one_item_one_audit_row_one_event(event, case, group, passengers):
    payload = {
        "saga:failed": lambda: saga_failed_payload(case, passengers[0]),
        "allocation:failed": lambda: allocation_failed_payload(case, group, passengers, "ALLOCATION_FAILED"),
        "booking:failed": lambda: booking_failed_payload(case, group, passengers, "BOOKING_FAILED"),
    }[event]()
    kwargs = delivery(event, payload)
    first = CONSUME[event](**kwargs)
    second = CONSUME[event](**kwargs)
    assert first == second
    assert ReviewItem.objects.count() == 1
    assert AuditEntry.objects.filter(action="review.created").count() == 1
    created = OutboxEvent.objects.filter(event="review:created")
    assert created.count() == 1 and created.get().payload["reviewUrn"] == first
    assert created.get().rooms == [f"case:{case.urn}"]


def test_two_occurrences_of_the_same_failure_are_two_items(case, group, passengers):
    payload = booking_failed_payload(case, group, passengers, "BOOKING_FAILED")
    consume("booking:failed", payload)
    consume("booking:failed", payload)
    assert ReviewItem.objects.count() == 2


# --- categories and priorities (spec 001's table) ----------------------------------------------------------

CATEGORY_CASES = [
    ("allocation:failed", "ALLOCATION_FAILED", "ALLOCATION_FAILED", "HIGH"),
    ("allocation:failed", "POLICY_VIOLATION", "POLICY_VIOLATION", "LOW"),
    ("allocation:failed", "MIXED_TIER_GROUP", "MIXED_TIER_GROUP", "LOW"),
    ("allocation:failed", "DATA_INCOMPLETE", "DATA_INCOMPLETE", "LOW"),
    ("allocation:failed", "SOMETHING_NEW", "ALLOCATION_FAILED", "HIGH"),
    ("booking:failed", "BOOKING_FAILED", "BOOKING_FAILED", "HIGH"),
    ("booking:failed", "PARTIAL_FULFILLMENT", "PARTIAL_FULFILLMENT", "MEDIUM"),
    ("booking:failed", "PAYMENT_FAILED", "PAYMENT_FAILED", "MEDIUM"),
    ("booking:failed", "ALLOCATION_FAILED", "BOOKING_FAILED", "HIGH"),
]


@pytest.mark.parametrize(("event", "sent", "category", "priority"), CATEGORY_CASES)
def test_category_and_priority(event, sent, category, priority, case, group, passengers):
    make = allocation_failed_payload if event == "allocation:failed" else booking_failed_payload
    item = consume(event, make(case, group, passengers, sent))
    assert (item.category, item.priority, item.state) == (category, priority, "OPEN")
    assert item.affected_groups == ["GRP-3"] and item.affected_group_urns == [group.urn]
    assert item.affected_subcase_urns == [p.urn for p in passengers]
    assert item.recommendations == []


@pytest.mark.parametrize(
    ("sent", "step", "category", "priority"),
    [
        ("PAYMENT_FAILED", "cash.payout", "PAYMENT_FAILED", "MEDIUM"),
        ("BOOKING_FAILED", "transport.request_ride", "BOOKING_FAILED", "HIGH"),
        ("PROVIDER_UNAVAILABLE", "meal.issue_card", "PAYMENT_FAILED", "MEDIUM"),
        ("INTERNAL_ERROR", "transport.request_ride", "BOOKING_FAILED", "HIGH"),
    ],
)
def test_a_failed_saga_is_a_payment_or_booking_failure_by_its_category_then_its_step(
    sent, step, category, priority, case, passengers
):
    item = consume("saga:failed", saga_failed_payload(case, passengers[0], category=sent, step=step))
    assert (item.category, item.priority) == (category, priority)


def test_a_booking_failure_keeps_attempted_hotels_and_links_the_allocations_reservations(case, group, passengers):
    allocation_urn = format_urn("allocation", new_id())
    booked = Reservation.objects.create(
        airline="IB", case=case, hotel_name="Hotel Centro", source=ReservationSource.VENDOR, vendor="stayhub",
        check_in=dt.date(2026, 11, 22), nights=1, allocation_urn=allocation_urn, created_by="urn:nexa:system:saga",
    )  # fmt: skip
    payload = booking_failed_payload(case, group, passengers, "PARTIAL_FULFILLMENT", allocation_urn=allocation_urn)
    item = consume("booking:failed", payload)
    assert item.attempted_hotels == payload["attemptedHotels"]
    assert item.reservation_urns == [booked.urn]
    assert item.allocation_urn == allocation_urn and item.reason == "every attempted hotel refused"


def test_an_allocation_failure_links_demand_and_allocation(case, group, passengers):
    payload = allocation_failed_payload(case, group, passengers, "ALLOCATION_FAILED")
    item = consume("allocation:failed", payload)
    assert (item.demand_urn, item.allocation_urn) == (payload["demandUrn"], payload["allocationUrn"])


def test_an_event_naming_another_airlines_case_makes_no_item(case, group, passengers):
    assert (
        consume("booking:failed", booking_failed_payload(case, group, passengers, "BOOKING_FAILED"), airline="LH")
        is None
    )
    assert not ReviewItem.objects.exists()


# --- SLA -------------------------------------------------------------------------------------------------------


def test_sla_due_time_is_the_airlines_setting_for_the_priority_else_the_default(case, group, passengers, settings):
    TenantSettings.objects.create(airline="IB", sla_low_minutes=30, sla_high_minutes=None)
    low = consume("allocation:failed", allocation_failed_payload(case, group, passengers, "POLICY_VIOLATION"))
    high = consume("allocation:failed", allocation_failed_payload(case, group, passengers, "ALLOCATION_FAILED"))
    medium = consume("booking:failed", booking_failed_payload(case, group, passengers, "PAYMENT_FAILED"))
    assert low.sla_due_at - low.created_at == dt.timedelta(minutes=30)
    assert (
        high.sla_due_at - high.created_at
        == dt.timedelta(minutes=settings.NEXA_REVIEW_SLA_HIGH_MINUTES)
        == (dt.timedelta(minutes=15))
    )
    assert medium.sla_due_at - medium.created_at == dt.timedelta(minutes=60)


def test_sla_defaults_come_from_settings(case, group, passengers, settings):
    settings.NEXA_REVIEW_SLA_LOW_MINUTES = 7
    item = consume("allocation:failed", allocation_failed_payload(case, group, passengers, "MIXED_TIER_GROUP"))
    assert item.sla_due_at - item.created_at == dt.timedelta(minutes=7)
