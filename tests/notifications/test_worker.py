"""End to end with a REAL Celery worker: outbox → notifications queue → SMTP server / SMS simulator."""

import time

import pytest

from nexa.platform.auth import Principal
from nexa.platform.roles import Role
from notifications import services
from notifications.models import Notification, NotificationStatus
from tests.cases.factories import SubCaseFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

SAGA = Principal(airline="IB", role=Role.ADMIN, operator_urn="urn:nexa:system:saga", subject="system:saga")


def wait_for(condition, *, timeout=30.0, worker=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"condition not met in {timeout}s" + (f"\n{worker.log_tail()}" if worker else ""))


def test_saga_notification_is_emailed_by_the_worker(celery_worker_process, smtp_server, simulator_control):
    smtp_server.clear()
    sub_case = SubCaseFactory(first_name="Elena", email="elena@example.com", phone="", language="es")
    result = services.notification_send_for_subcase(
        principal_or_system=SAGA,
        sub_case_urn=sub_case.urn,
        template="compensation_summary",
        context={"items": [{"type": "CASH", "amount": "250.00", "currency": "EUR"}]},
        idempotency_key="urn:nexa:step:0192a0f0-0000-7000-8000-0000000000e1",
    )
    [item] = result["notifications"]
    [mail] = wait_for(lambda: smtp_server.to("elena@example.com"), worker=celery_worker_process)
    assert mail.subject == f"Vuelo {sub_case.case.flight_number}: su compensación"
    assert "Hola Elena:" in mail.text
    assert "- Compensación económica: 250.00 EUR" in mail.text
    notification = wait_for(
        lambda: Notification.objects.filter(status=NotificationStatus.SENT).first(), worker=celery_worker_process
    )
    assert notification.urn == item["urn"]
    assert notification.attempts == 1


def test_worker_retries_sms_then_fails_and_the_log_lists_it(celery_worker_process, simulator_control, client_for):
    simulator_control.sms.error_rate(1.0)
    sub_case = SubCaseFactory(email="", phone="+34600123456")
    [item] = services.notification_send_for_subcase(
        principal_or_system=SAGA,
        sub_case_urn=sub_case.urn,
        template="hotel_ready",
        context={"hotelName": "Hotel Barajas"},
        idempotency_key="urn:nexa:step:0192a0f0-0000-7000-8000-0000000000e2",
    )["notifications"]
    assert item["channel"] == "SMS"
    # NEXA_NOTIFICATION_MAX_ATTEMPTS=3 in the worker: attempts after 0 s, 1 s, 2 s of backoff
    failed = wait_for(
        lambda: Notification.objects.filter(status=NotificationStatus.FAILED).first(), worker=celery_worker_process
    )
    assert failed.attempts == 3
    assert simulator_control.sms.request_count() == 3

    operator = client_for("IB", Role.AIRPORT_OPERATOR)
    log = operator.get(f"/v1/notifications/case/{sub_case.case.urn}", {"status": "FAILED"}).json()["items"]
    assert [(row["urn"], row["attempts"], row["maskedRecipient"]) for row in log] == [(item["urn"], 3, "+34******456")]

    simulator_control.sms.error_rate(0.0)
    response = operator.post(
        f"/v1/notifications/{sub_case.case.urn}/send", {"channel": "SMS", "template": "hotel_ready"}, format="json"
    )
    assert response.status_code == 202
    [resent_urn] = response.json()["notificationUrns"]
    wait_for(lambda: simulator_control.sms.entries("sms"), worker=celery_worker_process)
    resent = wait_for(
        lambda: Notification.objects.filter(status=NotificationStatus.SENT).first(), worker=celery_worker_process
    )
    assert resent.urn == resent_urn
    assert "Hotel Barajas" in simulator_control.sms.entries("sms")[0]["body"]
