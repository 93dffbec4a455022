"""Engine.IO v4 / Socket.IO v5 frames, encoded and decoded with python-engineio's and python-socketio's
packet classes (nothing is hand-parsed). One packet per WebSocket frame; text frames only.

Outgoing frames are plain strings ready for ``websocket.send``; incoming frames become a
:class:`Frame` or raise :class:`ProtocolError`, which the consumer answers by closing that socket.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from engineio import packet as eio
from socketio import packet as sio

from nexa.platform.events import client_event_names, is_client_event

DEFAULT_NAMESPACE = "/"

# WebSocket close codes used by the channel (docs/presence-channel.md § Close codes).
CLOSE_NORMAL = 1000
CLOSE_UNSUPPORTED_DATA = 1003  # binary frame
CLOSE_PROTOCOL_ERROR = 1008  # malformed or unexpected packet
CLOSE_TOO_BIG = 1009  # frame above maxPayload
CLOSE_TRY_AGAIN = 1013  # a dependency (Redis) is unavailable: reconnect later
CLOSE_UNAUTHORIZED = 4401  # bad, expired or revoked token; deactivated operator
CLOSE_TIMEOUT = 4408  # no CONNECT in time, or a missed pong
CLOSE_FLOOD = 4429  # kept sending over its event budget

UNAUTHORIZED = {"message": "unauthorized", "data": {"code": CLOSE_UNAUTHORIZED}}


def server_events() -> frozenset[str]:
    """The server events of spec 000 — the only outbox events forwarded to clients (and replayed): the
    events declared with audience ``client`` in the event registry (nexa/platform/events.py)."""
    return client_event_names()


def is_server_event(name: str) -> bool:
    return is_client_event(name)


# Internal events the consumer acts on and never forwards (operators/events.py).
OPERATOR_DEACTIVATED = "operator:deactivated"


class ProtocolError(Exception):
    """The frame is not a packet this server accepts; the socket is closed with ``close_code``."""

    def __init__(self, message: str, *, close_code: int = CLOSE_PROTOCOL_ERROR) -> None:
        super().__init__(message)
        self.close_code = close_code


def new_id() -> str:
    """An Engine.IO / Socket.IO id: 20 URL-safe characters (120 random bits)."""
    return secrets.token_urlsafe(15)


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded frame: the Engine.IO type and, for MESSAGE, the Socket.IO packet inside it."""

    eio_type: int
    sio_packet: sio.Packet | None = None
    eio_data: Any = None


_EIO_TYPES = frozenset({eio.OPEN, eio.CLOSE, eio.PING, eio.PONG, eio.MESSAGE, eio.UPGRADE, eio.NOOP})
_SIO_TYPES = frozenset({sio.CONNECT, sio.DISCONNECT, sio.EVENT, sio.ACK, sio.CONNECT_ERROR})


def decode(text: str) -> Frame:
    """Decode one text frame. Binary (and base64 ``b…``) messages, unknown packet types, malformed
    JSON and Socket.IO binary packets raise :class:`ProtocolError`."""
    if text[:1] == "b":  # Engine.IO's base64 binary message
        raise ProtocolError("binary packets are not accepted", close_code=CLOSE_UNSUPPORTED_DATA)
    if not text or not text[0].isdigit():
        raise ProtocolError("not an Engine.IO packet")
    try:
        packet = eio.Packet(encoded_packet=text)
    except (ValueError, TypeError, IndexError) as exc:
        raise ProtocolError(f"malformed Engine.IO packet: {exc}") from None
    if packet.packet_type not in _EIO_TYPES:
        raise ProtocolError(f"unknown Engine.IO packet type {packet.packet_type}")
    if packet.binary:
        raise ProtocolError("binary packets are not accepted", close_code=CLOSE_UNSUPPORTED_DATA)
    if packet.packet_type != eio.MESSAGE:
        return Frame(eio_type=packet.packet_type, eio_data=packet.data)
    if not isinstance(packet.data, str) or not packet.data or not packet.data[0].isdigit():
        raise ProtocolError("not a Socket.IO packet")
    try:
        message = sio.Packet(encoded_packet=packet.data)
    except (ValueError, TypeError, IndexError, RecursionError) as exc:
        raise ProtocolError(f"malformed Socket.IO packet: {exc}") from None
    if message.attachment_count or message.packet_type in (sio.BINARY_EVENT, sio.BINARY_ACK):
        raise ProtocolError("binary packets are not accepted", close_code=CLOSE_UNSUPPORTED_DATA)
    if message.packet_type not in _SIO_TYPES:
        raise ProtocolError(f"unsupported Socket.IO packet type {message.packet_type}")
    return Frame(eio_type=eio.MESSAGE, sio_packet=message)


# --- outgoing -------------------------------------------------------------------------------------


def _message(packet: sio.Packet) -> str:
    return eio.Packet(eio.MESSAGE, data=packet.encode()).encode()


def open_frame(*, sid: str, ping_interval_ms: int, ping_timeout_ms: int, max_payload: int) -> str:
    """The Engine.IO open packet: ``0{"sid",...,"upgrades":[]}`` (WebSocket only, nothing to upgrade to)."""
    return eio.Packet(
        eio.OPEN,
        data={
            "sid": sid,
            "upgrades": [],
            "pingInterval": ping_interval_ms,
            "pingTimeout": ping_timeout_ms,
            "maxPayload": max_payload,
        },
    ).encode()


def ping_frame() -> str:
    return eio.Packet(eio.PING).encode()


def pong_frame(data: Any = None) -> str:
    return eio.Packet(eio.PONG, data=data).encode()


def connect_frame(*, sid: str, pid: str) -> str:
    """Socket.IO CONNECT reply: ``40{"sid","pid"}`` (``pid`` enables connection-state recovery)."""
    return _message(sio.Packet(sio.CONNECT, data={"sid": sid, "pid": pid}, binary=False))


def connect_error_frame(data: dict[str, Any], namespace: str | None = None) -> str:
    return _message(sio.Packet(sio.CONNECT_ERROR, data=data, namespace=namespace, binary=False))


def disconnect_frame() -> str:
    """Socket.IO DISCONNECT (``41``): both official clients stop without reconnecting."""
    return _message(sio.Packet(sio.DISCONNECT, binary=False))


def event_frame(event: str, *args: Any) -> str:
    """``42["event", ...args]``."""
    return _message(sio.Packet(sio.EVENT, data=[event, *args], binary=False))


def ack_frame(ack_id: int, *args: Any) -> str:
    """``43<id>[...args]`` — the answer to an event sent with an ack callback."""
    return _message(sio.Packet(sio.ACK, data=list(args), id=ack_id, binary=False))


def offset_event_frame(event: str, payload: dict[str, Any], sequence: int) -> str:
    """A server event: ``42["<event>", payload, "<offset>"]`` — the outbox stream sequence as a string last
    argument, which socket.io-client keeps as ``_lastOffset`` for connection-state recovery."""
    return event_frame(event, payload, str(sequence))
