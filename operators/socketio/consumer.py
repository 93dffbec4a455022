"""The Socket.IO consumer at ``/ws/cases`` (ARCHITECTURE §4; the contract is in docs/presence-channel.md).

Life of a socket:

1. ``GET /ws/cases[/]?EIO=4&transport=websocket`` is accepted (anything else is refused before the
   upgrade) and answered with the Engine.IO open packet. From then on the server pings every
   ``pingInterval`` and closes the socket (4408) when a pong is later than ``pingTimeout``, or when no
   Socket.IO CONNECT arrives within ``NEXA_SOCKET_CONNECT_TIMEOUT_SECONDS``.
2. CONNECT carries ``{token}`` (and ``{pid, offset}`` when socket.io-client recovers a session). The token
   goes through the REST validator; a failure, or a deactivated operator, is answered with CONNECT_ERROR
   ``{"message": "unauthorized", "data": {"code": 4401}}`` and the socket is closed with 4401. On success
   the operator session is opened (operators.services), the socket joins its airline room (plus its
   recovered rooms), the CONNECT reply ``{sid, pid}`` goes out, then any replayed events.
3. ``subscribe`` / ``unsubscribe`` ``{caseUrn}`` join and leave case rooms (tenant-checked with
   cases.selectors.case_get); an optional ack callback gets ``{ok: true}`` or ``{ok: false, error}``, and a
   refusal also sends an ``error`` event. Events are budgeted per socket (token bucket).
4. Outbox events arrive as channel-layer messages (operators/realtime.py) and are written as they come,
   once each (a socket in two of an event's rooms gets two copies; the sequence check drops one).
5. When the token expires, is revoked or the operator is deactivated (both checked every ping cycle,
   besides the ``operator:deactivated`` event), the socket gets a Socket.IO DISCONNECT and is closed
   with 4401.
6. On close, for any reason: the operator session is closed at once — the operators service releases
   the operator's locks when it was their last socket, and watchers get ``lockedBy: null`` — and the
   socket's rooms are kept for recovery (operators/socketio/replay.py).

Bad input (binary frames, oversized frames, unknown packet types, malformed JSON, events before CONNECT)
closes that socket only; see protocol.py for the close codes.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import structlog
from asgiref.sync import sync_to_async
from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from engineio import packet as eio
from socketio import packet as sio

from cases import selectors as case_selectors
from nexa.platform.auth import InvalidToken, Principal, authenticate_token, standing
from nexa.platform.problems import Problem
from nexa.platform.urns import InvalidUrn
from operators import services as operator_services
from operators.socketio import protocol, replay
from operators.socketio.protocol import OPERATOR_DEACTIVATED, ProtocolError
from operators.socketio.rooms import AIRLINE_ROOM_PREFIX, CASE_ROOM_PREFIX, airline_room, case_room, group_for

logger = structlog.get_logger(__name__)

SERVER_INSTANCE = f"{socket.gethostname()}:{os.getpid()}"[:255]
MAX_CASE_URN_LENGTH = 255
RECENT_SEQUENCES = 512  # how many delivered sequences a socket remembers to drop duplicates


def _db(function: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
    """Run database code in a worker thread of the loop's pool (not Django's single "sync" thread, which
    HTTP views share), releasing the connection afterwards."""
    return database_sync_to_async(function, thread_sensitive=False)


def _off_loop(function: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
    """Run blocking non-database code (Redis, JWT verification) in a worker thread."""
    return sync_to_async(function, thread_sensitive=False)


def _config() -> dict[str, Any]:
    return {
        "ping_interval": settings.NEXA_SOCKET_PING_INTERVAL_MS / 1000,
        "ping_timeout": settings.NEXA_SOCKET_PING_TIMEOUT_MS / 1000,
        "connect_timeout": float(settings.NEXA_SOCKET_CONNECT_TIMEOUT_SECONDS),
        "max_payload": int(settings.NEXA_SOCKET_MAX_PAYLOAD),
        "max_rooms": int(settings.NEXA_SOCKET_MAX_ROOMS),
        "burst": int(settings.NEXA_SOCKET_EVENT_BURST),
        "rate": float(settings.NEXA_SOCKET_EVENT_RATE),
        "flood_close_after": int(settings.NEXA_SOCKET_FLOOD_CLOSE_AFTER),
    }


# --- the per-process heartbeat --------------------------------------------------------------------


def _heartbeat_sync(
    *, session_ids: list[str], token_ids: list[str], principals: list[tuple[str, str]]
) -> tuple[set[str], set[tuple[str, str]]]:
    """Touch the sessions (renewing their operators' leases); return the revoked token ids and the
    (airline, operator URN) of deactivated operators (one cheap indexed check for all of them)."""
    operator_services.operator_sessions_touch(session_ids=session_ids)
    checked = standing(token_ids=token_ids, pairs=principals)  # one Redis round trip for all sockets
    return checked.revoked, checked.refused


class ChannelLayerUnavailable(Exception):
    """Joining a channel-layer group failed (Redis unreachable or its connection pool exhausted)."""


class LiveSockets:
    """The authenticated sockets of this process. One task per process runs every ping interval: it
    touches all their operator sessions in one statement and checks their tokens for revocation."""

    def __init__(self) -> None:
        self._sockets: dict[str, SocketIOConsumer] = {}
        self._task: asyncio.Task | None = None

    def __len__(self) -> int:
        return len(self._sockets)

    def add(self, consumer: SocketIOConsumer) -> None:
        self._sockets[consumer.sid] = consumer
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    def discard(self, consumer: SocketIOConsumer) -> None:
        if self._sockets.get(consumer.sid) is consumer:
            del self._sockets[consumer.sid]

    async def _run(self) -> None:
        while self._sockets:
            await asyncio.sleep(settings.NEXA_SOCKET_PING_INTERVAL_MS / 1000)
            sockets = list(self._sockets.values())
            if not sockets:
                break
            token_ids = sorted({c.principal.token_id for c in sockets if c.principal and c.principal.token_id})
            principals = sorted({(c.principal.airline, c.principal.operator_urn) for c in sockets if c.principal})
            try:
                revoked, refused = await _db(_heartbeat_sync)(
                    session_ids=[c.sid for c in sockets], token_ids=token_ids, principals=principals
                )
            except Exception:  # a failed beat is logged; the next one tries again
                logger.exception("socketio.heartbeat_failed", sockets=len(sockets))
                continue
            for consumer in sockets:
                if consumer.principal and consumer.principal.token_id in revoked:
                    consumer.kick("token revoked")
                elif consumer.principal and (consumer.principal.airline, consumer.principal.operator_urn) in refused:
                    consumer.kick("operator deactivated")


live_sockets = LiveSockets()


# --- the consumer ---------------------------------------------------------------------------------


class SocketIOConsumer(AsyncWebsocketConsumer):
    """One Engine.IO / Socket.IO connection on the WebSocket transport, default namespace only."""

    async def __call__(self, scope, receive, send) -> None:
        # Channels ends a consumer without websocket.disconnect when its channel-layer receive raises (seen
        # with RedisChannelLayer: "Timeout reading from Redis" under load). The cleanup (session close,
        # lock release, recovery state) must run anyway.
        self.cleaned_up = False
        try:
            await super().__call__(scope, receive, send)
        finally:
            if not self.cleaned_up and hasattr(self, "sid"):
                logger.warning("socketio.consumer_ended_abnormally", sid=self.sid)
                await self.disconnect(1011)

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Channels' dispatch without its per-message ``aclose_old_connections()``.

        Channels hops to Django's single "sync" thread (``sync_to_async(close_old_connections)``) before
        *every* message a consumer handles: each frame in, each pong, and each channel-layer event. A fan-out
        to 1 000 sockets of a process was 1 000 hops queued on that one thread, which HTTP views share
        (docs/benchmarks.md § Presence channel). This consumer never uses a database connection on the
        event loop or the sync thread: all its database work goes through ``_db``
        (``database_sync_to_async``), which closes old connections around each call in its worker thread.
        """
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def connect(self) -> None:
        self.config = _config()
        self.sid = protocol.new_id()
        self.pid = ""
        self.principal: Principal | None = None
        self.session_open = False
        self.rooms: set[str] = set()
        self.recent: deque[int] = deque(maxlen=RECENT_SEQUENCES)
        self.recent_set: set[int] = set()
        self.floor = 0  # sequences at or below it were replayed (or predate the recovery offset)
        self.closing = False
        self.pong = asyncio.Event()
        self.tokens = float(self.config["burst"])
        self.tokens_at = time.monotonic()
        self.refused_in_a_row = 0
        self.tasks: list[asyncio.Task] = []

        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        if query.get("EIO") != ["4"] or query.get("transport") != ["websocket"] or "sid" in query:
            await self.close()  # before accept: the upgrade is refused with 403
            return
        await self.accept()
        await self.send(
            text_data=protocol.open_frame(
                sid=protocol.new_id(),
                ping_interval_ms=settings.NEXA_SOCKET_PING_INTERVAL_MS,
                ping_timeout_ms=settings.NEXA_SOCKET_PING_TIMEOUT_MS,
                max_payload=self.config["max_payload"],
            )
        )
        self.tasks.append(asyncio.create_task(self._ping_loop()))
        self.connect_timer = asyncio.create_task(self._close_without_connect())
        self.tasks.append(self.connect_timer)

    # --- timers ---

    async def _ping_loop(self) -> None:
        while not self.closing:
            await asyncio.sleep(self.config["ping_interval"])
            self.pong.clear()
            await self.send(text_data=protocol.ping_frame())
            try:
                await asyncio.wait_for(self.pong.wait(), timeout=self.config["ping_timeout"])
            except TimeoutError:
                await self.terminate(protocol.CLOSE_TIMEOUT, "ping timeout")
                return

    async def _close_without_connect(self) -> None:
        await asyncio.sleep(self.config["connect_timeout"])
        if self.principal is None:
            await self.terminate(protocol.CLOSE_TIMEOUT, "no CONNECT")

    async def _kick_at(self, expires_at: datetime) -> None:
        await asyncio.sleep(max(0.0, (expires_at - datetime.now(UTC)).total_seconds()))
        await self._kick("token expired")

    def kick(self, reason: str) -> None:
        """Disconnect this socket with 4401 (callable from other tasks of the same loop)."""
        self.tasks.append(asyncio.ensure_future(self._kick(reason)))

    async def _kick(self, reason: str) -> None:
        if self.closing:
            return
        logger.info(
            "socketio.kicked", sid=self.sid, reason=reason, operator=getattr(self.principal, "operator_urn", None)
        )
        await self.send(text_data=protocol.disconnect_frame())
        await self.terminate(protocol.CLOSE_UNAUTHORIZED, reason)

    # Writing to a socket the client has just closed raises (uvicorn: ClientDisconnected, an OSError). Let
    # it propagate and the server ends the consumer silently, *without* websocket.disconnect: no session
    # close, no lock release. So a failed write only marks the socket closing; the server's
    # websocket.disconnect follows and runs the cleanup.

    async def send(self, text_data: str | None = None, bytes_data: bytes | None = None, close: bool = False) -> None:
        try:
            await super().send(text_data=text_data, bytes_data=bytes_data, close=close)
        except OSError:
            self.closing = True

    async def close(self, code: int | None = None, reason: str | None = None) -> None:
        try:
            await super().close(code=code, reason=reason)
        except OSError:
            self.closing = True

    async def terminate(self, code: int, reason: str = "") -> None:
        """Close the WebSocket once; the server then delivers ``websocket.disconnect`` (cleanup)."""
        if self.closing:
            return
        self.closing = True
        if code not in (protocol.CLOSE_NORMAL, protocol.CLOSE_UNAUTHORIZED):
            logger.info("socketio.closed", sid=self.sid, code=code, reason=reason)
        await self.close(code=code)

    # --- frames in ---

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.closing:
            return
        if text_data is None:
            await self.terminate(protocol.CLOSE_UNSUPPORTED_DATA, "binary frame")
            return
        limit = self.config["max_payload"]
        if len(text_data) > limit or (len(text_data) * 4 > limit and len(text_data.encode()) > limit):
            await self.terminate(protocol.CLOSE_TOO_BIG, "frame above maxPayload")
            return
        try:
            frame = protocol.decode(text_data)
            await self._handle(frame)
        except ProtocolError as error:
            await self.terminate(error.close_code, str(error))

    async def _handle(self, frame: protocol.Frame) -> None:
        if frame.eio_type == eio.PONG:
            self.pong.set()
        elif frame.eio_type == eio.PING:  # a client probe ("2probe"): answer in kind
            await self.send(text_data=protocol.pong_frame(frame.eio_data))
        elif frame.eio_type == eio.CLOSE:
            await self.terminate(protocol.CLOSE_NORMAL, "client closed")
        elif frame.eio_type == eio.NOOP:
            return
        elif frame.eio_type == eio.MESSAGE:
            await self._handle_packet(frame.sio_packet)
        else:
            raise ProtocolError(f"unexpected Engine.IO packet {eio.packet_names[frame.eio_type]}")

    async def _handle_packet(self, packet: sio.Packet) -> None:
        namespace = packet.namespace or protocol.DEFAULT_NAMESPACE
        if packet.packet_type == sio.CONNECT:
            if self.principal is not None or self.session_open:
                raise ProtocolError("already connected")
            if namespace != protocol.DEFAULT_NAMESPACE:
                await self.send(text_data=protocol.connect_error_frame({"message": "Invalid namespace"}, namespace))
                return
            await self._on_connect(packet.data)
            return
        if self.principal is None:
            raise ProtocolError("packet before CONNECT")
        if namespace != protocol.DEFAULT_NAMESPACE:
            raise ProtocolError("unknown namespace")
        if packet.packet_type == sio.EVENT:
            await self._on_event(packet)
        elif packet.packet_type == sio.DISCONNECT:
            await self.terminate(protocol.CLOSE_NORMAL, "client disconnected")
        elif packet.packet_type == sio.ACK:
            return  # the server never asks for acks; a stray one is harmless
        else:
            raise ProtocolError(f"unexpected Socket.IO packet {sio.packet_names[packet.packet_type]}")

    # --- CONNECT ---

    async def _refuse(self, reason: str) -> None:
        logger.info("socketio.connect_refused", sid=self.sid, reason=reason)
        await self.send(text_data=protocol.connect_error_frame(protocol.UNAUTHORIZED))
        await self.terminate(protocol.CLOSE_UNAUTHORIZED, reason)

    async def _on_connect(self, auth: Any) -> None:
        token = auth.get("token") if isinstance(auth, dict) else None
        if not isinstance(token, str) or not token:
            await self._refuse("no token")
            return
        try:
            # _db: the principal check may (rarely) query the database.
            principal = await _db(authenticate_token)(token)
        except InvalidToken as error:
            await self._refuse(str(error))
            return
        try:
            await _db(operator_services.operator_session_open)(
                principal=principal, session_id=self.sid, server_instance=SERVER_INSTANCE
            )
        except Problem as problem:
            await self._refuse(problem.slug)
            return
        self.session_open = True
        self.principal = principal
        self.connect_timer.cancel()

        recovery = None
        if "pid" in auth:
            recovery = await _off_loop(replay.recover)(
                pid=auth.get("pid"), offset=auth.get("offset"), principal=principal
            )
        rooms = {airline_room(principal.airline)}
        if recovery is not None:
            own_airline = airline_room(principal.airline)
            rooms |= {r for r in recovery.rooms if r.startswith(CASE_ROOM_PREFIX) or r == own_airline}
        try:
            for room in sorted(rooms):
                await self._join(room)
        except ChannelLayerUnavailable:
            await self.send(text_data=protocol.connect_error_frame({"message": "temporarily unavailable"}))
            await self.terminate(protocol.CLOSE_TRY_AGAIN, "channel layer unavailable")
            return
        missed: list[replay.ReplayEvent] = []
        if recovery is not None:
            offset = replay.parse_offset(auth.get("offset")) or 0
            events = await _db(replay.missed_events)(rooms=sorted(rooms), offset=offset)
            if events is None:  # too much to replay: a fresh session (the client refetches)
                recovery = None
                for room in sorted(rooms - {airline_room(principal.airline)}):
                    await self._leave(room)
            else:
                missed = events
                self.floor = max([offset, *(event.sequence for event in events)])

        self.pid = recovery.pid if recovery is not None else protocol.new_id()
        live_sockets.add(self)
        if principal.expires_at is not None:
            self.tasks.append(asyncio.create_task(self._kick_at(principal.expires_at)))
        await self.send(text_data=protocol.connect_frame(sid=self.sid, pid=self.pid))
        for event in missed:
            await self.send(text_data=protocol.offset_event_frame(event.event, event.payload, event.sequence))
        logger.info(
            "socketio.connected",
            sid=self.sid,
            operator=principal.operator_urn,
            airline=principal.airline,
            recovered=recovery is not None,
            replayed=len(missed),
        )

    # --- rooms ---

    async def _join(self, room: str) -> None:
        if room not in self.rooms:
            try:
                await self.channel_layer.group_add(group_for(room), self.channel_name)
            except Exception as error:
                # Redis down or saturated: this socket is told, the consumer (and its cleanup) lives on.
                logger.warning("socketio.group_add_failed", sid=self.sid, room=room, error=repr(error))
                raise ChannelLayerUnavailable from error
            self.rooms.add(room)

    async def _leave(self, room: str) -> None:
        if room in self.rooms:
            self.rooms.discard(room)
            try:
                await self.channel_layer.group_discard(group_for(room), self.channel_name)
            except Exception as error:  # noqa: BLE001 (membership lapses with the layer's group expiry)
                logger.warning("socketio.group_discard_failed", sid=self.sid, room=room, error=repr(error))

    def _take_token(self) -> bool:
        now = time.monotonic()
        self.tokens = min(float(self.config["burst"]), self.tokens + (now - self.tokens_at) * self.config["rate"])
        self.tokens_at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True

    async def _on_event(self, packet: sio.Packet) -> None:
        data = packet.data
        if not isinstance(data, list) or not data or not isinstance(data[0], str):
            raise ProtocolError("an event is a list starting with its name")
        name, args = data[0], data[1:]
        argument = args[0] if args else None
        if not self._take_token():
            self.refused_in_a_row += 1
            if self.refused_in_a_row >= self.config["flood_close_after"]:
                await self.terminate(protocol.CLOSE_FLOOD, "event flood")
                return
            await self._answer(packet.id, name, argument, "rate limited: slow down")
            return
        self.refused_in_a_row = 0
        if name == "subscribe":
            error = await self._subscribe(argument)
        elif name == "unsubscribe":
            error = await self._unsubscribe(argument)
        else:
            error = f"unknown event {name[:100]!r}"
        await self._answer(packet.id, name, argument, error)

    async def _answer(self, ack_id: int | None, name: str, argument: Any, error: str | None) -> None:
        if ack_id is not None:
            await self.send(
                text_data=protocol.ack_frame(ack_id, {"ok": True} if error is None else {"ok": False, "error": error})
            )
        if error is not None:
            body: dict[str, Any] = {"message": error, "event": name[:100]}
            if isinstance(argument, dict) and isinstance(argument.get("caseUrn"), str):
                body["caseUrn"] = argument["caseUrn"][:MAX_CASE_URN_LENGTH]
            await self.send(text_data=protocol.event_frame("error", body))

    @staticmethod
    def _case_urn(argument: Any) -> str | None:
        urn = argument.get("caseUrn") if isinstance(argument, dict) else None
        return urn if isinstance(urn, str) and 0 < len(urn) <= MAX_CASE_URN_LENGTH else None

    async def _subscribe(self, argument: Any) -> str | None:
        urn = self._case_urn(argument)
        if urn is None:
            return "subscribe needs {caseUrn}"
        if case_room(urn) in self.rooms:
            return None
        if sum(room.startswith(CASE_ROOM_PREFIX) for room in self.rooms) >= self.config["max_rooms"]:
            return f"at most {self.config['max_rooms']} case subscriptions per socket"
        try:
            case = await _db(case_selectors.case_get)(principal=self.principal, case_urn=urn)
        except (Problem, InvalidUrn):
            return "case not found"
        try:
            await self._join(case_room(case.urn))
        except ChannelLayerUnavailable:
            return "temporarily unavailable, try again"
        return None

    async def _unsubscribe(self, argument: Any) -> str | None:
        urn = self._case_urn(argument)
        if urn is None:
            return "unsubscribe needs {caseUrn}"
        await self._leave(case_room(urn))
        return None

    # --- events out ---

    async def sio_event(self, message: dict[str, Any]) -> None:
        """A committed outbox event for one of this socket's rooms (from operators/realtime.py)."""
        if self.closing or self.principal is None:
            return
        sequence = message.get("seq")
        if not isinstance(sequence, int) or sequence <= self.floor or sequence in self.recent_set:
            return
        if len(self.recent) == self.recent.maxlen:
            self.recent_set.discard(self.recent[0])
        self.recent.append(sequence)
        self.recent_set.add(sequence)
        if message.get("event") == OPERATOR_DEACTIVATED:
            payload = message.get("payload") or {}
            if payload.get("operatorUrn") == self.principal.operator_urn:
                await self._kick("operator deactivated")
            return
        frame = message.get("frame")
        if isinstance(frame, str):
            await self.send(text_data=frame)

    # --- close ---

    async def disconnect(self, code: int) -> None:
        if self.cleaned_up:
            return
        self.cleaned_up = True
        self.closing = True
        for task in self.tasks:
            if task is not asyncio.current_task():
                task.cancel()
        live_sockets.discard(self)
        if self.session_open:
            self.session_open = False
            try:
                # First, and at once: watchers wait for the lock release this may trigger.
                await _db(operator_services.operator_session_close)(session_id=self.sid)
            except Exception:  # the stale-session sweep closes it later
                logger.exception("socketio.session_close_failed", sid=self.sid)
        kept_rooms = set(self.rooms)
        for room in list(self.rooms):
            await self._leave(room)
        self.rooms = kept_rooms  # remembered for recovery below
        if self.principal is not None and self.pid:
            recoverable = sorted(r for r in self.rooms if r.startswith((CASE_ROOM_PREFIX, AIRLINE_ROOM_PREFIX)))
            try:
                await _off_loop(replay.remember)(pid=self.pid, principal=self.principal, rooms=recoverable)
            except Exception:  # noqa: BLE001 (the client simply does not recover)
                logger.warning("socketio.remember_failed", sid=self.sid)
        logger.info("socketio.disconnected", sid=self.sid, code=code)
