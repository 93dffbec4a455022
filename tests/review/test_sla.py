"""The SLA sweep: every breached unresolved item is escalated once per breach and pages the on-call through
the airline's webhook, signed with HMAC-SHA256 over timestamp + body, retried with backoff, every attempt
logged. A real HTTP receiver verifies the signature; time is moved by the test (``now=``), never slept."""

import datetime as dt
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db import connection
from django.utils import timezone

from audit.models import AuditEntry
from nexa.platform.auth import Principal
from nexa.platform.models import OutboxEvent, TenantSettings
from nexa.platform.roles import Role
from review import paging, selectors, services
from review.models import PageStatus, ReviewItem, ReviewPage
from tests.review.factories import ReviewItemFactory

pytestmark = pytest.mark.django_db

SECRET = "s3cret-of-ib"


class Receiver:
    """An on-call endpoint in its own thread: verifies each page's signature and answers the scripted
    statuses in turn (then 200)."""

    def __init__(self, secret: str = SECRET, statuses=()):
        self.secret, self.statuses, self.requests = secret, list(statuses), []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                valid = paging.verify(
                    secret=receiver.secret,
                    timestamp=self.headers.get(paging.TIMESTAMP_HEADER, ""),
                    body=body,
                    signature=self.headers.get(paging.SIGNATURE_HEADER, ""),
                    now=int(time.time()),
                )
                receiver.requests.append({"headers": dict(self.headers), "body": json.loads(body), "valid": valid})
                status = 401 if not valid else (receiver.statuses.pop(0) if receiver.statuses else 200)
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok" if status == 200 else b"nope")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/page"

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made = []

    def start(**kw) -> Receiver:
        made.append(Receiver(**kw))
        return made[-1]

    yield start
    for r in made:
        r.stop()


def webhook(url: str, secret: str = SECRET, airline: str = "IB"):
    TenantSettings.objects.update_or_create(
        airline=airline, defaults={"alert_webhook_url": url, "alert_webhook_secret": secret}
    )


def ago(**delta):
    return timezone.now() - dt.timedelta(**delta)


# --- the sweep -------------------------------------------------------------------------------------------------


def test_each_breach_escalates_once_and_pages_once():
    low = ReviewItemFactory(category="POLICY_VIOLATION", priority="LOW", sla_due_at=ago(seconds=1))
    high = ReviewItemFactory(priority="HIGH", sla_due_at=ago(minutes=3))
    not_due = ReviewItemFactory(priority="MEDIUM", sla_due_at=ago(seconds=-60))
    resolved = ReviewItemFactory(priority="LOW", sla_due_at=ago(hours=5), state="RESOLVED", resolution="NO_ACTION")
    foreign = ReviewItemFactory(case__airline="LH", airline="LH", priority="MEDIUM", sla_due_at=ago(seconds=5))

    assert services.review_sla_sweep() == [high.urn, foreign.urn, low.urn]
    assert services.review_sla_sweep() == []  # the same breaches: nothing more

    def stored(item):
        return ReviewItem.objects.get(pk=item.pk)

    assert (stored(low).priority, stored(low).state, stored(low).escalations) == ("MEDIUM", "ESCALATED", 1)
    assert (stored(high).priority, stored(high).state) == ("HIGH", "ESCALATED")
    assert stored(foreign).priority == "HIGH"
    assert (stored(not_due).state, stored(not_due).escalations) == ("OPEN", 0)
    assert (stored(resolved).state, stored(resolved).priority) == ("RESOLVED", "LOW")
    assert ReviewPage.objects.count() == 3
    assert {p.item_id: (p.priority_before, p.priority_after, p.trigger) for p in ReviewPage.objects.all()}[low.pk] == (
        "LOW",
        "MEDIUM",
        "SLA_BREACH",
    )
    entries = AuditEntry.objects.filter(action="review.sla_breached")
    assert entries.count() == 3 and {e.actor for e in entries} == {"urn:nexa:system:sla"}
    assert {e.airline for e in entries} == {"IB", "LH"}
    escalated = OutboxEvent.objects.filter(event="review:escalated")
    assert escalated.count() == 3
    # Each event leads its consumer to its page (the durable hand-off to the delivery task).
    assert {
        selectors.review_page_id_for(review_urn=e.payload["reviewUrn"], version=e.payload["version"]) for e in escalated
    } == {str(page.id) for page in ReviewPage.objects.all()}


def test_the_escalation_restarts_the_clock_so_the_next_breach_is_a_new_page():
    TenantSettings.objects.create(airline="IB", sla_medium_minutes=60)
    item = ReviewItemFactory(category="MIXED_TIER_GROUP", priority="LOW", sla_due_at=ago(seconds=1))
    now = timezone.now()
    services.review_sla_sweep(now=now)
    assert ReviewItem.objects.get(pk=item.pk).sla_due_at == now + dt.timedelta(minutes=60)

    assert services.review_sla_sweep(now=now + dt.timedelta(minutes=59)) == []
    assert services.review_sla_sweep(now=now + dt.timedelta(minutes=60, seconds=1)) == [item.urn]
    stored = ReviewItem.objects.get(pk=item.pk)
    assert (stored.priority, stored.escalations) == ("HIGH", 2)
    assert ReviewPage.objects.filter(item=item).count() == 2


def test_a_manual_escalation_pages_too():
    item = ReviewItemFactory(priority="MEDIUM")
    principal = Principal(airline="IB", role=Role.OPS_SUPERVISOR, operator_urn="urn:nexa:user:ana", subject="ana")
    services.review_item_escalate(principal=principal, review_urn=item.urn, reason="VIP")
    page = ReviewPage.objects.get(item=item)
    assert (page.trigger, page.priority_before, page.priority_after, page.status) == (
        "MANUAL",
        "MEDIUM",
        "HIGH",
        "PENDING",
    )


@pytest.mark.django_db(transaction=True)
def test_concurrent_sweeps_escalate_each_breached_item_once():
    items = [ReviewItemFactory(priority="LOW", sla_due_at=ago(seconds=n + 1)) for n in range(30)]
    barrier = threading.Barrier(3)
    results, errors = [], []

    def run():
        try:
            barrier.wait(timeout=30)
            results.append(services.review_sla_sweep())
        except BaseException as error:  # noqa: BLE001 - reported by the test
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    swept = [urn for result in results for urn in result]
    assert sorted(swept) == sorted(item.urn for item in items)  # each exactly once, across the sweeps
    assert set(ReviewItem.objects.values_list("escalations", flat=True)) == {1}
    assert ReviewPage.objects.count() == 30


# --- the page -----------------------------------------------------------------------------------------------------


def _one_page(**item_fields) -> ReviewPage:
    item = ReviewItemFactory(sla_due_at=ago(seconds=1), **item_fields)
    services.review_sla_sweep()
    return ReviewPage.objects.get(item=item)


def test_the_page_is_signed_and_the_receiver_verifies_it(receiver):
    on_call = receiver()
    webhook(on_call.url)
    page = _one_page(category="PAYMENT_FAILED", priority="MEDIUM")

    assert services.review_page_deliver(page_id=str(page.id)) is None
    [request] = on_call.requests
    assert request["valid"] is True
    body = request["body"]
    assert (body["type"], body["reviewUrn"], body["priority"], body["previousPriority"]) == (
        "review.sla_breached",
        page.item.urn,
        "HIGH",
        "MEDIUM",
    )
    assert body["pageId"] == str(page.id) == request["headers"]["X-Nexa-Page-Id"]
    page.refresh_from_db()
    assert (page.status, page.attempts) == (PageStatus.DELIVERED, 1)
    assert page.log[0]["status"] == 200 and page.log[0]["url"] == on_call.url and page.delivered_at is not None
    # Settled: another delivery of the same page sends nothing.
    assert services.review_page_deliver(page_id=str(page.id)) is None
    assert len(on_call.requests) == 1


def test_a_wrong_secret_is_refused_by_the_receiver_and_retried(receiver):
    on_call = receiver(secret="the-real-secret")
    webhook(on_call.url, secret="a-stale-secret")
    page = _one_page()
    assert services.review_page_deliver(page_id=str(page.id)) == 2.0
    assert on_call.requests[0]["valid"] is False
    page.refresh_from_db()
    assert (page.status, page.log[0]["status"]) == (PageStatus.PENDING, 401)


def test_failures_are_retried_with_backoff_and_every_attempt_is_logged(receiver):
    on_call = receiver(statuses=[503, 500])
    webhook(on_call.url)
    page = _one_page()
    waits = [services.review_page_deliver(page_id=str(page.id)) for _ in range(3)]
    assert waits == [2.0, 4.0, None]
    assert [r["valid"] for r in on_call.requests] == [True, True, True]
    page.refresh_from_db()
    assert page.status == PageStatus.DELIVERED
    assert [entry["status"] for entry in page.log] == [503, 500, 200]


def test_an_unreachable_webhook_fails_after_the_attempt_limit(settings):
    settings.NEXA_REVIEW_PAGE_MAX_ATTEMPTS = 2
    webhook("http://127.0.0.1:9/unreachable")  # discard port: connection refused
    page = _one_page()
    assert services.review_page_deliver(page_id=str(page.id)) == 2.0
    assert services.review_page_deliver(page_id=str(page.id)) is None
    page.refresh_from_db()
    assert (page.status, page.attempts) == (PageStatus.FAILED, 2)
    assert all(entry["status"] is None and entry["error"] for entry in page.log)


def test_no_webhook_configured_skips_the_page_and_says_so():
    page = _one_page()
    assert services.review_page_deliver(page_id=str(page.id)) is None
    page.refresh_from_db()
    assert (page.status, page.attempts, page.log[0]["error"]) == (PageStatus.SKIPPED, 0, "no alerting webhook")


def test_the_signature_covers_timestamp_and_body():
    now = int(time.time())
    signature = paging.sign(secret=SECRET, timestamp=now, body=b'{"a":1}')
    assert paging.verify(secret=SECRET, timestamp=str(now), body=b'{"a":1}', signature=signature, now=now)
    assert not paging.verify(secret=SECRET, timestamp=str(now), body=b'{"a":2}', signature=signature, now=now)
    assert not paging.verify(secret=SECRET, timestamp=str(now + 1), body=b'{"a":1}', signature=signature, now=now)
    assert not paging.verify(secret="other", timestamp=str(now), body=b'{"a":1}', signature=signature, now=now)
    old = paging.sign(secret=SECRET, timestamp=now - 600, body=b"{}")
    assert not paging.verify(secret=SECRET, timestamp=str(now - 600), body=b"{}", signature=old, now=now)


def test_pages_reach_the_delivery_task_on_the_sla_queue_through_the_outbox():
    from nexa.platform.outbox import _consumers_for
    from review import tasks

    assert (tasks.PAGE_TASK, "sla") in [(c.task_name, c.queue) for c in _consumers_for("review:escalated")]


def test_the_sweep_reads_the_partial_index_so_resolved_items_cost_nothing():
    case = ReviewItemFactory().case
    now = timezone.now()
    ReviewItem.objects.bulk_create(
        [
            ReviewItem(
                airline="IB", case=case, category="BOOKING_FAILED", priority="HIGH", state="RESOLVED",
                sla_due_at=now - dt.timedelta(minutes=n % 500 + 1), source_event="booking:failed",
                source_event_urn=f"urn:nexa:event:resolved-{n}",
            )
            for n in range(5_000)
        ]
    )  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE review_reviewitem")
    plan = services.breached_items(now=now)[:500].explain()
    assert "review_item_sla_open_idx" in plan, plan
