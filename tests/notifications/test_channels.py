"""SMS and WhatsApp through the adapters against the REAL simulator process (delivery in-process)."""

import pytest

from nexa.platform.auth import Principal
from nexa.platform.models import OutboxEvent
from nexa.platform.roles import Role
from notifications import services
from notifications.events import NOTIFICATION_DISPATCHED
from notifications.models import Notification, NotificationStatus
from notifications.selectors import notifications_awaiting_resend
from tests.cases.factories import SubCaseFactory

pytestmark = pytest.mark.django_db

SAGA = Principal(airline="IB", role=Role.ADMIN, operator_urn="urn:nexa:system:saga", subject="system:saga")
OPERATOR = Principal(airline="IB", role=Role.AIRPORT_OPERATOR, operator_urn="urn:nexa:user:ib-op", subject="op")
HOTEL = {"hotelName": "Hotel Barajas", "hotelAddress": "Av. de Logroño 305", "confirmationCode": "HB-4471"}


@pytest.fixture
def sms(simulator_control, settings):
    settings.NEXA_NOTIFICATION_MAX_ATTEMPTS = 3
    return simulator_control.sms


def opt_in(sub_case, opted_in=True):
    services.whatsapp_opt_in_record(principal=OPERATOR, sub_case_urn=sub_case.urn, opted_in=opted_in, source="kiosk")


def send(sub_case, *, template="hotel_ready", context=HOTEL, key="urn:nexa:step:0192a0f0-0000-7000-8000-0000000000aa"):
    return services.notification_send_for_subcase(
        principal_or_system=SAGA, sub_case_urn=sub_case.urn, template=template, context=context, idempotency_key=key
    )


def only(result, channel):
    [item] = [item for item in result["notifications"] if item["channel"] == channel]
    return item


def test_sms_is_sent_in_the_passengers_language(sms):
    sub_case = SubCaseFactory(first_name="Pablo", email="", phone="+34600123456", language="es")
    item = only(send(sub_case), "SMS")
    assert services.notification_deliver(notification_urn=item["urn"]).status == "SENT"

    [entry] = sms.entries("sms")
    assert entry["to"] == "+34600123456"
    assert entry["body"].startswith(f"{sub_case.case.flight_number}: Pablo, su habitación en Hotel Barajas")
    assert "ref. HB-4471" in entry["body"]
    notification = Notification.objects.get()
    assert notification.provider_message_id == entry["messageId"]
    [event] = OutboxEvent.objects.filter(event=NOTIFICATION_DISPATCHED)
    assert event.payload == {"caseUrn": sub_case.case.urn, "channel": "SMS", "recipient": "+34******456"}


def test_sms_provider_errors_retry_then_fail_and_are_listed_for_resend(sms):
    sms.error_rate(1.0)
    sub_case = SubCaseFactory(email="", phone="+34600123456")
    item = only(send(sub_case), "SMS")
    outcomes = [services.notification_deliver(notification_urn=item["urn"]) for _ in range(3)]
    assert [(o.status, o.retry_in) for o in outcomes] == [("QUEUED", 1.0), ("QUEUED", 2.0), ("FAILED", None)]
    notification = Notification.objects.get()
    assert notification.attempts == 3
    assert notification.status == NotificationStatus.FAILED
    assert "+34600123456" not in notification.last_error
    assert sms.request_count() == 3
    assert sms.entries("sms") == []
    assert list(notifications_awaiting_resend(principal=OPERATOR)) == [notification]
    assert not OutboxEvent.objects.filter(event=NOTIFICATION_DISPATCHED).exists()

    # once the provider recovers, an operator resends it by hand
    sms.error_rate(0.0)
    [resent] = services.notifications_send_manual(
        principal=OPERATOR, case=sub_case.case, sub_case_urns=[sub_case.urn], channel="SMS", template="hotel_ready"
    )
    assert services.notification_deliver(notification_urn=resent.urn).status == "SENT"
    assert len(sms.entries("sms")) == 1
    assert "Hotel Barajas" in sms.entries("sms")[0]["body"]


def test_sms_refused_by_the_provider_fails_at_once(sms):
    sms.refuse({"+34600999888": "blocked_number"})
    sub_case = SubCaseFactory(email="", phone="+34600999888")
    item = only(send(sub_case), "SMS")
    outcome = services.notification_deliver(notification_urn=item["urn"])
    assert (outcome.status, outcome.retry_in) == ("FAILED", None)
    notification = Notification.objects.get()
    assert notification.attempts == 1
    assert "blocked_number" in notification.last_error
    assert "+34600999888" not in notification.last_error


def test_whatsapp_replaces_sms_for_an_opted_in_passenger(sms):
    sub_case = SubCaseFactory(first_name="Ana", email="ana@example.com", phone="+34600123456", language="es")
    opt_in(sub_case)
    result = send(sub_case)
    assert sorted(item["channel"] for item in result["notifications"]) == ["EMAIL", "WHATSAPP"]
    item = only(result, "WHATSAPP")
    assert services.notification_deliver(notification_urn=item["urn"]).status == "SENT"
    [entry] = sms.entries("whatsapp")
    assert entry["template"] == "hotel_voucher"
    assert entry["language"] == "es"
    assert entry["parameters"] == ["Ana", "Hotel Barajas", "HB-4471"]
    assert sms.entries("sms") == []
    event = OutboxEvent.objects.get(event=NOTIFICATION_DISPATCHED)
    assert event.payload["channel"] == "WHATSAPP"
    assert event.payload["recipient"] == "+34******456"


def test_whatsapp_refused_without_opt_in(sms):
    sub_case = SubCaseFactory(email="", phone="+34600123456")
    opt_in(sub_case, opted_in=False)  # a withdrawn consent counts as none
    [item] = services.notifications_send_manual(
        principal=OPERATOR, case=sub_case.case, sub_case_urns=None, channel="WHATSAPP", template="hotel_ready"
    )
    assert (item.status, item.reason) == ("SKIPPED", "The passenger has not opted in to WhatsApp.")
    # the saga falls back to SMS for the same passenger
    assert [i["channel"] for i in send(sub_case)["notifications"]] == ["SMS"]
    assert sms.entries("whatsapp") == []


def test_whatsapp_refused_for_a_template_without_an_approved_version(sms):
    sub_case = SubCaseFactory(email="", phone="+34600123456")
    opt_in(sub_case)
    [item] = services.notifications_send_manual(
        principal=OPERATOR, case=sub_case.case, sub_case_urns=None, channel="WHATSAPP", template="meal_voucher"
    )
    assert (item.status, item.reason) == ("SKIPPED", "Template 'meal_voucher' has no approved WhatsApp version.")
    assert [i["channel"] for i in send(sub_case, template="meal_voucher", context={})["notifications"]] == ["SMS"]


def test_whatsapp_template_refused_by_the_provider_fails_without_retry(sms):
    sms.approve_templates(["disruption_notice"])  # hotel_voucher withdrawn at the provider
    sub_case = SubCaseFactory(email="", phone="+34600123456")
    opt_in(sub_case)
    item = only(send(sub_case), "WHATSAPP")
    outcome = services.notification_deliver(notification_urn=item["urn"])
    assert (outcome.status, outcome.retry_in) == ("FAILED", None)
    assert "template_not_approved" in Notification.objects.get().last_error
    assert sms.entries("whatsapp") == []


def test_open_circuit_waits_for_the_breaker(sms, settings):
    from nexa.platform.breakers import breaker_reset

    settings.NEXA_BREAKER_FAIL_MAX = 1
    settings.NEXA_NOTIFICATION_MAX_ATTEMPTS = 5
    sms.error_rate(1.0)
    sub_case = SubCaseFactory(email="", phone="+34600123456")
    item = only(send(sub_case), "SMS")
    services.notification_deliver(notification_urn=item["urn"])  # the failure that opens the circuit
    requests = sms.request_count()
    outcome = services.notification_deliver(notification_urn=item["urn"])
    assert (outcome.status, outcome.retry_in) == ("QUEUED", services.BREAKER_RETRY_SECONDS)
    assert sms.request_count() == requests  # nothing went through the open breaker
    assert "circuit" in Notification.objects.get().last_error
    breaker_reset()
