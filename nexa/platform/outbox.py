"""The transactional outbox (ARCHITECTURE §3.10): events written with the change, delivered after commit.

How it fits together:

* :func:`publish` is called by a service *inside its transaction*. It writes one
  :class:`~nexa.platform.models.OutboxEvent` row and registers an ``on_commit`` hook that hands the
  row's id to this process's **background relay** as soon as the transaction commits. Outside an atomic
  block it raises :class:`PublishOutsideTransaction`, so no code path can announce a change that may
  never commit.
* The background relay is one daemon thread per process. It relays whatever ids are pending in one
  batch (one claim, one sequence draw, one update for all of them), so the request that committed
  returns without waiting for the channel layer or the broker, and a busy process relays many events
  per transaction instead of one. :func:`flush_pending` waits until it is idle (tests; process exit
  runs it too). ``NEXA_OUTBOX_RELAY = "inline"`` relays in the committing thread instead, one
  transaction per commit, as before (for debugging).
* :func:`relay_undelivered` is the only code that delivers. In one transaction it claims undelivered
  rows with ``SELECT … FOR UPDATE SKIP LOCKED`` ordered by ``created_at`` (never an ``id > last``
  high-water mark: ids are not assigned in commit order), draws each row's stream ``sequence`` from
  ``nextval('platform_outbox_stream_seq')``, hands the row to every in-process sink and every Celery
  consumer registered for its event, and marks it dispatched.
* :func:`sweep_undelivered` (the beat task ``nexa.platform.tasks.outbox_sweep``) relays rows older than
  ``NEXA_OUTBOX_SWEEP_AFTER_SECONDS`` — rows whose process died between commit and dispatch, or whose
  delivery failed.

Guarantees and rules for consumers:

* **At-least-once.** A row is marked dispatched only after every target accepted it, in the same
  transaction that claimed it. A crash or a failing target leaves it undelivered and it is delivered
  again, possibly to targets that already had it. **Consumers and sinks must be idempotent by
  ``event_id``** (``urn:nexa:event:<uuid>``, stable across redeliveries).
* **Offsets.** ``sequence`` is assigned on the attempt that succeeds (a failed attempt gives its number
  back as a gap, the retry gets a fresh, higher one). Relays serialise sequence assignment, delivery
  and commit on a transaction-scoped advisory lock, so sequences become visible, and reach sinks, in
  increasing order: a Socket.IO client that resumes "after offset N" can never miss an event with a
  smaller offset committed later. Claims themselves run concurrently (``SKIP LOCKED``): two relays
  never deliver the same row.
* **Poison rows.** Every delivery attempt increments ``attempts``; a failure also stores
  ``last_error``. A row whose ``attempts`` reach ``NEXA_OUTBOX_MAX_ATTEMPTS`` (default 10) without
  success is *failed but kept*: ``dispatched_at`` stays null, the regular claim skips it (so it cannot
  block the stream), an error is logged, and :func:`requeue_failed` (ops) makes it eligible again.
  ``last_error`` is kept after a later success, as a record of why earlier attempts failed.

Targets:

* :func:`register_consumer` — a Celery task by name, for one event name or ``"*"`` (every event). It is
  sent with ``celery_app.send_task(task_name, kwargs={event_id, event, payload, rooms, sequence,
  airline, correlation_urn}, queue=...)``; tasks should accept ``**kwargs`` for forward compatibility.
* :func:`register_sink` — an in-process callable taking a :class:`Delivery` (the Socket.IO / channel
  layer fan-out plugs in here). Sinks run before Celery consumers, synchronously, inside the relay's
  transaction: they must be quick and must not use the database.

Registration is per process and the relay runs in whichever process commits (web) or sweeps (worker),
so register targets where every process does it: in the owning app's ``AppConfig.ready()``.
"""

from __future__ import annotations

import atexit
import json
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from typing import Any
from uuid import UUID

import structlog
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models.functions import Now

from nexa.celery import app as celery_app
from nexa.platform import events as registry
from nexa.platform.context import current_correlation_urn
from nexa.platform.models import OutboxEvent
from nexa.platform.urns import format_urn

logger = structlog.get_logger(__name__)

__all__ = [
    "ALL_EVENTS",
    "Delivery",
    "PublishOutsideTransaction",
    "event_urn",
    "flush_pending",
    "publish",
    "register_consumer",
    "register_sink",
    "relay_undelivered",
    "requeue_failed",
    "sweep_undelivered",
    "unregister_consumer",
    "unregister_sink",
]

ALL_EVENTS = "*"
STREAM_SEQUENCE = "platform_outbox_stream_seq"
# Key of the transaction-scoped advisory lock that orders sequence assignment, delivery and commit.
RELAY_LOCK_KEY = 0x4E455841_0B0C  # "NEXA" + outbox
_DEFAULT_MAX_ATTEMPTS = 10
_SWEEP_MAX_BATCHES = 20
_SWEEP_BATCH = 100
_SEND_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}
_MAX_ERROR_CHARS = 2000


class PublishOutsideTransaction(RuntimeError):
    """``publish`` was called outside ``transaction.atomic()``: the event could outlive a rolled-back change."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """One outbox row as handed to sinks and consumers."""

    event_id: str
    event: str
    payload: dict[str, Any]
    rooms: list[str]
    sequence: int
    airline: str
    correlation_urn: str

    def as_kwargs(self) -> dict[str, Any]:
        """The keyword arguments a Celery consumer task receives."""
        return {
            "event_id": self.event_id,
            "event": self.event,
            "payload": self.payload,
            "rooms": self.rooms,
            "sequence": self.sequence,
            "airline": self.airline,
            "correlation_urn": self.correlation_urn,
        }


Sink = Callable[[Delivery], None]


@dataclass(frozen=True, slots=True)
class _Consumer:
    task_name: str
    queue: str


@dataclass(slots=True)
class _Registry:
    consumers: dict[str, list[_Consumer]] = field(default_factory=dict)
    sinks: list[Sink] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


_registry = _Registry()


def event_urn(event_id: UUID | str) -> str:
    """The public id of an outbox event: ``urn:nexa:event:<uuid>`` (what consumers dedupe on)."""
    return format_urn("event", event_id if isinstance(event_id, UUID) else UUID(str(event_id)))


# --- registration ---------------------------------------------------------------------------------


def register_consumer(event_name: str, task_name: str, *, queue: str = "default") -> None:
    """Deliver every ``event_name`` event (or every event, with ``"*"``) to the Celery task ``task_name``.

    Idempotent: registering the same (event, task) twice delivers once.
    """
    if not event_name or not task_name:
        raise ValueError("event_name and task_name are required")
    consumer = _Consumer(task_name=task_name, queue=queue)
    with _registry.lock:
        current = _registry.consumers.get(event_name, [])
        if all(c.task_name != task_name for c in current):
            _registry.consumers[event_name] = [*current, consumer]


def unregister_consumer(event_name: str, task_name: str) -> None:
    with _registry.lock:
        current = _registry.consumers.get(event_name, [])
        _registry.consumers[event_name] = [c for c in current if c.task_name != task_name]


def register_sink(sink: Sink) -> Sink:
    """Hand every delivered event to ``sink(delivery)`` in-process (usable as a decorator)."""
    with _registry.lock:
        if sink not in _registry.sinks:
            _registry.sinks = [*_registry.sinks, sink]
    return sink


def unregister_sink(sink: Sink) -> None:
    with _registry.lock:
        _registry.sinks = [s for s in _registry.sinks if s is not sink]


def _consumers_for(event_name: str) -> list[_Consumer]:
    with _registry.lock:
        specific = _registry.consumers.get(event_name, [])
        wildcard = _registry.consumers.get(ALL_EVENTS, [])
    seen: set[str] = set()
    targets = []
    for consumer in (*specific, *wildcard):
        if consumer.task_name not in seen:
            seen.add(consumer.task_name)
            targets.append(consumer)
    return targets


# --- publishing -----------------------------------------------------------------------------------


def publish(
    event: str, payload: dict[str, Any], rooms: Sequence[str], *, airline: str = "", using: str = DEFAULT_DB_ALIAS
) -> OutboxEvent:
    """Write ``event`` to the outbox in the caller's transaction; it is relayed after commit.

    ``payload`` must be plain JSON (pass URNs and ISO strings, never model instances or datetimes).
    Raises :class:`PublishOutsideTransaction` outside ``transaction.atomic()`` and
    :class:`~nexa.platform.events.UnregisteredEvent` for an event no app declared; with
    ``NEXA_EVENT_SCHEMA_CHECK`` (on in tests) a payload that does not match the declaration raises
    :class:`~nexa.platform.events.EventPayloadInvalid`.
    """
    _require_transaction(event, using)
    row = _outbox_row(event, payload, rooms, airline)
    row.save(force_insert=True, using=using)
    transaction.on_commit(partial(_dispatch_after_commit, row.pk, using), using=using, robust=True)
    return row


def publish_many(
    events: Iterable[tuple[str, dict[str, Any], Sequence[str], str]], *, using: str = DEFAULT_DB_ALIAS
) -> list[OutboxEvent]:
    """:func:`publish` for many ``(event, payload, rooms, airline)`` at once: each is checked the same way (one
    bad event refuses them all), the rows are written with one INSERT in the caller's transaction, in the given
    order, and handed to the relay after commit. For batch work (the SLA sweep)."""
    rows = []
    for event, payload, rooms, airline in events:
        _require_transaction(event, using)
        rows.append(_outbox_row(event, payload, rooms, airline))
    if not rows:
        return []
    OutboxEvent.objects.using(using).bulk_create(rows)
    for row in rows:
        transaction.on_commit(partial(_dispatch_after_commit, row.pk, using), using=using, robust=True)
    return rows


def _require_transaction(event: str, using: str) -> None:
    if not transaction.get_connection(using).in_atomic_block:
        raise PublishOutsideTransaction(
            f"publish({event!r}) must run inside transaction.atomic() so the event commits with its change"
        )


def _outbox_row(event: str, payload: dict[str, Any], rooms: Sequence[str], airline: str) -> OutboxEvent:
    """The checked, unsaved outbox row of one event (see :func:`publish`)."""
    if not isinstance(event, str) or not event or len(event) > OutboxEvent._meta.get_field("event").max_length:
        raise ValueError(f"invalid event name {event!r}")
    if not isinstance(payload, dict):
        raise TypeError(f"payload of {event!r} must be a dict, got {type(payload).__name__}")
    if isinstance(rooms, str) or not all(isinstance(room, str) and room for room in rooms):
        raise TypeError(f"rooms of {event!r} must be a list of non-empty strings")
    try:
        # A strict round trip both validates and detaches the payload from the caller's objects.
        plain_payload = json.loads(json.dumps(payload, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"payload of {event!r} is not JSON-serialisable: {exc}") from exc
    spec = registry.spec_of(event)
    if getattr(settings, "NEXA_EVENT_SCHEMA_CHECK", False):
        spec.validate(plain_payload)
    return OutboxEvent(
        event=event,
        payload=plain_payload,
        rooms=list(rooms),
        airline=airline,
        correlation_urn=current_correlation_urn() or "",
    )


def _dispatch_after_commit(event_id: UUID, using: str) -> None:
    """The on-commit hook: hand the committed row to the background relay (or relay it here when
    ``NEXA_OUTBOX_RELAY`` is ``inline``). Never raises: the change is committed, and whatever is not
    delivered now is delivered by the sweep."""
    try:
        if getattr(settings, "NEXA_OUTBOX_RELAY", "background") == "inline":
            relay_undelivered(ids=[event_id], using=using)
        else:
            _background_relay.submit(event_id, using)
    except Exception:
        logger.exception("outbox.dispatch_after_commit_failed", event_id=event_urn(event_id))


class _BackgroundRelay:
    """One daemon thread per process relaying the rows this process committed, in batches.

    A crash before the thread relays loses nothing: the rows are committed and the sweep delivers them.
    The thread is started lazily and again in a forked child (Celery prefork), whose copy of the parent's
    thread does not run.
    """

    _BATCH = 500  # ids per relay transaction

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._pending: dict[str, list[UUID]] = {}
        self._busy = False
        self._pid: int | None = None

    def submit(self, event_id: UUID, using: str) -> None:
        with self._condition:
            if self._pid != os.getpid():
                self._pending, self._busy, self._pid = {}, False, os.getpid()
                threading.Thread(target=self._run, name="nexa-outbox-relay", daemon=True).start()
            self._pending.setdefault(using, []).append(event_id)
            self._condition.notify_all()

    def flush(self, timeout: float) -> bool:
        """Wait until nothing is pending or being relayed; False when ``timeout`` ran out first."""
        with self._condition:
            if self._pid != os.getpid():
                return True
            return self._condition.wait_for(lambda: not self._pending and not self._busy, timeout=timeout)

    def _run(self) -> None:
        while True:
            with self._condition:
                self._condition.wait_for(lambda: bool(self._pending))
                batch, self._pending, self._busy = self._pending, {}, True
            failed = False
            try:
                for using, ids in batch.items():
                    for start in range(0, len(ids), self._BATCH):
                        chunk = ids[start : start + self._BATCH]
                        _relay(limit=len(chunk), older_than_seconds=0, ids=chunk, using=using)
            except Exception:  # the rows stay undelivered; the sweep retries them
                failed = True
                logger.exception("outbox.background_relay_failed", events=sum(len(ids) for ids in batch.values()))
            finally:
                with self._condition:
                    self._busy = False
                    idle = not self._pending
                    self._condition.notify_all()
                if idle or failed:
                    # Give the pooled connection back while there is nothing to do (or it may be broken).
                    for using in batch:
                        try:
                            connections[using].close()
                        except Exception:  # a broken connection must not end the relay thread
                            logger.warning("outbox.background_relay_close_failed", using=using, exc_info=True)


_background_relay = _BackgroundRelay()


def flush_pending(timeout: float = 10.0) -> bool:
    """Wait until this process's background relay has relayed everything committed so far (True), or
    ``timeout`` seconds passed (False). Tests call it before asserting on delivery; process exit too."""
    return _background_relay.flush(timeout)


atexit.register(flush_pending, 5.0)


# --- relaying -------------------------------------------------------------------------------------


def _max_attempts() -> int:
    return int(getattr(settings, "NEXA_OUTBOX_MAX_ATTEMPTS", _DEFAULT_MAX_ATTEMPTS))


def relay_undelivered(
    limit: int = 100,
    older_than_seconds: float = 0,
    *,
    ids: Iterable[UUID] | None = None,
    using: str = DEFAULT_DB_ALIAS,
) -> int:
    """Claim up to ``limit`` undelivered rows (optionally only ``ids``, optionally only rows older than
    ``older_than_seconds`` by the database clock), deliver them, and return how many were delivered.

    Rows locked by another relay are skipped, rows that reached the attempt limit are left alone.
    """
    delivered, _failed = _relay(limit=limit, older_than_seconds=older_than_seconds, ids=ids, using=using)
    return delivered


def _relay(
    *,
    limit: int,
    older_than_seconds: float,
    ids: Iterable[UUID] | None = None,
    exclude: Iterable[UUID] = (),
    using: str = DEFAULT_DB_ALIAS,
) -> tuple[int, list[UUID]]:
    """Relay one batch; returns (delivered count, ids whose delivery failed)."""
    max_attempts = _max_attempts()
    failed_ids: list[UUID] = []
    with transaction.atomic(using=using):
        claim = OutboxEvent.objects.using(using).filter(dispatched_at__isnull=True, attempts__lt=max_attempts)
        if ids is not None:
            claim = claim.filter(pk__in=list(ids))
        exclude = list(exclude)
        if exclude:
            claim = claim.exclude(pk__in=exclude)
        if older_than_seconds > 0:
            claim = claim.filter(created_at__lte=Now() - timedelta(seconds=older_than_seconds))
        rows = list(claim.select_for_update(skip_locked=True).order_by("created_at", "pk")[:limit])
        if not rows:
            return 0, failed_ids

        with transaction.get_connection(using).cursor() as cursor:
            # Serialise numbering + delivery + commit across relays (see the module docstring). The rows
            # are already ours, so waiting here never makes another relay deliver them.
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [RELAY_LOCK_KEY])
            cursor.execute(
                f"SELECT nextval('{STREAM_SEQUENCE}') FROM generate_series(1, %s)",  # noqa: S608 (constant)
                [len(rows)],
            )
            sequences = sorted(value for (value,) in cursor.fetchall())

        delivered_ids: list[UUID] = []
        delivered_seqs: list[int] = []
        # One broker producer (connection + channel) for the whole batch instead of one per message.
        with celery_app.producer_or_acquire() as producer:
            for row, sequence in zip(rows, sequences, strict=True):
                try:
                    _deliver(row, sequence, producer)
                except Exception as exc:  # noqa: BLE001 (any target failure: count it, keep the row)
                    _record_failure(row, exc, max_attempts, using)
                    failed_ids.append(row.pk)
                else:
                    delivered_ids.append(row.pk)
                    delivered_seqs.append(sequence)

        if delivered_ids:
            with transaction.get_connection(using).cursor() as cursor:
                cursor.execute(
                    f"""
                    UPDATE {OutboxEvent._meta.db_table} AS o
                       SET sequence = d.seq, dispatched_at = now(), attempts = o.attempts + 1
                      FROM unnest(%s::uuid[], %s::bigint[]) AS d(id, seq)
                     WHERE o.id = d.id
                    """,  # noqa: S608 (table name from the model)
                    [delivered_ids, delivered_seqs],
                )
    return len(delivered_ids), failed_ids


def _deliver(row: OutboxEvent, sequence: int, producer) -> None:
    delivery = Delivery(
        event_id=event_urn(row.pk),
        event=row.event,
        payload=row.payload,
        rooms=list(row.rooms),
        sequence=sequence,
        airline=row.airline,
        correlation_urn=row.correlation_urn,
    )
    with _registry.lock:
        sinks = list(_registry.sinks)
    for sink in sinks:
        sink(delivery)
    for consumer in _consumers_for(row.event):
        celery_app.send_task(
            consumer.task_name,
            kwargs=delivery.as_kwargs(),
            queue=consumer.queue,
            retry=True,
            retry_policy=_SEND_RETRY_POLICY,
            producer=producer,
        )


def _record_failure(row: OutboxEvent, exc: Exception, max_attempts: int, using: str) -> None:
    attempts = row.attempts + 1
    error = f"{type(exc).__name__}: {exc}"[:_MAX_ERROR_CHARS]
    OutboxEvent.objects.using(using).filter(pk=row.pk).update(attempts=attempts, last_error=error)
    log = dict(event_id=event_urn(row.pk), event_name=row.event, attempts=attempts, error=error)
    if attempts >= max_attempts:
        logger.error("outbox.event_failed", max_attempts=max_attempts, **log)
    else:
        logger.warning("outbox.delivery_failed", **log)


def sweep_undelivered() -> int:
    """The beat sweep: relay rows older than ``NEXA_OUTBOX_SWEEP_AFTER_SECONDS`` that are still
    undelivered (their dispatcher died or failed). Returns how many were delivered."""
    older_than = settings.NEXA_OUTBOX_SWEEP_AFTER_SECONDS
    total = 0
    failed: list[UUID] = []  # tried once in this sweep: the next sweep tries them again
    for _ in range(_SWEEP_MAX_BATCHES):  # bounded, so one sweep cannot run forever; the next one continues
        delivered, failed_now = _relay(limit=_SWEEP_BATCH, older_than_seconds=older_than, exclude=failed)
        total += delivered
        failed.extend(failed_now)
        if delivered + len(failed_now) < _SWEEP_BATCH:
            break
    if total:
        logger.info("outbox.swept", delivered=total)
    return total


def requeue_failed(*, event_ids: Iterable[UUID] | None = None, using: str = DEFAULT_DB_ALIAS) -> int:
    """Make failed rows (attempt limit reached, never delivered) eligible for the sweep again (ops retry)."""
    rows = OutboxEvent.objects.using(using).filter(dispatched_at__isnull=True, attempts__gte=_max_attempts())
    if event_ids is not None:
        rows = rows.filter(pk__in=list(event_ids))
    return rows.update(attempts=0)
