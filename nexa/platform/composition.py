"""Composition routes (ARCHITECTURE §3.8): run named sections at once, join what arrives in time.

::

    body = compose({
        "cases": lambda: cases_section(principal),
        "audit": lambda: audit_section(principal),
    })
    # {"cases": {...}, "audit": {...}, "partialFailures": []}

* **All in flight at once.** Each section runs on its own worker thread, all started together,
  so the answer takes as long as the slowest section, not the sum. Sections use the synchronous
  ORM, hence threads rather than coroutines. Workers are kept (see :class:`SectionWorkers`) so a
  section reuses its thread's database connection instead of opening one per call (a new
  PostgreSQL connection costs several milliseconds, more than a dashboard section itself);
  around every section, connections past ``CONN_MAX_AGE`` or broken are closed, as Django does
  around a request, and a worker idle for :data:`IDLE_WORKER_SECONDS` closes its connections
  and ends.
* **One deadline.** Every section gets the same per-call timeout
  (``NEXA_COMPOSITION_TIMEOUT_SECONDS``, default 3 s). The join waits until every section has
  answered or the deadline has passed, whichever comes first, and never longer: a hung section
  is left running on its worker (a daemon thread, so it cannot hold the process open at exit;
  the pool starts another worker for the next call) and is reported as
  ``{"domain": name, "status": "timeout"}``. Its late result is dropped.
* **Failures are data.** A section that raises becomes ``{"domain", "status": "error",
  "detail"}``; a :class:`~nexa.platform.problems.Problem` keeps its HTTP status (as a string,
  e.g. ``"503"``) and its detail, which is written for callers. Any other exception's message
  is logged, never returned (it may carry internals). The failed section's key is present with
  ``null``, so clients can always index every section.
* **No business logic in the join.** Sections are callables passed in by the route (this
  package imports no domain app); the join only assembles.

Each section thread runs in a copy of the caller's context, so correlation URN and log fields
follow the work.
"""

import contextvars
import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import structlog
from django.conf import settings
from django.db import close_old_connections, connections

from nexa.platform.problems import Problem

logger = structlog.get_logger(__name__)

PARTIAL_FAILURES = "partialFailures"
STATUS_TIMEOUT = "timeout"
STATUS_ERROR = "error"
# A worker with nothing to do for this long closes its database connections and ends. Short, so
# idle processes do not sit on connections (and a test database can be dropped moments after
# the last call); a dashboard polled more often than this keeps its workers warm.
IDLE_WORKER_SECONDS = 3.0


class SectionWorkers:
    """A pool of daemon threads that grows to as many workers as there are sections in flight
    (a section never waits for a free worker: a hung one must not delay the others) and shrinks
    as workers fall idle."""

    def __init__(self, *, idle_seconds: float = IDLE_WORKER_SECONDS):
        self.idle_seconds = idle_seconds
        self._tasks: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        # Workers waiting for a task that no queued task has been promised to.
        self._unclaimed_idle = 0
        self._workers = 0

    @property
    def size(self) -> int:
        return self._workers

    def submit(self, task: Callable[[], None]) -> None:
        with self._lock:
            self._tasks.put(task)
            if self._unclaimed_idle:
                self._unclaimed_idle -= 1  # an idle worker will take it
                return
            self._workers += 1
        threading.Thread(target=self._work, name="compose-worker", daemon=True).start()

    def _work(self) -> None:
        try:
            while True:
                try:
                    task = self._tasks.get(timeout=self.idle_seconds)
                except queue.Empty:
                    with self._lock:
                        # Leave only if some other waiting worker can take every promised task.
                        if self._unclaimed_idle:
                            self._unclaimed_idle -= 1
                            self._workers -= 1
                            return
                    continue
                _tidy_connections()
                try:
                    task()
                finally:
                    _tidy_connections()
                    with self._lock:
                        self._unclaimed_idle += 1
        finally:
            connections.close_all()


def _tidy_connections() -> None:
    """Close connections past CONN_MAX_AGE or broken, as Django does around each request. Never
    raises: the section must still run (and report) whatever state the old connection was in."""
    try:
        close_old_connections()
    except Exception:
        logger.warning("composition_connection_reset", exc_info=True)
        for connection in connections.all(initialized_only=True):
            try:
                connection.close()  # the next query opens a fresh one
            except Exception:  # noqa: BLE001 - already broken; forgetting it is all that is left
                connection.connection = None


_workers = SectionWorkers()


@dataclass
class _Outcome:
    done: threading.Event = field(default_factory=threading.Event)
    value: Any = None
    error: BaseException | None = None
    seconds: float = 0.0


def _run_section(call: Callable[[], Any], outcome: _Outcome) -> None:
    started = time.perf_counter()
    try:
        outcome.value = call()
    except BaseException as error:  # noqa: BLE001 - any failure of a section is reported, never raised
        outcome.error = error
    finally:
        outcome.seconds = time.perf_counter() - started
        outcome.done.set()


def _failure(name: str, outcome: _Outcome | None, timeout: float) -> dict[str, str]:
    if outcome is None or not outcome.done.is_set():
        return {
            "domain": name,
            "status": STATUS_TIMEOUT,
            "detail": f"The {name} section did not answer within {timeout:g} s.",
        }
    error = outcome.error
    if isinstance(error, Problem):
        return {"domain": name, "status": str(error.status_code), "detail": error.detail_text}
    return {"domain": name, "status": STATUS_ERROR, "detail": f"The {name} section failed."}


def compose(
    sections: Mapping[str, Callable[[], Any]],
    *,
    timeout: float | None = None,
    workers: SectionWorkers | None = None,
) -> dict[str, Any]:
    """Run every section concurrently and join them: ``{name: data | None, …, "partialFailures":
    [{domain, status, detail}, …]}`` in the order of ``sections``. Returns within ``timeout``
    seconds (default ``NEXA_COMPOSITION_TIMEOUT_SECONDS``) plus scheduling noise."""
    workers = workers or _workers
    if PARTIAL_FAILURES in sections:
        raise ValueError(f"{PARTIAL_FAILURES!r} is reserved for the failures list")
    timeout = settings.NEXA_COMPOSITION_TIMEOUT_SECONDS if timeout is None else timeout
    deadline = time.monotonic() + timeout
    outcomes: dict[str, _Outcome] = {}
    for name, call in sections.items():
        outcome = _Outcome()
        outcomes[name] = outcome
        context = contextvars.copy_context()
        workers.submit(partial(context.run, _run_section, call, outcome))

    for outcome in outcomes.values():
        outcome.done.wait(max(deadline - time.monotonic(), 0.0))

    body: dict[str, Any] = {}
    failures: list[dict[str, str]] = []
    for name, outcome in outcomes.items():
        # Read the flag once: a section finishing right now is either wholly in or wholly out.
        finished = outcome.done.is_set()
        if finished and outcome.error is None:
            body[name] = outcome.value
            continue
        body[name] = None
        failure = _failure(name, outcome if finished else None, timeout)
        failures.append(failure)
        logger.warning(
            "composition_section_failed",
            section=name,
            status=failure["status"],
            seconds=round(outcome.seconds, 3) if finished else None,
            exc_info=outcome.error if finished and not isinstance(outcome.error, Problem) else None,
        )
    body[PARTIAL_FAILURES] = failures
    return body
