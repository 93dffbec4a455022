"""Celery consumers the outbox tests observe delivery through (loaded by the test worker with ``-I``).

Each task appends what it received to a Redis list, so the test process sees what the real worker ran.
Consumers are registered with the outbox in the worker at import (the ``celery_worker_process`` fixture
sets ``NEXA_TEST_CELERY_WORKER``) and in the test process by a fixture of ``test_outbox.py`` only, so the
rest of the suite never sends to them. The test events are declared in the event registry at import (any
process that publishes or relays them imports this module).
"""

import json
import os
from typing import Any

from celery import shared_task

from nexa.platform import events as registry
from nexa.platform import outbox
from nexa.platform.redis import get_redis

RECORDED_EVENT = "test.outbox.recorded"
UNSUBSCRIBED_EVENT = "test.outbox.unsubscribed"
LOG_PREFIX = "nexa:test:outbox:"
RECORD_TASK = "tests.platform.outbox_consumers.record"
RECORD_ANY_TASK = "tests.platform.outbox_consumers.record_any"
MARK_TASK = "tests.platform.outbox_consumers.mark"


class AnyPayload(registry.TypedDict, total=False):
    """The outbox tests' payloads: whatever the test needs (``n``, ``marker``, ``worker`` …)."""

    n: int
    x: int
    caseUrn: str  # noqa: N815 (wire name)
    status: str
    marker: str
    worker: int
    poison: bool
    row: Any


for _name in (RECORDED_EVENT, UNSUBSCRIBED_EVENT):
    registry.declare(_name, payload=AnyPayload, audience=registry.Audience.INTERNAL, description="tests only")


def log_key(name: str) -> str:
    return f"{LOG_PREFIX}{name}"


def _append(name: str, kwargs: dict) -> None:
    get_redis().rpush(log_key(name), json.dumps(kwargs, sort_keys=True))


@shared_task(name=RECORD_TASK, ignore_result=True)
def record(**kwargs) -> None:
    """Consumer of ``test.outbox.recorded`` events."""
    _append(RECORDED_EVENT, kwargs)


@shared_task(name=RECORD_ANY_TASK, ignore_result=True)
def record_any(**kwargs) -> None:
    """Consumer of every event (``"*"``)."""
    _append("*", kwargs)


@shared_task(name=MARK_TASK, ignore_result=True)
def mark(token: str) -> None:
    """A barrier: once it has run, every message queued before it on the same queue has run too."""
    get_redis().rpush(log_key("marks"), token)


def register() -> None:
    outbox.register_consumer(RECORDED_EVENT, RECORD_TASK)
    outbox.register_consumer(outbox.ALL_EVENTS, RECORD_ANY_TASK)


def unregister() -> None:
    outbox.unregister_consumer(RECORDED_EVENT, RECORD_TASK)
    outbox.unregister_consumer(outbox.ALL_EVENTS, RECORD_ANY_TASK)


if os.environ.get("NEXA_TEST_CELERY_WORKER") == "1":
    register()
