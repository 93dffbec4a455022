"""``outbox.publish_many`` (the SLA sweep's batch): the same checks as ``publish``, one row per event in the
given order, nothing written when one event is bad, and every row relayed after commit."""

import pytest
from django.db import transaction

from nexa.platform import outbox
from nexa.platform.events import EventPayloadInvalid
from nexa.platform.models import OutboxEvent
from nexa.platform.urns import format_urn, new_id
from review import events as review_events

pytestmark = pytest.mark.django_db


def _payload(version: int) -> dict:
    return {
        "reviewUrn": format_urn("review", new_id()),
        "caseUrn": format_urn("case", new_id()),
        "category": "BOOKING_FAILED",
        "priority": "HIGH",
        "state": "ESCALATED",
        "assignedTo": None,
        "resolution": None,
        "slaDueAt": "2026-12-01T06:00:00Z",
        "version": version,
    }


def _events(count: int) -> list[tuple]:
    return [(review_events.REVIEW_ESCALATED, _payload(n + 1), ["case:x"], "IB") for n in range(count)]


def test_one_row_per_event_in_order():
    with transaction.atomic():
        rows = outbox.publish_many(_events(3))
    stored = list(OutboxEvent.objects.filter(pk__in=[row.pk for row in rows]).order_by("created_at", "pk"))
    assert [row.payload["version"] for row in stored] == [1, 2, 3]
    assert {(row.event, row.airline, tuple(row.rooms)) for row in stored} == {("review:escalated", "IB", ("case:x",))}


@pytest.mark.django_db(transaction=True)  # a real autocommit connection: no test transaction around it
def test_refused_outside_a_transaction_and_nothing_written():
    with pytest.raises(outbox.PublishOutsideTransaction):
        outbox.publish_many(_events(2))
    assert not OutboxEvent.objects.exists()


def test_one_bad_event_refuses_the_batch():
    bad = (review_events.REVIEW_ESCALATED, {**_payload(2), "version": "two"}, ["case:x"], "IB")
    with pytest.raises(EventPayloadInvalid), transaction.atomic():
        outbox.publish_many([*_events(1), bad])
    assert not OutboxEvent.objects.exists()


def test_an_empty_batch_writes_nothing():
    with transaction.atomic():
        assert outbox.publish_many([]) == []
    assert not OutboxEvent.objects.exists()
