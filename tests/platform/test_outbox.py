"""The transactional outbox (ARCHITECTURE §3.10) against real PostgreSQL, Redis and a real Celery worker."""

import json
import subprocess
import sys
import threading
import time
import uuid
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.db.models.functions import Now

from nexa.celery import app as celery_app
from nexa.platform import outbox
from nexa.platform.context import bound_context
from nexa.platform.models import OutboxEvent
from nexa.platform.redis import get_redis
from tests.platform import outbox_consumers as consumers

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

DEADLINE = 20.0


def wait_for(predicate, *, timeout: float = DEADLINE, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def recorded(name: str) -> list[dict]:
    return [json.loads(item) for item in get_redis().lrange(consumers.log_key(name), 0, -1)]


def recorded_for(name: str, event_id: str) -> list[dict]:
    return [item for item in recorded(name) if item["event_id"] == event_id]


def drain_worker() -> None:
    """Wait until the worker has run everything queued so far on the default queue (FIFO, one consumer)."""
    token = uuid.uuid4().hex
    celery_app.send_task(consumers.MARK_TASK, kwargs={"token": token}, queue="default")
    wait_for(
        lambda: token.encode() in get_redis().lrange(consumers.log_key("marks"), 0, -1),
        what="the worker to drain its queue",
    )


def wait_delivered(name: str, event_ids: list[str]) -> dict[str, dict]:
    """Wait until the consumer of ``name`` got every event once; returns them by id, checking no duplicates."""
    wanted = set(event_ids)
    wait_for(lambda: wanted <= {item["event_id"] for item in recorded(name)}, what=f"{len(wanted)} deliveries")
    drain_worker()
    got = [item for item in recorded(name) if item["event_id"] in wanted]
    assert len(got) == len(wanted), f"duplicate deliveries: {got}"
    return {item["event_id"]: item for item in got}


@pytest.fixture(autouse=True)
def test_consumers(celery_worker_process):
    """Register the test consumers in this process (the worker registers them at import) with clean logs."""
    redis = get_redis()
    keys = redis.keys(consumers.log_key("*"))
    if keys:
        redis.delete(*keys)
    consumers.register()
    yield celery_worker_process
    consumers.unregister()


@pytest.fixture
def add_sink():
    added = []

    def add(sink):
        outbox.register_sink(sink)
        added.append(sink)
        return sink

    yield add
    for sink in added:
        outbox.unregister_sink(sink)


def undelivered_rows(count: int, event: str = consumers.RECORDED_EVENT) -> list[OutboxEvent]:
    """Committed rows no dispatcher ran for (as after a crash between commit and dispatch)."""
    return OutboxEvent.objects.bulk_create(
        [OutboxEvent(event=event, payload={"n": n}, rooms=["airline:IB"], airline="IB") for n in range(count)]
    )


def test_publish_outside_a_transaction_is_refused():
    with pytest.raises(outbox.PublishOutsideTransaction):
        outbox.publish(consumers.RECORDED_EVENT, {}, [])
    assert not OutboxEvent.objects.exists()


def test_publish_refuses_what_is_not_plain_json():
    with transaction.atomic():
        with pytest.raises(TypeError, match="JSON"):
            outbox.publish(consumers.RECORDED_EVENT, {"row": object()}, [])
        with pytest.raises(TypeError, match="rooms"):
            outbox.publish(consumers.RECORDED_EVENT, {}, "case:x")
    assert not OutboxEvent.objects.exists()


def test_committed_event_reaches_the_worker_once_with_its_sequence():
    correlation = f"urn:nexa:correlation:{uuid.uuid4()}"
    case_urn = f"urn:nexa:case:{uuid.uuid4()}"
    with bound_context(correlation_urn=correlation), transaction.atomic():
        row = outbox.publish(
            consumers.RECORDED_EVENT, {"caseUrn": case_urn, "status": "OPEN"}, [f"case:{case_urn}"], airline="IB"
        )
        event_id = outbox.event_urn(row.pk)
        # Nothing leaves before commit.
        assert recorded_for(consumers.RECORDED_EVENT, event_id) == []

    assert outbox.flush_pending()  # the process's background relay has relayed it
    row.refresh_from_db()
    assert row.dispatched_at is not None
    assert row.sequence is not None
    assert row.attempts == 1

    delivered = wait_delivered(consumers.RECORDED_EVENT, [event_id])[event_id]
    assert delivered == {
        "event_id": event_id,
        "event": consumers.RECORDED_EVENT,
        "payload": {"caseUrn": case_urn, "status": "OPEN"},
        "rooms": [f"case:{case_urn}"],
        "sequence": row.sequence,
        "airline": "IB",
        "correlation_urn": correlation,
    }
    # The "*" consumer got it too, once.
    assert len(recorded_for("*", event_id)) == 1


def test_rolled_back_publish_leaves_no_row_and_delivers_nothing():
    class Boom(Exception):
        pass

    with pytest.raises(Boom), transaction.atomic():
        row = outbox.publish(consumers.RECORDED_EVENT, {"n": 1}, ["airline:IB"])
        raise Boom

    assert not OutboxEvent.objects.filter(pk=row.pk).exists()
    with transaction.atomic():
        sentinel = outbox.publish(consumers.RECORDED_EVENT, {"n": 2}, ["airline:IB"])
    wait_delivered(consumers.RECORDED_EVENT, [outbox.event_urn(sentinel.pk)])
    assert recorded_for(consumers.RECORDED_EVENT, outbox.event_urn(row.pk)) == []


def test_rolled_back_savepoint_drops_only_its_event():
    with transaction.atomic():
        kept = outbox.publish(consumers.RECORDED_EVENT, {"n": 1}, [])
        with pytest.raises(ValueError), transaction.atomic():
            dropped = outbox.publish(consumers.RECORDED_EVENT, {"n": 2}, [])
            raise ValueError
    wait_delivered(consumers.RECORDED_EVENT, [outbox.event_urn(kept.pk)])
    assert not OutboxEvent.objects.filter(pk=dropped.pk).exists()
    assert recorded_for(consumers.RECORDED_EVENT, outbox.event_urn(dropped.pk)) == []


def test_offsets_strictly_increase_across_events():
    rows = []
    for n in range(4):
        with transaction.atomic():
            rows.append(outbox.publish(consumers.RECORDED_EVENT, {"n": n}, []))
    with transaction.atomic():  # several events in one transaction keep their publish order
        rows += [outbox.publish(consumers.RECORDED_EVENT, {"n": n}, []) for n in range(4, 7)]

    ids = [outbox.event_urn(row.pk) for row in rows]
    delivered = wait_delivered(consumers.RECORDED_EVENT, ids)
    sequences = [delivered[event_id]["sequence"] for event_id in ids]
    assert sequences == sorted(sequences)
    assert len(set(sequences)) == len(sequences)
    stored = dict(OutboxEvent.objects.values_list("pk", "sequence"))
    assert [stored[row.pk] for row in rows] == sequences


def test_wildcard_consumer_gets_events_nobody_else_subscribed_to():
    with transaction.atomic():
        row = outbox.publish(consumers.UNSUBSCRIBED_EVENT, {"x": 1}, [])
    event_id = outbox.event_urn(row.pk)
    got = wait_delivered("*", [event_id])[event_id]
    assert got["event"] == "test.outbox.unsubscribed"
    assert recorded_for(consumers.RECORDED_EVENT, event_id) == []
    assert recorded_for("test.outbox.unsubscribed", event_id) == []


DIE_AFTER_COMMIT = """
import os, sys
import django
django.setup()
from django.db import transaction
from nexa.platform.outbox import publish
import tests.platform.outbox_consumers  # declares the test events

with transaction.atomic():
    transaction.on_commit(lambda: os._exit(0))  # runs first: the dispatcher never does
    row = publish(sys.argv[1], {"marker": sys.argv[2]}, ["airline:IB"], airline="IB")
    print(row.pk, flush=True)
"""


EXIT_RIGHT_AFTER_COMMIT = """
import sys
import django
django.setup()
from django.db import transaction
from nexa.platform.outbox import publish

with transaction.atomic():
    row = publish("case:updated", {"caseUrn": sys.argv[1], "status": "OPEN", "version": 1, "counts": {}},
                  ["airline:IB"], airline="IB")
print(row.pk, flush=True)
"""  # the script ends here: the relay still has the row, and the interpreter is shutting down


def publish_in_a_process(script: str, *args: str, env: dict) -> tuple[OutboxEvent, str]:
    """Run ``script`` (it prints the id of the row it published) in a Python process of its own; returns
    the row and the process's stderr."""
    result = subprocess.run(
        [sys.executable, "-c", script, *args], env=env, capture_output=True, text=True, timeout=60, check=True
    )
    return OutboxEvent.objects.get(pk=uuid.UUID(result.stdout.strip())), result.stderr


def test_a_command_exiting_right_after_commit_still_relays_its_events(subprocess_env):
    """Regression: a short-lived command (seed_demo) ended before its background relay ran; at exit no
    thread may start, and the Socket.IO sink's first send needs one. The exit flush delivers, once."""
    row, stderr = publish_in_a_process(EXIT_RIGHT_AFTER_COMMIT, f"urn:nexa:case:{uuid.uuid4()}", env=subprocess_env)
    assert "delivery_failed" not in stderr, stderr
    assert (row.attempts, row.last_error) == (1, "")
    assert row.dispatched_at is not None and row.sequence is not None


def test_process_dying_between_commit_and_dispatch_loses_nothing(subprocess_env):
    marker = uuid.uuid4().hex
    row, _stderr = publish_in_a_process(DIE_AFTER_COMMIT, consumers.RECORDED_EVENT, marker, env=subprocess_env)
    assert row.payload == {"marker": marker}
    assert row.dispatched_at is None
    assert row.sequence is None
    assert row.attempts == 0
    event_id = outbox.event_urn(row.pk)

    # The beat task, run by the real worker, picks it up once it is older than the sweep threshold.
    wait_for(
        lambda: OutboxEvent.objects.filter(
            pk=row.pk, created_at__lte=_db_now_minus(settings.NEXA_OUTBOX_SWEEP_AFTER_SECONDS + 0.2)
        ).exists(),
        what="the row to age past the sweep threshold",
    )
    celery_app.send_task("nexa.platform.tasks.outbox_sweep")
    delivered = wait_delivered(consumers.RECORDED_EVENT, [event_id])[event_id]
    assert delivered["payload"] == {"marker": marker}
    row.refresh_from_db()
    assert row.dispatched_at is not None
    assert row.sequence == delivered["sequence"]


def _db_now_minus(seconds: float):
    return Now() - timedelta(seconds=seconds)


def test_sweep_relays_only_rows_older_than_the_threshold(settings):
    rows = undelivered_rows(3)
    assert outbox.relay_undelivered(older_than_seconds=3600) == 0
    settings.NEXA_OUTBOX_SWEEP_AFTER_SECONDS = 0
    assert outbox.sweep_undelivered() == 3
    assert outbox.sweep_undelivered() == 0
    wait_delivered(consumers.RECORDED_EVENT, [outbox.event_urn(row.pk) for row in rows])


def test_commit_returns_before_delivery_and_the_background_relay_batches(add_sink):
    """The committing thread only hands ids over: a slow sink does not slow the commit, and commits made
    while the relay is busy are delivered together, once each, in commit order per thread."""
    release = threading.Event()
    seen: list[str] = []

    def slow_sink(delivery):
        release.wait(timeout=DEADLINE)
        seen.append(delivery.event_id)

    add_sink(slow_sink)
    with transaction.atomic():
        first = outbox.publish(consumers.RECORDED_EVENT, {"n": 0}, [])
    # The relay is now stuck in the sink on `first`; commits go on regardless.
    began = time.monotonic()
    rows: dict[int, list[OutboxEvent]] = {}
    errors: list[BaseException] = []

    def commit_several(worker: int) -> None:
        try:
            rows[worker] = []
            for n in range(5):
                with transaction.atomic():
                    rows[worker].append(outbox.publish(consumers.RECORDED_EVENT, {"worker": worker, "n": n}, []))
        except Exception as exc:  # noqa: BLE001 (reported by the assertion below)
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=commit_several, args=(worker,)) for worker in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=DEADLINE)
    assert not errors
    assert time.monotonic() - began < DEADLINE / 2  # nobody waited for the stuck sink
    assert not OutboxEvent.objects.filter(pk__in=[row.pk for batch in rows.values() for row in batch],
                                          dispatched_at__isnull=False).exists()  # fmt: skip

    release.set()
    assert outbox.flush_pending()
    stored = dict(OutboxEvent.objects.filter(dispatched_at__isnull=False).values_list("pk", "sequence"))
    assert first.pk in stored
    for batch in rows.values():
        sequences = [stored[row.pk] for row in batch]
        assert sequences == sorted(sequences) and len(set(sequences)) == 5
    assert len(seen) == len(set(seen)) == 21
    wait_delivered(consumers.RECORDED_EVENT, [outbox.event_urn(row.pk) for batch in rows.values() for row in batch])


def test_inline_relay_delivers_before_the_commit_returns(settings):
    settings.NEXA_OUTBOX_RELAY = "inline"
    with transaction.atomic():
        row = outbox.publish(consumers.RECORDED_EVENT, {"n": 1}, [])
    row.refresh_from_db()  # no flush: the committing thread relayed it
    assert row.dispatched_at is not None and row.sequence is not None


def test_concurrent_relays_never_deliver_a_row_twice(add_sink):
    rows = undelivered_rows(40)
    add_sink(lambda delivery: time.sleep(0.002))  # widen the window in which both relays are at work
    start = threading.Barrier(2)
    counts: list[int] = []
    errors: list[BaseException] = []

    def relay():
        try:
            start.wait(timeout=10)
            total = 0
            while delivered := outbox.relay_undelivered(limit=5):
                total += delivered
            counts.append(total)
        except Exception as exc:  # noqa: BLE001 (reported by the assertion below)
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=relay) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=DEADLINE)
    assert not errors
    assert sum(counts) == 40

    ids = [outbox.event_urn(row.pk) for row in rows]
    delivered = wait_delivered(consumers.RECORDED_EVENT, ids)  # fails on any duplicate
    sequences = [item["sequence"] for item in delivered.values()]
    assert len(set(sequences)) == 40
    assert not OutboxEvent.objects.filter(dispatched_at__isnull=True).exists()


def test_relay_skips_rows_another_relay_holds_instead_of_waiting():
    held = undelivered_rows(3)
    free = undelivered_rows(4)
    locked = threading.Event()
    release = threading.Event()

    def hold():
        try:
            with transaction.atomic():
                list(OutboxEvent.objects.select_for_update().filter(pk__in=[row.pk for row in held]))
                locked.set()
                release.wait(timeout=DEADLINE)
        finally:
            connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert locked.wait(timeout=10)
        started = time.monotonic()
        assert outbox.relay_undelivered() == 4
        assert time.monotonic() - started < 5
        assert set(OutboxEvent.objects.filter(dispatched_at__isnull=True).values_list("pk", flat=True)) == {
            row.pk for row in held
        }
    finally:
        release.set()
        holder.join(timeout=DEADLINE)
    assert outbox.relay_undelivered() == 3
    wait_delivered(consumers.RECORDED_EVENT, [outbox.event_urn(row.pk) for row in held + free])


def test_failing_sink_counts_the_attempt_and_the_sweep_retries(add_sink, settings):
    def broken(delivery):
        raise ConnectionError("channel layer down")

    add_sink(broken)
    with transaction.atomic():
        row = outbox.publish(consumers.RECORDED_EVENT, {"n": 1}, ["airline:IB"])
    assert outbox.flush_pending()
    row.refresh_from_db()
    assert row.dispatched_at is None
    assert row.sequence is None
    assert row.attempts == 1
    assert row.last_error == "ConnectionError: channel layer down"

    outbox.unregister_sink(broken)
    settings.NEXA_OUTBOX_SWEEP_AFTER_SECONDS = 0
    assert outbox.sweep_undelivered() == 1
    row.refresh_from_db()
    assert row.dispatched_at is not None
    assert row.sequence is not None
    assert row.attempts == 2
    event_id = outbox.event_urn(row.pk)
    assert wait_delivered(consumers.RECORDED_EVENT, [event_id])[event_id]["sequence"] == row.sequence


def test_poison_row_is_kept_as_failed_and_does_not_block_the_stream(add_sink, settings):
    settings.NEXA_OUTBOX_MAX_ATTEMPTS = 2
    settings.NEXA_OUTBOX_SWEEP_AFTER_SECONDS = 0

    def poison_only(delivery):
        if delivery.payload.get("poison"):
            raise ValueError("cannot render")

    add_sink(poison_only)
    with transaction.atomic():
        poison = outbox.publish(consumers.RECORDED_EVENT, {"poison": True}, [])
    assert outbox.flush_pending()  # first attempt (after commit) failed
    assert outbox.sweep_undelivered() == 0  # second failed attempt: now failed-but-kept
    poison.refresh_from_db()
    assert (poison.attempts, poison.dispatched_at) == (2, None)

    assert outbox.sweep_undelivered() == 0  # no longer claimed …
    poison.refresh_from_db()
    assert poison.attempts == 2
    with transaction.atomic():  # … and later events still flow
        healthy = outbox.publish(consumers.RECORDED_EVENT, {"poison": False}, [])
    wait_delivered(consumers.RECORDED_EVENT, [outbox.event_urn(healthy.pk)])

    outbox.unregister_sink(poison_only)
    assert outbox.requeue_failed() == 1
    assert outbox.sweep_undelivered() == 1
    wait_delivered(consumers.RECORDED_EVENT, [outbox.event_urn(poison.pk)])
