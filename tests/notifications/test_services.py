"""notification_send_for_subcase / notification_deliver in-process, email to a REAL SMTP server."""

import json

import pytest

from audit.models import AuditEntry
from nexa.platform.auth import Principal
from nexa.platform.models import OutboxEvent
from nexa.platform.problems import Problem
from nexa.platform.roles import Role
from notifications import services
from notifications.events import NOTIFICATION_DISPATCHED, NOTIFICATION_QUEUED
from notifications.models import Notification, NotificationStatus
from notifications.selectors import notifications_awaiting_resend
from tests.cases.factories import SubCaseFactory

pytestmark = pytest.mark.django_db

SAGA = Principal(airline="IB", role=Role.ADMIN, operator_urn="urn:nexa:system:saga", subject="system:saga")
VOUCHER = {"amount": "25.00", "currency": "EUR", "voucherCode": "MEAL-7Q2K", "expiresAt": "2026-11-23 02:00"}


def send(sub_case, *, template="meal_voucher", context=None, key="urn:nexa:step:0192a0f0-0000-7000-8000-000000000001"):
    return services.notification_send_for_subcase(
        principal_or_system=SAGA,
        sub_case_urn=sub_case.urn,
        template=template,
        context=VOUCHER if context is None else context,
        idempotency_key=key,
    )


def deliver_all(result) -> list[services.DeliveryOutcome]:
    return [services.notification_deliver(notification_urn=item["urn"]) for item in result["notifications"]]


def test_email_in_english_reaches_the_smtp_server(mailbox):
    sub_case = SubCaseFactory(first_name="Maria", email="maria@example.com", phone="", language="en")
    result = send(sub_case)
    assert [item["channel"] for item in result["notifications"]] == ["EMAIL"]
    assert result["notifications"][0]["maskedRecipient"] == "m***@example.com"

    assert [outcome.status for outcome in deliver_all(result)] == ["SENT"]

    [mail] = mailbox.received
    assert mail.envelope_to == ["maria@example.com"]
    assert mail.subject == f"Flight {sub_case.case.flight_number}: your meal voucher"
    assert "Hello Maria," in mail.text
    assert "Voucher: MEAL-7Q2K" in mail.text
    assert "Amount: 25.00 EUR" in mail.text
    assert "<strong>MEAL-7Q2K</strong>" in mail.html
    assert mail.message["From"] == "Nexa <no-reply@nexa.test>"
    notification = Notification.objects.get()
    assert notification.status == NotificationStatus.SENT
    assert notification.attempts == 1
    assert notification.sent_at is not None
    assert mail.message["Message-ID"] == notification.provider_message_id
    assert mail.message["X-Nexa-Notification"].strip() == notification.urn  # folded: a long header


def test_email_in_spanish_for_a_spanish_speaking_passenger(mailbox):
    sub_case = SubCaseFactory(first_name="José", email="jose@example.es", phone="", language="es-ES")
    deliver_all(send(sub_case))
    [mail] = mailbox.to("jose@example.es")
    assert mail.subject == f"Vuelo {sub_case.case.flight_number}: su vale de comida"
    assert "Hola José:" in mail.text
    assert "Importe: 25.00 EUR" in mail.text
    assert "Válido hasta: 2026-11-23 02:00" in mail.text
    assert 'lang="es"' in mail.html
    assert Notification.objects.get().language == "es"


def test_unsupported_language_falls_back_to_english(mailbox):
    sub_case = SubCaseFactory(email="anne@example.fr", phone="", language="fr")
    deliver_all(send(sub_case, template="hotel_ready", context={"hotelName": "Hotel Barajas & Spa"}))
    [mail] = mailbox.received
    assert mail.subject.endswith("your hotel room is booked")
    assert "Hotel: Hotel Barajas & Spa" in mail.text  # plain text is not HTML-escaped
    assert "Hotel Barajas &amp; Spa" in mail.html  # HTML is
    assert Notification.objects.get().language == "en"


def test_compensation_summary_lists_the_items(mailbox):
    sub_case = SubCaseFactory(email="ana@example.com", phone="", language="es")
    items = [
        {"type": "MEAL", "amount": "25.00", "currency": "EUR"},
        {"type": "CASH", "amount": "250.00", "currency": "EUR"},
        {"type": "TRANSPORT", "provider": "UBER", "etaMinutes": 12},
    ]
    deliver_all(send(sub_case, template="compensation_summary", context={"items": items}))
    [mail] = mailbox.received
    assert "- Vale de comida: 25.00 EUR" in mail.text
    assert "- Compensación económica: 250.00 EUR" in mail.text
    assert "- Transporte (UBER), llega en unos 12 min" in mail.text


def test_same_idempotency_key_sends_once(mailbox):
    sub_case = SubCaseFactory(email="once@example.com", phone="")
    first = send(sub_case)
    second = send(sub_case)
    assert first == second
    assert Notification.objects.count() == 1
    assert OutboxEvent.objects.filter(event=NOTIFICATION_QUEUED).count() == 1
    assert AuditEntry.objects.filter(action="notification.queued").count() == 1

    deliver_all(first)
    deliver_all(second)  # a redelivered task finds it SENT and does nothing
    assert len(mailbox.received) == 1
    assert Notification.objects.get().attempts == 1
    assert send(sub_case, key="urn:nexa:step:0192a0f0-0000-7000-8000-000000000002") != first
    assert Notification.objects.count() == 2


def test_dispatched_event_and_audit_carry_no_personal_data(mailbox):
    sub_case = SubCaseFactory(first_name="Lucia", last_name="Perez", email="lucia@example.com", phone="+34600123456")
    result = send(sub_case, template="compensation_summary", context={"items": []})
    # email + SMS (no WhatsApp opt-in); deliver the email only: SMS needs the simulator
    email = next(item for item in result["notifications"] if item["channel"] == "EMAIL")
    services.notification_deliver(notification_urn=email["urn"])

    [event] = OutboxEvent.objects.filter(event=NOTIFICATION_DISPATCHED)
    assert event.payload == {"caseUrn": sub_case.case.urn, "channel": "EMAIL", "recipient": "l***@example.com"}
    assert event.rooms == [f"case:{sub_case.case.urn}"]  # the case room only (subscribers)
    everything = json.dumps(
        [
            list(OutboxEvent.objects.values("payload", "rooms")),
            list(AuditEntry.objects.values("reason", "before", "after", "entity_urn")),
        ],
        default=str,
    )
    for personal in ("lucia@example.com", "+34600123456", "600123456", "Lucia", "Perez"):
        assert personal not in everything
    sms = next(item for item in result["notifications"] if item["channel"] == "SMS")
    assert sms["maskedRecipient"] == "+34******456"


def test_passenger_without_contact_is_skipped_with_reason(mailbox):
    sub_case = SubCaseFactory(email="", phone="")
    result = send(sub_case)
    [item] = result["notifications"]
    assert item["status"] == "SKIPPED"
    assert item["reason"] == "No email address on file."
    assert OutboxEvent.objects.filter(event=NOTIFICATION_QUEUED).count() == 0
    assert AuditEntry.objects.filter(action="notification.skipped", entity_urn=item["urn"]).exists()
    assert services.notification_deliver(notification_urn=item["urn"]).status == "SKIPPED"
    assert mailbox.received == []


def test_unknown_template_is_a_400_problem():
    sub_case = SubCaseFactory()
    with pytest.raises(Problem) as raised:
        send(sub_case, template="no_such_template")
    assert raised.value.status_code == 400
    assert Notification.objects.count() == 0


def test_another_airlines_sub_case_is_not_found():
    foreign = SubCaseFactory(case__airline="LH")
    with pytest.raises(Problem) as raised:
        send(foreign)
    assert raised.value.status_code == 404


def test_smtp_temporary_failure_retries_then_fails_and_is_listed_for_resend(mailbox):
    sub_case = SubCaseFactory(email="tempfail@example.com", phone="")
    [item] = send(sub_case)["notifications"]

    first = services.notification_deliver(notification_urn=item["urn"])
    assert first.status == "QUEUED"
    assert first.retry_in == 1.0
    second = services.notification_deliver(notification_urn=item["urn"])
    assert (second.status, second.retry_in) == ("QUEUED", 2.0)
    third = services.notification_deliver(notification_urn=item["urn"])  # NEXA_NOTIFICATION_MAX_ATTEMPTS = 3
    assert (third.status, third.retry_in) == ("FAILED", None)

    notification = Notification.objects.get()
    assert notification.attempts == 3
    assert "451" in notification.last_error
    assert "tempfail@example.com" not in notification.last_error
    assert list(notifications_awaiting_resend(principal=SAGA, case=sub_case.case)) == [notification]
    failed = AuditEntry.objects.get(action="notification.failed", entity_urn=notification.urn)
    assert failed.actor == "urn:nexa:system:worker"
    assert not OutboxEvent.objects.filter(event=NOTIFICATION_DISPATCHED).exists()
    assert mailbox.received == []


def test_smtp_permanent_refusal_fails_at_once(mailbox):
    sub_case = SubCaseFactory(email="reject-me@example.com", phone="")
    [item] = send(sub_case)["notifications"]
    outcome = services.notification_deliver(notification_urn=item["urn"])
    assert (outcome.status, outcome.retry_in) == ("FAILED", None)
    notification = Notification.objects.get()
    assert notification.attempts == 1
    assert "550" in notification.last_error


def test_unreachable_smtp_server_is_transient(mailbox, settings):
    from tests.fixtures import free_port
    from tests.notifications.conftest import smtp_mailers

    settings.MAILERS = smtp_mailers("127.0.0.1", free_port())  # nothing listens there
    sub_case = SubCaseFactory(email="someone@example.com", phone="")
    [item] = send(sub_case)["notifications"]
    outcome = services.notification_deliver(notification_urn=item["urn"])
    assert outcome.status == "QUEUED"
    assert outcome.retry_in is not None
    assert "ConnectionRefusedError" in Notification.objects.get().last_error


def test_manual_resend_repeats_the_last_values(mailbox):
    sub_case = SubCaseFactory(email="again@example.com", phone="")
    deliver_all(send(sub_case))
    principal = Principal(airline="IB", role=Role.AIRPORT_OPERATOR, operator_urn="urn:nexa:user:ib-op", subject="op")
    [resent] = services.notifications_send_manual(
        principal=principal, case=sub_case.case, sub_case_urns=None, channel="EMAIL", template="meal_voucher"
    )
    assert resent.context == VOUCHER
    services.notification_deliver(notification_urn=resent.urn)
    assert [mail.subject for mail in mailbox.received] == [mailbox.received[0].subject] * 2
    assert "MEAL-7Q2K" in mailbox.received[1].text
    audit = AuditEntry.objects.get(entity_urn=resent.urn, action="notification.queued")
    assert audit.actor == "urn:nexa:user:ib-op"
    assert audit.reason == "Manual send"


def test_purge_forgets_full_recipients_and_keeps_the_masked_log(mailbox):
    sub_case = SubCaseFactory(email="gone@example.com", phone="+34600123456")
    result = send(sub_case)
    email = next(item for item in result["notifications"] if item["channel"] == "EMAIL")
    services.notification_deliver(notification_urn=email["urn"])

    assert services.notification_recipients_purge(case=sub_case.case) == 2
    assert set(Notification.objects.values_list("recipient", flat=True)) == {""}
    assert set(Notification.objects.values_list("masked_recipient", flat=True)) == {"g***@example.com", "+34******456"}
    sms = Notification.objects.get(channel="SMS")
    assert sms.status == NotificationStatus.FAILED  # queued, but there is nobody left to send it to
    assert services.notification_deliver(notification_urn=sms.urn).status == "FAILED"
