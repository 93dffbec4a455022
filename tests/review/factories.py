"""Factories and helpers of the review tests: items as the consumers make them, and the failure events'
deliveries exactly as the outbox hands them to a consumer task."""

import datetime as dt
import uuid

import factory
from django.utils import timezone

from cases.models import SubCaseStatus
from nexa.platform.outbox import Delivery, event_urn
from nexa.platform.urns import format_urn, new_id
from review.models import ReviewCategory, ReviewItem, ReviewPriority
from tests.cases.factories import CaseFactory, PassengerGroupFactory, SubCaseFactory


class ReviewItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ReviewItem

    case = factory.SubFactory(CaseFactory)
    airline = factory.SelfAttribute("case.airline")
    category = ReviewCategory.BOOKING_FAILED
    priority = ReviewPriority.HIGH
    reason = "every attempted hotel refused"
    sla_due_at = factory.LazyFunction(lambda: timezone.now() + dt.timedelta(minutes=15))
    source_event = "booking:failed"
    source_event_urn = factory.LazyFunction(lambda: format_urn("event", new_id()))


def item_with_subcases_in_review(airline: str = "IB", *, passengers: int = 2, **item_fields) -> ReviewItem:
    """A case whose group's passengers are in MANUAL_REVIEW, and the item naming them."""
    case = CaseFactory(airline=airline)
    group = PassengerGroupFactory(case=case, airline=airline)
    subs = [
        SubCaseFactory(case=case, airline=airline, group=group, status=SubCaseStatus.MANUAL_REVIEW)
        for _ in range(passengers)
    ]
    return ReviewItemFactory(
        case=case,
        airline=airline,
        affected_groups=[group.label],
        affected_group_urns=[group.urn],
        affected_subcase_urns=[sub.urn for sub in subs],
        **item_fields,
    )


def delivery(event: str, payload: dict, *, airline: str = "IB", event_id: str | None = None) -> dict:
    """The keyword arguments a consumer task receives, built by the outbox's own Delivery (so the shape is
    the relay's: ``event_id`` is the event URN, ``urn:nexa:event:<uuid>``)."""
    return Delivery(
        event_id=event_id or event_urn(uuid.uuid4()),
        event=event,
        payload=payload,
        rooms=[f"case:{payload.get('caseUrn')}"],
        sequence=1,
        airline=airline,
        correlation_urn=format_urn("correlation", new_id()),
    ).as_kwargs()
