"""Fan-out of committed outbox events to Socket.IO rooms (registered as an outbox sink at start-up).

The outbox relay (nexa/platform/outbox.py) hands every committed event to :func:`fan_out`, in whichever
process committed it (web, Celery worker, management command, test) and synchronously inside the relay's
transaction, in stream-sequence order. :func:`fan_out` sends one channel-layer message per room of the
event to that room's group (operators/socketio/rooms.py); every ASGI process's consumers in those groups
get it and write it to their sockets. Nothing here touches the database.

* Server events of spec 000 (the registry's ``client`` events, nexa/platform/events.py) are encoded
  **once** here, as the finished frame
  ``42["<event>", payload, "<offset>"]``, so a consumer only forwards a string.
* ``operator:deactivated`` (internal) carries its payload; consumers close that operator's sockets.
* Other events are not sent to the channel layer at all.

Rooms are the registry's: ``case:updated`` goes to ``[case:<urn>, airline:<IATA>]``, every other case
event to ``[case:<urn>]`` only (sockets get those after ``subscribe``). Every socket is in its airline
room, so an event for ``[case:<urn>, airline:<IATA>]`` is sent to the airline group only
(:func:`target_rooms`). A socket that still gets an event twice (two rooms, or an
outbox redelivery) drops the copy: the consumer remembers the sequences it delivered.

Sending happens on one event loop per process, in a daemon thread that owns its own channel-layer
instance: sinks run in plain threads (Django's sync worker threads, Celery, commands) where each
``async_to_sync`` call would otherwise spin up a fresh event loop and Redis connection. A send that
fails or takes longer than ``SEND_TIMEOUT_SECONDS`` raises, so the outbox keeps the row and delivers it
again (at-least-once; the consumer's sequence check drops the duplicate).
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Sequence
from typing import Any

from channels.layers import DEFAULT_CHANNEL_LAYER, channel_layers

from nexa.platform.outbox import Delivery, register_sink
from operators.socketio.protocol import OPERATOR_DEACTIVATED, is_server_event, offset_event_frame
from operators.socketio.rooms import CASE_ROOM_PREFIX, airline_room, group_for

SEND_TIMEOUT_SECONDS = 2.0
MESSAGE_TYPE = "sio.event"  # handled by SocketIOConsumer.sio_event


class _Publisher:
    """One event loop thread per process that sends to the channel layer on behalf of sync code."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._layer = None
        self._pid: int | None = None

    def _ensure_started(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            # A forked child (Celery prefork) inherits the object but not the thread: start again.
            if self._loop is None or self._pid != os.getpid():
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="nexa-socketio-publisher", daemon=True)
                thread.start()
                self._layer = channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)
                self._loop, self._pid = loop, os.getpid()
            return self._loop

    async def _send(self, groups: Sequence[str], message: dict[str, Any]) -> None:
        await asyncio.gather(*(self._layer.group_send(group, message) for group in groups))

    @staticmethod
    async def _send_once(groups: Sequence[str], message: dict[str, Any]) -> None:
        layer = channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)
        try:
            sends = asyncio.gather(*(layer.group_send(group, message) for group in groups))
            await asyncio.wait_for(sends, SEND_TIMEOUT_SECONDS)
        finally:
            # Close its connections: the core layer has close_pools (its flush would delete everyone's
            # messages); the pub/sub layer's flush only closes its connections.
            close = getattr(layer, "close_pools", None) or layer.flush
            await close()

    def send(self, groups: Sequence[str], message: dict[str, Any]) -> None:
        try:
            loop = self._ensure_started()
        except RuntimeError:
            # Interpreter shutdown (the last events of a short-lived command, relayed at exit): no new
            # threads may start, so send from this thread on a loop and channel layer of its own.
            asyncio.run(self._send_once(groups, message))
            return
        future = asyncio.run_coroutine_threadsafe(self._send(groups, message), loop)
        try:
            future.result(timeout=SEND_TIMEOUT_SECONDS)
        except TimeoutError:
            future.cancel()
            raise


_publisher = _Publisher()


def channel_message(delivery: Delivery) -> dict[str, Any] | None:
    """The channel-layer message for a delivery, or None when sockets have no use for it."""
    if is_server_event(delivery.event):
        return {
            "type": MESSAGE_TYPE,
            "event": delivery.event,
            "seq": delivery.sequence,
            "frame": offset_event_frame(delivery.event, delivery.payload, delivery.sequence),
        }
    if delivery.event == OPERATOR_DEACTIVATED:
        return {"type": MESSAGE_TYPE, "event": delivery.event, "seq": delivery.sequence, "payload": delivery.payload}
    return None


def target_rooms(delivery: Delivery) -> list[str]:
    """The rooms to send to. Every socket is in its airline's room and only ever joins case rooms of its
    own airline, so when an event goes to its airline's room, its case rooms add nobody: they are left
    out (half the channel-layer traffic for the usual ``[case:<urn>, airline:<IATA>]``)."""
    rooms = list(dict.fromkeys(delivery.rooms))
    if delivery.airline and airline_room(delivery.airline) in rooms:
        rooms = [room for room in rooms if not room.startswith(CASE_ROOM_PREFIX)]
    return rooms


def fan_out(delivery: Delivery) -> None:
    """The outbox sink: send ``delivery`` to the channel-layer group of each of its rooms."""
    message = channel_message(delivery)
    if message is None or not delivery.rooms:
        return
    _publisher.send([group_for(room) for room in target_rooms(delivery)], message)


register_sink(fan_out)
