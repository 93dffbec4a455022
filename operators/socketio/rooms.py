"""Socket.IO rooms and the channel-layer groups behind them.

Rooms are the outbox's room names (``case:<case_urn>``, ``airline:<IATA>``), named by the event registry
(nexa/platform/events.py), which also says which events go to which kind of room: the airline room
carries ``case:updated`` only; a case room carries that case's events.
Channel-layer group names allow only ASCII letters, digits, ``-``, ``_`` and ``.``, shorter than 100
characters, so :func:`group_for` maps a room to a group name one-to-one:

* a room made of letters, digits, ``-``, ``_`` and ``:`` (every room we publish) becomes
  ``sio.`` + the room with ``:`` → ``.`` (readable in ``redis-cli``: ``sio.case.urn.nexa.case.<id>``);
* anything else, or a too long name, becomes ``sio_h.`` + a SHA-256 prefix (``sio_h.`` cannot be the
  start of a readable name, which always begins with ``sio.``).
"""

import hashlib
import re

from nexa.platform.events import AIRLINE_ROOM_PREFIX, CASE_ROOM_PREFIX, airline_room, case_room

_READABLE = re.compile(r"^[A-Za-z0-9_:-]+$")
_MAX_GROUP_LENGTH = 99  # channel layers refuse names of 100 characters or more

__all__ = ["AIRLINE_ROOM_PREFIX", "CASE_ROOM_PREFIX", "airline_room", "case_room", "group_for"]


def group_for(room: str) -> str:
    """The channel-layer group of a Socket.IO room (stable across processes and releases)."""
    readable = "sio." + room.replace(":", ".")
    if _READABLE.match(room) and len(readable) <= _MAX_GROUP_LENGTH:
        return readable
    return "sio_h." + hashlib.sha256(room.encode()).hexdigest()[:48]
