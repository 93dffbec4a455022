"""compose(): every section in flight at once, one deadline, failures and late sections reported
as partialFailures while the rest still renders. Real sleeps and real threads, no mocks."""

import threading
import time

import pytest
from django.db import connections

from nexa.platform.composition import SectionWorkers, compose
from nexa.platform.context import bound_context, current_correlation_urn
from nexa.platform.problems import downstream_unavailable_problem

SLEEP = 0.3


def sleeper(value, seconds=SLEEP):
    def section():
        time.sleep(seconds)
        return value

    return section


def broken():
    raise RuntimeError("password=hunter2 in a stack trace")


@pytest.fixture
def hang():
    """A section that blocks until the test is over (then it is released, so no thread outlives the
    test session)."""
    release = threading.Event()

    def section():
        release.wait(30)
        return {"too": "late"}

    yield section
    release.set()


def test_sections_run_concurrently_total_time_is_the_slowest_not_the_sum():
    started = time.perf_counter()
    body = compose({"a": sleeper(1), "b": sleeper(2), "c": sleeper(3), "d": sleeper(4)}, timeout=5)
    elapsed = time.perf_counter() - started
    assert body == {"a": 1, "b": 2, "c": 3, "d": 4, "partialFailures": []}
    # Sequential would take 4 x 0.3 = 1.2 s.
    assert SLEEP <= elapsed < 2 * SLEEP


def test_a_failing_section_is_reported_and_the_rest_still_renders():
    body = compose({"cases": sleeper({"open": 3}, 0.05), "review": broken, "audit": lambda: ["x"]}, timeout=2)
    assert body["cases"] == {"open": 3}
    assert body["audit"] == ["x"]
    assert body["review"] is None
    assert body["partialFailures"] == [{"domain": "review", "status": "error", "detail": "The review section failed."}]
    assert "hunter2" not in str(body)


def test_a_problem_keeps_its_status_and_detail():
    def circuit_open():
        raise downstream_unavailable_problem("booking", "The vendor circuit is open.")

    body = compose({"booking": circuit_open, "cases": lambda: 1}, timeout=2)
    assert body["partialFailures"] == [{"domain": "booking", "status": "503", "detail": "The vendor circuit is open."}]
    assert body["cases"] == 1


def test_a_hung_section_times_out_and_the_answer_comes_at_the_deadline(hang):
    started = time.perf_counter()
    body = compose({"cases": sleeper("fast", 0.05), "operators": hang}, timeout=0.5)
    elapsed = time.perf_counter() - started
    assert 0.5 <= elapsed < 0.8
    assert body["cases"] == "fast"
    assert body["operators"] is None
    assert body["partialFailures"] == [
        {"domain": "operators", "status": "timeout", "detail": "The operators section did not answer within 0.5 s."}
    ]


def test_one_failing_and_one_hanging_together(hang):
    body = compose({"cases": lambda: "ok", "audit": broken, "operators": hang}, timeout=0.4)
    assert body["cases"] == "ok"
    assert [(f["domain"], f["status"]) for f in body["partialFailures"]] == [
        ("audit", "error"),
        ("operators", "timeout"),
    ]


def test_default_timeout_comes_from_settings(settings, hang):
    settings.NEXA_COMPOSITION_TIMEOUT_SECONDS = 0.3
    started = time.perf_counter()
    body = compose({"slow": hang})
    assert time.perf_counter() - started < 0.6
    assert body["partialFailures"][0]["status"] == "timeout"


def test_sections_see_the_callers_correlation_urn():
    urn = "urn:nexa:correlation:0190a6a0-0000-7000-8000-000000000001"
    with bound_context(correlation_urn=urn):
        body = compose({"seen": current_correlation_urn}, timeout=2)
    assert body["seen"] == urn


def test_the_failures_key_cannot_be_a_section_name():
    with pytest.raises(ValueError, match="partialFailures"):
        compose({"partialFailures": lambda: 1})


def test_a_hung_section_does_not_hold_up_the_next_call(hang):
    workers = SectionWorkers()
    compose({"stuck": hang}, timeout=0.1, workers=workers)
    started = time.perf_counter()
    body = compose({"a": sleeper(1, 0.05), "b": sleeper(2, 0.05)}, timeout=2, workers=workers)
    assert body == {"a": 1, "b": 2, "partialFailures": []}
    assert time.perf_counter() - started < 0.5
    assert workers.size == 3  # the hung worker is still busy; two more were started


def backend_pid() -> int:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


@pytest.mark.django_db
def test_workers_reuse_their_database_connection():
    workers = SectionWorkers(idle_seconds=5)
    pids = {compose({"pid": backend_pid}, timeout=5, workers=workers)["pid"] for _ in range(10)}
    # No new PostgreSQL connection per call: the same few pooled backends serve every call …
    assert len(pids) <= 3
    assert backend_pid() not in pids  # … but never the caller's own connection


@pytest.mark.django_db
def test_idle_workers_close_their_database_connections_and_end():
    workers = SectionWorkers(idle_seconds=0.2)
    used = []

    def query_database():
        used.append(connections["default"])  # the worker thread's own DatabaseWrapper
        return backend_pid()

    assert compose({"a": query_database, "b": query_database}, timeout=5, workers=workers)["partialFailures"] == []
    # Two workers, or one if the first section finished before the second was handed out.
    assert 1 <= workers.size <= 2
    deadline = time.monotonic() + 10  # generous: the machine may be busy
    while workers.size and time.monotonic() < deadline:
        time.sleep(0.05)
    assert workers.size == 0
    assert len(used) == 2
    assert all(wrapper is not connections["default"] for wrapper in used)
    assert all(wrapper.connection is None for wrapper in used)  # closed, not left to the garbage collector
