"""The notifications domain's events, captured from each service that publishes and checked against the
event registry (``tests.events.capture_events``): queueing is the internal ``notification:queued`` (no
room: the outbox hands it to the delivery task); a delivery accepted by the provider is the client event
``notification:dispatched`` to the case room, recipient masked."""

import pytest

from nexa.platform.auth import Principal
from nexa.platform.roles import Role
from notifications import services
from tests.cases.factories import SubCaseFactory
from tests.events import capture_events

pytestmark = pytest.mark.django_db

SAGA = Principal(airline="IB", role=Role.ADMIN, operator_urn="urn:nexa:system:saga", subject="system:saga")
VOUCHER = {"amount": "25.00", "currency": "EUR", "voucherCode": "MEAL-7Q2K", "expiresAt": "2026-11-23 02:00"}


def test_queueing_is_internal_and_dispatch_goes_to_the_case_room_masked(mailbox):
    sub_case = SubCaseFactory(email="maria@example.com", phone="", language="en")
    with capture_events() as events:
        result = services.notification_send_for_subcase(
            principal_or_system=SAGA,
            sub_case_urn=sub_case.urn,
            template="meal_voucher",
            context=VOUCHER,
            idempotency_key="urn:nexa:step:0192a0f0-0000-7000-8000-000000000009",
        )
    [notification] = result["notifications"]
    assert events.names() == ["notification:queued"]
    queued = events.one("notification:queued")
    assert queued.payload == {"notificationUrn": notification["urn"]} and queued.rooms == []
    assert events.client() == []

    with capture_events() as events:
        services.notification_deliver(notification_urn=notification["urn"])
    dispatched = events.one("notification:dispatched")
    assert dispatched.payload == {"caseUrn": sub_case.case.urn, "channel": "EMAIL", "recipient": "m***@example.com"}
    assert dispatched.rooms == [f"case:{sub_case.case.urn}"]
