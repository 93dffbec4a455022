"""GET /v1/notifications/case/{case_urn} and POST /v1/notifications/{case_urn}/send."""

import json

import pytest

from audit.models import AuditEntry
from nexa.platform.models import OutboxEvent
from nexa.platform.roles import Role
from notifications.events import NOTIFICATION_QUEUED
from notifications.models import Notification, NotificationStatus
from tests.api_base import APIContractTests, RouteContract, assert_problem
from tests.cases.factories import CaseFactory, SubCaseFactory

LOG = "/v1/notifications/case/{case}"
SEND = "/v1/notifications/{case}/send"


def _notification(sub_case, **overrides) -> Notification:
    values = {
        "airline": sub_case.airline,
        "case": sub_case.case,
        "sub_case": sub_case,
        "channel": "EMAIL",
        "recipient": sub_case.email,
        "masked_recipient": "x***@example.com",
        "template": "meal_voucher",
        "language": "en",
        "status": NotificationStatus.SENT,
        "provider_message_id": "<id@notifications.nexa>",
        "attempts": 1,
        "idempotency_key": f"test:{sub_case.pk}:{Notification.objects.count()}",
        "requested_by": "urn:nexa:system:saga",
    }
    values.update(overrides)
    return Notification.objects.create(**values)


def _log_lists_only_own_case(response, objects):
    urns = [item["urn"] for item in response.json()["items"]]
    return urns == [objects["notification"].urn]


def _queued_for_the_case(response, objects):
    body = response.json()
    return body["notificationUrns"] == [item["urn"] for item in body["notifications"]] and {
        item["subCaseUrn"] for item in body["notifications"]
    } == {objects["sub_case"].urn}


class TestNotificationsAPIContract(APIContractTests):
    routes = (
        RouteContract("log", "GET", LOG, min_role=Role.AIRPORT_OPERATOR, check=_log_lists_only_own_case),
        RouteContract(
            "send",
            "POST",
            SEND,
            min_role=Role.AIRPORT_OPERATOR,
            expect_status=202,
            body={"channel": "EMAIL", "template": "meal_voucher"},
            audit_actions=("notification.queued",),
            check=_queued_for_the_case,
        ),
    )

    def make_objects(self, airline):
        case = CaseFactory(airline=airline)
        sub_case = SubCaseFactory(case=case)
        return {"case": case, "sub_case": sub_case, "notification": _notification(sub_case)}


pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(client_for):
    return client_for("IB", Role.AIRPORT_OPERATOR)


def test_log_shows_masked_recipient_only(operator):
    sub_case = SubCaseFactory(email="maria@example.com", phone="+34600123456")
    _notification(sub_case, masked_recipient="m***@example.com", recipient="maria@example.com")
    _notification(sub_case, channel="SMS", recipient="+34600123456", masked_recipient="+34******456")
    response = operator.get(LOG.format(case=sub_case.case.urn))
    assert response.status_code == 200
    raw = response.content.decode()
    assert "maria@example.com" not in raw and "+34600123456" not in raw
    items = response.json()["items"]
    assert [item["maskedRecipient"] for item in items] == ["+34******456", "m***@example.com"]  # newest first
    assert set(items[0]) == {
        "urn",
        "subCaseUrn",
        "channel",
        "maskedRecipient",
        "template",
        "language",
        "status",
        "reason",
        "providerMessageId",
        "attempts",
        "lastError",
        "createdAt",
        "updatedAt",
        "sentAt",
    }
    assert items[0]["subCaseUrn"] == sub_case.urn


def test_log_is_cursor_paginated_and_filters_status(operator):
    sub_case = SubCaseFactory()
    made = [_notification(sub_case) for _ in range(3)]
    failed = _notification(sub_case, status=NotificationStatus.FAILED, attempts=5, last_error="SMTP 451")
    path = LOG.format(case=sub_case.case.urn)

    first = operator.get(path, {"limit": 2}).json()
    assert first["hasMore"] is True
    second = operator.get(path, {"limit": 2, "cursor": first["nextCursor"]}).json()
    assert second["hasMore"] is False
    seen = [item["urn"] for item in first["items"] + second["items"]]
    assert sorted(seen) == sorted(n.urn for n in [*made, failed])

    only_failed = operator.get(path, {"status": "FAILED"}).json()["items"]
    assert [item["urn"] for item in only_failed] == [failed.urn]
    assert only_failed[0]["lastError"] == "SMTP 451"
    assert_problem(operator.get(path, {"status": "LOST"}), 400, "validation-error")


def test_send_to_all_skips_passengers_without_the_contact(operator):
    case = CaseFactory()
    with_phone = SubCaseFactory(case=case, phone="+34600111222")
    without_phone = SubCaseFactory(case=case, phone="")
    response = operator.post(SEND.format(case=case.urn), {"channel": "SMS", "template": "hotel_ready"}, format="json")
    assert response.status_code == 202, response.content
    by_sub_case = {item["subCaseUrn"]: item for item in response.json()["notifications"]}
    assert by_sub_case[with_phone.urn]["status"] == "QUEUED"
    assert by_sub_case[with_phone.urn]["maskedRecipient"] == "+34******222"
    assert by_sub_case[without_phone.urn]["status"] == "SKIPPED"
    assert by_sub_case[without_phone.urn]["reason"] == "No phone number on file."
    queued = OutboxEvent.objects.filter(event=NOTIFICATION_QUEUED)
    assert [event.payload["notificationUrn"] for event in queued] == [by_sub_case[with_phone.urn]["urn"]]
    assert "+34600111222" not in response.content.decode()


def test_send_to_chosen_sub_cases_only(operator):
    case = CaseFactory()
    chosen, other = SubCaseFactory(case=case), SubCaseFactory(case=case)
    response = operator.post(
        SEND.format(case=case.urn),
        {"subCaseUrns": [chosen.urn], "channel": "EMAIL", "template": "compensation_summary"},
        format="json",
    )
    assert response.status_code == 202
    assert [item["subCaseUrn"] for item in response.json()["notifications"]] == [chosen.urn]
    assert not Notification.objects.filter(sub_case=other).exists()


def test_whatsapp_without_opt_in_is_skipped(operator):
    sub_case = SubCaseFactory(phone="+34600123456")
    response = operator.post(
        SEND.format(case=sub_case.case.urn), {"channel": "WHATSAPP", "template": "hotel_ready"}, format="json"
    )
    [item] = response.json()["notifications"]
    assert (item["status"], item["reason"]) == ("SKIPPED", "The passenger has not opted in to WhatsApp.")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"channel": "EMAIL", "template": "no_such_template"}, "template"),
        ({"channel": "PIGEON", "template": "meal_voucher"}, "channel"),
        ({"template": "meal_voucher"}, "channel"),
        ({"channel": "EMAIL"}, "template"),
        ({"channel": "EMAIL", "template": "meal_voucher", "subCaseUrns": []}, "subCaseUrns"),
        ({"channel": "EMAIL", "template": "meal_voucher", "subCaseUrns": ["urn:nexa:subcase:nope"]}, "subCaseUrns[0]"),
    ],
)
def test_send_bad_requests_are_400(operator, body, field):
    sub_case = SubCaseFactory()
    response = operator.post(SEND.format(case=sub_case.case.urn), body, format="json")
    problem = assert_problem(response, 400, "validation-error")
    assert field in [error["field"] for error in problem["errors"]], problem
    assert Notification.objects.count() == 0
    assert not AuditEntry.objects.filter(action__startswith="notification.").exists()


def test_sub_case_of_another_case_or_airline_is_400_without_leaking(operator):
    case = CaseFactory()
    SubCaseFactory(case=case)
    elsewhere = SubCaseFactory()  # another case of the same airline
    foreign = SubCaseFactory(case=CaseFactory(airline="LH"))
    answers = []
    for sub_case in (elsewhere, foreign):
        response = operator.post(
            SEND.format(case=case.urn),
            {"subCaseUrns": [sub_case.urn], "channel": "EMAIL", "template": "meal_voucher"},
            format="json",
        )
        answers.append(assert_problem(response, 400, "validation-error")["errors"])
    assert answers[0] == answers[1] == [{"field": "subCaseUrns[0]", "message": "Not a sub-case of this case."}]


def test_send_replays_with_the_same_idempotency_key(operator):
    sub_case = SubCaseFactory()
    path = SEND.format(case=sub_case.case.urn)
    body = json.dumps({"channel": "EMAIL", "template": "meal_voucher"})
    headers = {"HTTP_IDEMPOTENCY_KEY": "0192a0f0-0000-4000-8000-00000000abcd"}
    first = operator.post(path, body, content_type="application/json", **headers)
    second = operator.post(path, body, content_type="application/json", **headers)
    assert first.status_code == second.status_code == 202
    assert second["Idempotent-Replayed"] == "true"
    assert first.json() == second.json()
    assert Notification.objects.count() == 1


# --- caps on manual sends (issue 9 §5: SMS cost pumping) ------------------------------------------------


def _send(client, case, **body):
    return client.post(SEND.format(case=case.urn), {"channel": "SMS", "template": "hotel_ready", **body}, format="json")


def test_a_send_to_more_passengers_than_the_cap_is_422_and_sends_nothing(operator, settings):
    settings.NEXA_NOTIFICATION_MANUAL_MAX_RECIPIENTS = 3
    case = CaseFactory()
    passengers = [SubCaseFactory(case=case, phone=f"+3460011122{index}") for index in range(4)]

    whole_manifest = assert_problem(_send(operator, case), 422, "unprocessable")
    assert whole_manifest["errors"] == [
        {
            "field": "subCaseUrns",
            "message": "At most 3 passengers per send; the case has 4: name them in batches in subCaseUrns.",
        }
    ]
    named = assert_problem(_send(operator, case, subCaseUrns=[p.urn for p in passengers]), 422, "unprocessable")
    assert named["errors"] == [{"field": "subCaseUrns", "message": "At most 3 passengers per send; 4 named."}]
    assert Notification.objects.count() == 0
    assert not OutboxEvent.objects.filter(event=NOTIFICATION_QUEUED).exists()

    # The same passenger named twice counts once; three passengers are within the cap.
    urns = [p.urn for p in passengers[:3]]
    response = _send(operator, case, subCaseUrns=[*urns, urns[0]])
    assert response.status_code == 202, response.content
    assert len(response.json()["notifications"]) == 3


def test_manual_sends_per_case_per_hour_are_capped_with_a_429_and_retry_after(operator, client_for, settings):
    settings.NEXA_NOTIFICATION_MANUAL_SENDS_PER_HOUR = 2
    case, other_case = CaseFactory(), CaseFactory()
    SubCaseFactory(case=case, phone="+34600111222")
    SubCaseFactory(case=other_case, phone="+34600111333")

    assert _send(operator, case).status_code == 202
    assert _send(operator, case).status_code == 202
    refused = _send(operator, case)
    body = assert_problem(refused, 429, "notification-send-limit")
    assert 3590 <= int(refused["Retry-After"]) <= 3600
    assert "At most 2 manual sends per case per hour" in body["detail"]
    assert Notification.objects.filter(case=case).count() == 2

    assert _send(operator, other_case).status_code == 202  # the budget is per case
    someone_else = client_for("IB", Role.OPS_SUPERVISOR, "urn:nexa:user:ib-someone-else")
    assert _send(someone_else, case).status_code == 429  # the budget is the case's, not the operator's


def test_refused_sends_do_not_use_up_the_hourly_budget(operator, settings):
    settings.NEXA_NOTIFICATION_MANUAL_SENDS_PER_HOUR = 1
    settings.NEXA_NOTIFICATION_MANUAL_MAX_RECIPIENTS = 1
    case = CaseFactory()
    first, second = SubCaseFactory(case=case), SubCaseFactory(case=case)
    assert_problem(_send(operator, case, template="no_such_template"), 400, "validation-error")
    assert_problem(_send(operator, case), 422, "unprocessable")  # two passengers, cap 1
    assert _send(operator, case, subCaseUrns=[first.urn]).status_code == 202
    assert_problem(_send(operator, case, subCaseUrns=[second.urn]), 429, "notification-send-limit")


@pytest.mark.django_db(transaction=True)
def test_concurrent_sends_never_exceed_the_hourly_budget(token_for, settings):
    """Eight operators send to the same case at once with a budget of three: exactly three are accepted
    (the check-and-take is one Redis script), the rest are 429 and wrote nothing."""
    import threading

    from django.db import connection
    from rest_framework.test import APIClient

    settings.NEXA_NOTIFICATION_MANUAL_SENDS_PER_HOUR = 3
    case = CaseFactory()
    SubCaseFactory(case=case, phone="+34600111222")
    start = threading.Barrier(8)
    statuses: list[int] = []

    def send(index: int) -> None:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for('IB', operator=f'urn:nexa:user:ib-racer-{index}')}")
        try:
            start.wait(timeout=10)
            statuses.append(_send(client, case).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(statuses) == [202] * 3 + [429] * 5
    assert Notification.objects.filter(case=case).count() == 3
