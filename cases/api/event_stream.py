"""``GET /v1/cases/{case_urn}/events``: a case's events as Server-Sent Events (see docs/event-stream.md).

The stream carries what the Socket.IO channel carries for the case room: outbox rows whose ``rooms``
contain ``case:<case_urn>``, limited to the six public events of spec 000 (the event registry's
``client`` events, nexa/platform/events.py), each as
``id: <sequence>`` / ``event: <name>`` / ``data: <json payload>``. The ``id`` is the outbox stream
sequence (the same offset Socket.IO clients see), so ``Last-Event-ID`` resumes exactly after it.

Everything that can fail (token, role, tenancy, URN, ``Last-Event-ID``) is decided in the DRF view
before the first byte, so errors are ordinary problem documents. The stream itself is an async
generator consumed by Django's ASGI handler: it polls the outbox every ``NEXA_SSE_POLL_SECONDS``
(``sequence > last`` over the delivered rows; the relay makes sequences visible in increasing order,
so polling by offset never skips an event), sends a ``: heartbeat`` comment after
``NEXA_SSE_HEARTBEAT_SECONDS`` of silence, and ends when the token expires (or is revoked) or the
client goes away (Django cancels the generator on ``http.disconnect``).

Database connections: the view closes its request thread's connection before the stream starts, and
every poll runs on a small dedicated thread pool (``DB_THREADS`` per process) between
``close_old_connections()`` calls, like a request. An open stream therefore holds no connection of its
own: a process's streams share at most ``DB_THREADS`` connections (kept for ``DATABASE_CONN_MAX_AGE``,
as any Django connection), however many streams are open, and cannot exhaust the default executor.
"""

from __future__ import annotations

import asyncio
import functools
import json
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog
from django.conf import settings
from django.db import DatabaseError, close_old_connections, connections
from django.db.models import Max
from django.db.models.functions import Now
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from redis.exceptions import RedisError
from rest_framework.renderers import BaseRenderer

from cases import selectors
from cases.events import case_room
from nexa.platform.auth import Principal, standing
from nexa.platform.events import client_event_names
from nexa.platform.inputs import strict_int_or_none
from nexa.platform.models import OutboxEvent
from nexa.platform.problems import Problem, validation_problem
from nexa.platform.roles import MinRole, Role
from nexa.platform.views import NexaAPIView

logger = structlog.get_logger(__name__)

# A stream control event (not an outbox event, no ``id:``): replay could not start where asked.
REPLAY_TRUNCATED = "replay-truncated"
EVENT_STREAM_CONTENT_TYPE = "text/event-stream"
# Rows fetched per poll; a full batch is followed by another poll at once.
POLL_BATCH = 200
_MAX_OFFSET = 2**63 - 1
LAST_EVENT_ID_QUERY_PARAMETER = "lastEventId"
# Threads (hence at most this many database connections) per process serving every stream's polls.
# One poll is an index range scan of ~1 ms, so 4 threads keep up with thousands of streams at 0.25 s.
DB_THREADS = 4

_db_executor: ThreadPoolExecutor | None = None
_db_executor_lock = threading.Lock()


def _db_pool() -> ThreadPoolExecutor:
    """Created on first use, so each (possibly forked) server process gets its own."""
    global _db_executor
    with _db_executor_lock:
        if _db_executor is None:
            _db_executor = ThreadPoolExecutor(max_workers=DB_THREADS, thread_name_prefix="nexa-sse-db")
        return _db_executor


async def _in_db_thread[T](function: Callable[..., T], *args) -> T:
    """Run ``function(*args)`` on the stream pool. If the awaiting stream is cancelled, the call still
    finishes (and returns its connection) in its thread."""
    return await asyncio.get_running_loop().run_in_executor(_db_pool(), functools.partial(function, *args))


class EventStreamRenderer(BaseRenderer):
    """Lets DRF's content negotiation accept ``Accept: text/event-stream`` (what EventSource sends).

    The view answers a :class:`StreamingHttpResponse` itself, so this renderer only ever renders
    what DRF hands a renderer for a non-problem body, which this route does not produce.
    """

    media_type = EVENT_STREAM_CONTENT_TYPE
    format = "event-stream"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        return b"" if data is None else f": {json.dumps(data, separators=(',', ':'))}\n\n".encode()


# --- the stream's database side (sync; each call runs in a pool thread) ----------------------------


@dataclass(frozen=True, slots=True)
class StreamEvent:
    sequence: int
    event: str
    payload: dict

    def encode(self) -> str:
        # json.dumps escapes newlines, so the payload is always exactly one ``data:`` line.
        data = json.dumps(self.payload, separators=(",", ":"), ensure_ascii=False)
        return f"id: {self.sequence}\nevent: {self.event}\ndata: {data}\n\n"


def _retention_cutoff():
    return Now() - timedelta(seconds=settings.NEXA_SSE_RETENTION_SECONDS)


def _room_events(room: str):
    # Only the registry's ``client`` events (spec 000's server events) leave the server; internal ones
    # such as ``operator:deactivated`` may share a room but never reach a client.
    return OutboxEvent.objects.filter(rooms__contains=[room], event__in=client_event_names(), sequence__isnull=False)


def _fetch_after(room: str, after: int, limit: int) -> list[StreamEvent]:
    """Delivered public events of ``room`` with a sequence above ``after``, within the retention window,
    in sequence order. Runs like a request: stale or broken connections are closed before and after."""
    close_old_connections()
    try:
        rows = (
            _room_events(room)
            .filter(sequence__gt=after, dispatched_at__gte=_retention_cutoff())
            .order_by("sequence")
            .values_list("sequence", "event", "payload")[:limit]
        )
        return [StreamEvent(sequence=sequence, event=event, payload=payload) for sequence, event, payload in rows]
    finally:
        close_old_connections()


def _stream_head() -> int:
    """The highest sequence delivered so far (0 on an empty outbox)."""
    return OutboxEvent.objects.aggregate(head=Max("sequence"))["head"] or 0


@dataclass(frozen=True, slots=True)
class StreamStart:
    after: int
    truncated: dict | None = None


def _stream_start(room: str, last_event_id: int | None) -> StreamStart:
    """Where the stream starts: after ``last_event_id`` (replay) or after the current head (live only).

    A ``Last-Event-ID`` whose successors have partly left the retention window, or one ahead of the
    stream (another environment, a reset database), still gets a stream, announced as truncated."""
    head = _stream_head()
    if last_event_id is None:
        return StreamStart(after=head)
    if last_event_id > head:
        return StreamStart(
            after=head,
            truncated={
                "reason": "unknown-offset",
                "lastEventId": str(last_event_id),
                "resumedAfter": str(head),
                "detail": "Last-Event-ID is ahead of the stream; refetch the case and continue from here.",
            },
        )
    expired = _room_events(room).filter(sequence__gt=last_event_id, dispatched_at__lt=_retention_cutoff())
    newest_expired = expired.aggregate(newest=Max("sequence"))["newest"]
    if newest_expired is None:
        return StreamStart(after=last_event_id)
    return StreamStart(
        after=last_event_id,
        truncated={
            "reason": "retention",
            "lastEventId": str(last_event_id),
            "resumedAfter": str(newest_expired),
            "retentionSeconds": settings.NEXA_SSE_RETENTION_SECONDS,
            "detail": "Events after Last-Event-ID are older than the retention window and are not replayed; "
            "refetch the case and continue from here.",
        },
    )


# --- the stream itself ------------------------------------------------------------------------------


def _comment(text: str) -> str:
    return f": {text}\n\n"


async def event_stream(
    *, principal: Principal, case_urn: str, start: StreamStart, token_expires_at: datetime
) -> AsyncIterator[str]:
    """The SSE body: replay, then live events, heartbeats, until token expiry or disconnect."""
    room = case_room(case_urn)
    poll_seconds = settings.NEXA_SSE_POLL_SECONDS
    heartbeat_seconds = settings.NEXA_SSE_HEARTBEAT_SECONDS
    # Token expiry as a monotonic deadline (wall-clock jumps neither shorten nor extend the stream).
    expires_at = time.monotonic() + (token_expires_at - datetime.now(UTC)).total_seconds()
    log = logger.bind(case_urn=case_urn, operator_urn=principal.operator_urn, airline=principal.airline)
    last = start.after
    sent = 0
    reason = "client-disconnected"
    log.info("event_stream.opened", after=last)
    try:
        opening = _comment(f"nexa event stream for {case_urn}")
        if start.truncated is not None:
            opening += _comment(f"replay truncated ({start.truncated['reason']}): {start.truncated['detail']}")
            opening += f"event: {REPLAY_TRUNCATED}\ndata: {json.dumps(start.truncated, separators=(',', ':'))}\n\n"
        yield opening
        next_heartbeat = time.monotonic() + heartbeat_seconds
        # The caller's standing (token not revoked, operator not deactivated) is re-checked this often,
        # whether events flow or not.
        next_check = next_heartbeat
        while True:
            if time.monotonic() >= next_check:
                refusal = await _refusal(principal, log)
                if refusal is not None:
                    reason = refusal
                    yield _comment(refusal.replace("-", " "))
                    return
                next_check = time.monotonic() + heartbeat_seconds
            if time.monotonic() >= expires_at:
                reason = "token-expired"
                yield _comment("token expired; reconnect with a fresh token and Last-Event-ID")
                return
            try:
                events = await _in_db_thread(_fetch_after, room, last, POLL_BATCH)
            except DatabaseError:
                log.warning("event_stream.poll_failed", exc_info=True)
                reason = "database-unavailable"
                yield _comment("temporarily unavailable; reconnect with Last-Event-ID")
                return
            if events:
                last = events[-1].sequence
                sent += len(events)
                yield "".join(event.encode() for event in events)
                next_heartbeat = time.monotonic() + heartbeat_seconds
                if len(events) == POLL_BATCH:
                    continue  # more are waiting: no sleep
            now = time.monotonic()
            if now >= next_heartbeat:
                yield _comment("heartbeat")
                now = time.monotonic()
                next_heartbeat = now + heartbeat_seconds
            await asyncio.sleep(max(0.0, min(poll_seconds, next_heartbeat - now, next_check - now, expires_at - now)))
    finally:
        # Also reached on cancellation (client disconnect) and on GeneratorExit (aclose()).
        log.info("event_stream.closed", reason=reason, events_sent=sent, last_event_id=last)


def _standing_sync(principal: Principal) -> str | None:
    """Revoked token or deactivated operator (one Redis round trip; a database query only in rare
    cases, so connections are handled as in :func:`_fetch_after`)."""
    close_old_connections()
    try:
        checked = standing(
            token_ids=[principal.token_id] if principal.token_id else [],
            pairs=[(principal.airline, principal.operator_urn)],
        )
    finally:
        close_old_connections()
    if checked.revoked:
        return "token-revoked"
    if checked.refused:
        return "operator-deactivated"
    return None


async def _refusal(principal: Principal, log) -> str | None:
    """Why the stream must end now (token revoked, operator deactivated), else None. Fails open on a
    Redis or database hiccup: the token was verified at connect time, and a blip must not end every
    open stream at once (new connections are refused meanwhile)."""
    try:
        return await _in_db_thread(_standing_sync, principal)
    except (RedisError, DatabaseError):
        log.warning("event_stream.standing_check_failed", exc_info=True)
        return None


# --- the view ---------------------------------------------------------------------------------------


def _last_event_id(request) -> int | None:
    """``Last-Event-ID`` header (what EventSource sends on reconnect), else ``?lastEventId=``."""
    raw = request.META.get("HTTP_LAST_EVENT_ID")
    field = "Last-Event-ID"
    if raw is None or not raw.strip():
        raw = request.query_params.get(LAST_EVENT_ID_QUERY_PARAMETER)
        field = LAST_EVENT_ID_QUERY_PARAMETER
    if raw is None or not raw.strip():
        return None
    offset = strict_int_or_none(raw.strip(), minimum=0, maximum=_MAX_OFFSET)  # "²", "٣", 10**30: None
    if offset is None:
        raise validation_problem(
            [{"field": field, "message": "must be the id: of an event from this stream (a non-negative integer)"}]
        )
    return offset


class CaseEventStreamView(NexaAPIView):
    """Server-Sent Events of one case (issue 4 § Events for REST clients, adopted from spec 003)."""

    permission_classes = [MinRole(Role.AIRPORT_OPERATOR)]
    renderer_classes = [EventStreamRenderer]

    @extend_schema(
        operation_id="cases_events_stream",
        summary="The case's events as Server-Sent Events",
        description=(
            "`text/event-stream` of the case's `case:updated`, `subcase:state-changed`, `graph:step:*` and "
            "`notification:dispatched` events: `id:` is the stream offset, `event:` the name, `data:` the JSON "
            "payload. A `: heartbeat` comment every 15 s of silence. Send `Last-Event-ID` (or `?lastEventId=`) "
            "to replay later events within the retention window (1 h). The stream ends when the token expires. "
            "See docs/event-stream.md."
        ),
        parameters=[
            OpenApiParameter("case_urn", OpenApiTypes.STR, OpenApiParameter.PATH, description="urn:nexa:case:<uuid>"),
            OpenApiParameter(
                "Last-Event-ID",
                {"type": "string", "pattern": r"^[\s\x1c-\x1f]*[0-9]{0,18}[\s\x1c-\x1f]*$"},
                OpenApiParameter.HEADER,
                description="Resume after this offset.",
            ),
            OpenApiParameter(
                LAST_EVENT_ID_QUERY_PARAMETER,
                {"type": "string", "pattern": r"^[\s\x1c-\x1f]*[0-9]{0,18}[\s\x1c-\x1f]*$"},
                description="Same as the Last-Event-ID header (for EventSource polyfills); the header wins.",
            ),
        ],
        responses={200: OpenApiResponse(OpenApiTypes.STR, description="text/event-stream")},
    )
    def get(self, request, case_urn: str):
        principal: Principal = request.auth
        case = selectors.case_get(principal=principal, case_urn=case_urn)
        last_event_id = _last_event_id(request)
        if principal.expires_at is None or principal.expires_at <= datetime.now(UTC):
            # Accepted within the clock-skew leeway, but a stream would end at once: make the client refresh.
            raise Problem(
                status=401,
                slug="unauthorized",
                title="Authentication required",
                detail="The token has expired; an event stream needs a token that is still valid.",
                headers={"WWW-Authenticate": 'Bearer realm="nexa"'},
            )
        try:
            # Decided before the response so an event committed right after the client sees the headers
            # is never missed.
            start = _stream_start(case_room(case.urn), last_event_id)
        finally:
            # This request thread would otherwise keep its connection for the whole stream.
            connections.close_all()
        response = StreamingHttpResponse(
            event_stream(principal=principal, case_urn=case.urn, start=start, token_expires_at=principal.expires_at),
            content_type=EVENT_STREAM_CONTENT_TYPE,
        )
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"
        return response
