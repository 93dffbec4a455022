"""Connection-state recovery (Socket.IO v4 semantics, ARCHITECTURE §4 Replay).

Every CONNECT reply carries a ``pid``; every server event carries its outbox stream ``sequence`` as a
string last argument (the offset). When a socket closes, its pid's rooms are kept in Redis for
``NEXA_SOCKET_REPLAY_SECONDS``. A client that reconnects within that time sends ``{pid, offset}`` in its
CONNECT auth; the consumer then takes the pid back (once: the key is deleted), joins its rooms, and
replays the outbox rows of those rooms with ``sequence > offset`` created within the window, in
sequence order, before any live event. The CONNECT reply repeats the pid, which socket.io-client reads
as ``socket.recovered === true``.

Everything here is synchronous (Redis + one query): the consumer runs it in a worker thread.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from functools import reduce
from operator import or_
from typing import Any

import structlog
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.db.models.functions import Now

from nexa.platform.auth import Principal
from nexa.platform.inputs import PG_BIGINT_MAX, strict_int_or_none
from nexa.platform.models import OutboxEvent

# The relays' transaction-scoped advisory lock (nexa/platform/outbox.py): a relay holds it from sequence
# assignment through sink delivery to commit. Taking it *shared* before reading waits for any relay that
# is between "sent to the channel layer" and "committed", so an event is either in the replay or
# arrives live on the groups joined just before — never neither.
from nexa.platform.outbox import RELAY_LOCK_KEY
from nexa.platform.redis import get_redis
from operators.socketio.protocol import server_events

logger = structlog.get_logger(__name__)

PID_KEY_PREFIX = "nexa:sio:pid:"
MAX_PID_LENGTH = 64


@dataclass(frozen=True, slots=True)
class ReplayEvent:
    event: str
    payload: dict[str, Any]
    sequence: int


@dataclass(frozen=True, slots=True)
class Recovery:
    """A recovered session: its pid, its rooms, and the events it missed (oldest first)."""

    pid: str
    rooms: list[str]
    events: list[ReplayEvent]


def replay_seconds() -> int:
    return int(settings.NEXA_SOCKET_REPLAY_SECONDS)


def remember(*, pid: str, principal: Principal, rooms: list[str]) -> None:
    """Keep a closed socket's rooms for the replay window (its pid can be recovered once)."""
    state = {"airline": principal.airline, "operator": principal.operator_urn, "rooms": sorted(rooms)}
    get_redis().set(PID_KEY_PREFIX + pid, json.dumps(state), ex=max(replay_seconds(), 1))


def parse_offset(value: object) -> int | None:
    """A client offset is the decimal string we sent (``"123"``); anything else is no offset."""
    # Not str.isdigit(): "²" passes it and int() refuses it; a bigint offset is at most 2**63 - 1.
    return strict_int_or_none(value, minimum=0, maximum=PG_BIGINT_MAX)


def recover(*, pid: object, offset: object, principal: Principal) -> Recovery | None:
    """Take back ``pid`` for ``principal`` and load what it missed since ``offset``; None when the pid is
    unknown, expired, someone else's, or missed more than ``NEXA_SOCKET_REPLAY_MAX_EVENTS`` (the client
    then starts a fresh session and refetches state, seeing ``recovered === false``).

    Call this *after* joining the recovered rooms' groups (see the advisory-lock note above)."""
    start = parse_offset(offset)
    if not isinstance(pid, str) or not pid or len(pid) > MAX_PID_LENGTH or start is None:
        return None
    raw = get_redis().getdel(PID_KEY_PREFIX + pid)
    if raw is None:
        return None
    try:
        state = json.loads(raw)
        rooms = [room for room in state["rooms"] if isinstance(room, str)]
        owner = (state["airline"], state["operator"])
    except (ValueError, KeyError, TypeError):
        return None
    if owner != (principal.airline, principal.operator_urn):
        logger.warning("socketio.recovery_refused", reason="pid of another operator", operator=principal.operator_urn)
        return None
    return Recovery(pid=pid, rooms=rooms, events=[])  # events are loaded by missed_events()


def missed_events(*, rooms: list[str], offset: int) -> list[ReplayEvent] | None:
    """Delivered server events of ``rooms`` with ``sequence > offset`` created within the replay window,
    oldest first; None when there are more than ``NEXA_SOCKET_REPLAY_MAX_EVENTS``."""
    if not rooms:
        return []
    limit = int(settings.NEXA_SOCKET_REPLAY_MAX_EVENTS)
    in_rooms = reduce(or_, (Q(rooms__contains=[room]) for room in rooms))
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock_shared(%s)", [RELAY_LOCK_KEY])
        rows = list(
            OutboxEvent.objects.filter(
                in_rooms,
                sequence__gt=offset,
                event__in=server_events(),
                created_at__gte=Now() - timedelta(seconds=replay_seconds()),
            )
            .order_by("sequence")
            .values_list("event", "payload", "sequence")[: limit + 1]
        )
    if len(rows) > limit:
        return None
    return [ReplayEvent(event=event, payload=payload, sequence=sequence) for event, payload, sequence in rows]
