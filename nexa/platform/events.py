"""The event registry: every outbox event is declared once, by the app that owns it (ARCHITECTURE §4).

A declaration (:func:`declare`, called at import of the owning app's ``events.py``; each app's
``AppConfig.ready()`` imports that module, so every process knows every event before it serves) says:

* ``name`` — the event name (``subcase:state-changed``);
* ``payload`` — a :class:`~typing.TypedDict` naming every key and its JSON type. ``NotRequired`` keys
  may be absent; no other key may appear. ``Annotated[str, Urn("subcase")]`` adds a check;
* ``audience`` — :attr:`Audience.CLIENT` (sent on the Socket.IO channel and the SSE stream, spec 000's
  table) or :attr:`Audience.INTERNAL` (consumers and the server only; never leaves it);
* ``rooms`` — the kinds of room the event goes to (:attr:`Room.CASE`: ``case:<caseUrn>`` of the
  payload; :attr:`Room.AIRLINE`: ``airline:<IATA>`` of the publisher's tenant). :func:`rooms_for` builds
  the room names from them, so publishers never spell a room.

What reads it: :func:`nexa.platform.outbox.publish` refuses an undeclared event always, and a payload
that does not match its declaration when ``NEXA_EVENT_SCHEMA_CHECK`` is on (the test suite turns it on;
production leaves it off: a payload bug there must not turn a committed change into a 500). The
Socket.IO fan-out and replay and the SSE stream forward exactly :func:`client_event_names`. The test
helper ``tests.events.capture_events`` checks schema, audience and rooms of what a service published
(the way Zulip's ``verify_action`` checks its events).
"""

from __future__ import annotations

import threading
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any, Literal, NotRequired, Required, TypedDict, Union, get_args, get_origin

from nexa.platform.urns import InvalidUrn, parse_urn

__all__ = [
    "AIRLINE_ROOM_PREFIX",
    "CASE_ROOM_PREFIX",
    "Annotated",
    "Audience",
    "Check",
    "EventPayloadInvalid",
    "EventSpec",
    "NotRequired",
    "Room",
    "TypedDict",
    "UnregisteredEvent",
    "Urn",
    "airline_room",
    "case_room",
    "client_event_names",
    "declare",
    "declared",
    "is_client_event",
    "room_kind",
    "rooms_for",
    "spec_of",
]

CASE_ROOM_PREFIX = "case:"
AIRLINE_ROOM_PREFIX = "airline:"


class Audience(StrEnum):
    CLIENT = "client"  # Socket.IO and SSE clients receive it (spec 000's server events)
    INTERNAL = "internal"  # consumers / the server only


class Room(StrEnum):
    CASE = "case"  # case:<caseUrn>: sockets that subscribed to the case, and the case's SSE stream
    AIRLINE = "airline"  # airline:<IATA>: every socket of the airline (lists, dashboard)


def case_room(case_urn: str) -> str:
    """Operators watching one case (``subscribe {caseUrn}``; ``GET /v1/cases/{urn}/events``)."""
    return f"{CASE_ROOM_PREFIX}{case_urn}"


def airline_room(airline: str) -> str:
    """Every socket of the airline is in this room."""
    return f"{AIRLINE_ROOM_PREFIX}{airline}"


def room_kind(room: str) -> Room | None:
    if room.startswith(CASE_ROOM_PREFIX):
        return Room.CASE
    if room.startswith(AIRLINE_ROOM_PREFIX):
        return Room.AIRLINE
    return None


class UnregisteredEvent(LookupError):
    """``publish`` of an event that no app declared."""


class EventPayloadInvalid(ValueError):
    """A payload that does not match its event's declared schema (with every problem found)."""

    def __init__(self, event: str, errors: list[str]) -> None:
        super().__init__(f"payload of {event!r} does not match its declaration: " + "; ".join(errors))
        self.event = event
        self.errors = errors


@dataclass(frozen=True, slots=True)
class Check:
    """An extra rule on a value, used as ``Annotated[str, Check("an ISO instant", predicate)]``."""

    description: str
    predicate: Callable[[Any], bool]


def Urn(kind: str) -> Check:  # noqa: N802 (reads as a type in annotations)
    """``Annotated[str, Urn("subcase")]``: a ``urn:nexa:subcase:<uuid>``."""

    def is_urn(value: Any) -> bool:
        try:
            parse_urn(value, kind)
        except InvalidUrn:
            return False
        return True

    return Check(f"a urn:nexa:{kind}: URN", is_urn)


@dataclass(frozen=True, slots=True)
class EventSpec:
    name: str
    payload: type
    audience: Audience
    rooms: frozenset[Room] = field(default_factory=frozenset)
    description: str = ""

    @property
    def is_client(self) -> bool:
        return self.audience is Audience.CLIENT

    def errors(self, payload: object) -> list[str]:
        """Every way ``payload`` differs from the declared schema (empty: it matches)."""
        errors: list[str] = []
        _check_typed_dict(self.payload, payload, "payload", errors)
        return errors

    def validate(self, payload: object) -> None:
        errors = self.errors(payload)
        if errors:
            raise EventPayloadInvalid(self.name, errors)

    def rooms_for(self, *, airline: str, case_urn: str | None = None) -> list[str]:
        """The room names of one event: case room first, then the airline room (declaration order)."""
        rooms = []
        if Room.CASE in self.rooms:
            if not case_urn:
                raise ValueError(f"{self.name!r} goes to its case room: case_urn is required")
            rooms.append(case_room(case_urn))
        if Room.AIRLINE in self.rooms:
            if not airline:
                raise ValueError(f"{self.name!r} goes to its airline room: airline is required")
            rooms.append(airline_room(airline))
        return rooms


_lock = threading.Lock()
_specs: dict[str, EventSpec] = {}


def declare(
    name: str,
    *,
    payload: type,
    audience: Audience | str,
    rooms: Iterable[Room | str] = (),
    description: str = "",
) -> EventSpec:
    """Declare an event (at import of the owning app's ``events.py``). Declaring the same event again
    with the same declaration is a no-op (modules may be reloaded); a different one is an error."""
    if not typing.is_typeddict(payload):
        raise TypeError(f"the payload of {name!r} must be declared as a TypedDict, not {payload!r}")
    new = EventSpec(
        name=name,
        payload=payload,
        audience=Audience(audience),
        rooms=frozenset(Room(room) for room in rooms),
        description=description,
    )
    with _lock:
        current = _specs.get(name)
        if current is not None and (current.audience, current.rooms, current.payload.__qualname__) != (
            new.audience,
            new.rooms,
            new.payload.__qualname__,
        ):
            raise ValueError(f"event {name!r} is already declared differently ({current})")
        _specs[name] = new
    return new


def undeclare(name: str) -> None:
    """Tests only: forget a declaration made for a test."""
    with _lock:
        _specs.pop(name, None)


def spec_of(name: str) -> EventSpec:
    try:
        return _specs[name]
    except KeyError:
        raise UnregisteredEvent(
            f"event {name!r} is not declared: declare it in its app's events.py (nexa.platform.events.declare)"
        ) from None


def declared() -> dict[str, EventSpec]:
    """Every declared event, by name (a copy)."""
    with _lock:
        return dict(_specs)


def client_event_names() -> frozenset[str]:
    """The events clients may see (the Socket.IO and SSE allow-list): spec 000's server events."""
    return frozenset(name for name, spec in declared().items() if spec.is_client)


def is_client_event(name: str) -> bool:
    spec = _specs.get(name)
    return spec is not None and spec.is_client


def rooms_for(name: str, *, airline: str, case_urn: str | None = None) -> list[str]:
    """The rooms ``name`` goes to, from its declaration."""
    return spec_of(name).rooms_for(airline=airline, case_urn=case_urn)


# --- the TypedDict checker ----------------------------------------------------------------------------


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or repr(tp)


def _check_typed_dict(td: type, value: object, path: str, errors: list[str]) -> None:
    if not isinstance(value, Mapping):
        errors.append(f"{path}: expected an object ({td.__name__}), got {type(value).__name__}")
        return
    hints = typing.get_type_hints(td, include_extras=True)
    required: frozenset[str] = td.__required_keys__  # type: ignore[attr-defined]
    for key in sorted(required - value.keys()):
        errors.append(f"{path}.{key}: missing")
    for key in sorted(value.keys() - hints.keys()):
        errors.append(f"{path}.{key}: not declared in {td.__name__}")
    for key, tp in hints.items():
        if key in value:
            _check(tp, value[key], f"{path}.{key}", errors)


def _check(tp: Any, value: object, path: str, errors: list[str]) -> None:
    origin = get_origin(tp)
    if origin in (Required, NotRequired):
        _check(get_args(tp)[0], value, path, errors)
        return
    if origin is Annotated:
        inner, *extras = get_args(tp)
        before = len(errors)
        _check(inner, value, path, errors)
        if len(errors) == before:
            for extra in extras:
                if isinstance(extra, Check) and not extra.predicate(value):
                    errors.append(f"{path}: expected {extra.description}, got {value!r}")
        return
    if tp is Any:
        return
    if tp is None or tp is type(None):
        if value is not None:
            errors.append(f"{path}: expected null, got {value!r}")
        return
    if origin in (Union, types.UnionType):
        for option in get_args(tp):
            attempt: list[str] = []
            _check(option, value, path, attempt)
            if not attempt:
                return
        errors.append(f"{path}: {value!r} matches none of {' | '.join(_type_name(o) for o in get_args(tp))}")
        return
    if origin is Literal:
        if value not in get_args(tp) or isinstance(value, bool) != any(isinstance(a, bool) for a in get_args(tp)):
            errors.append(f"{path}: expected one of {list(get_args(tp))}, got {value!r}")
        return
    if typing.is_typeddict(tp):
        _check_typed_dict(tp, value, path, errors)
        return
    if origin is list:
        if not isinstance(value, list):
            errors.append(f"{path}: expected an array, got {type(value).__name__}")
            return
        (item,) = get_args(tp) or (Any,)
        for index, element in enumerate(value):
            _check(item, element, f"{path}[{index}]", errors)
        return
    if origin is dict:
        if not isinstance(value, dict):
            errors.append(f"{path}: expected an object, got {type(value).__name__}")
            return
        _key, item = get_args(tp) or (str, Any)
        for key, element in value.items():
            if not isinstance(key, str):
                errors.append(f"{path}: key {key!r} is not a string")
            _check(item, element, f"{path}.{key}", errors)
        return
    if tp is bool:
        if not isinstance(value, bool):
            errors.append(f"{path}: expected a boolean, got {value!r}")
        return
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            errors.append(f"{path}: expected an integer, got {value!r}")
        return
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            errors.append(f"{path}: expected a number, got {value!r}")
        return
    if tp is str:
        if not isinstance(value, str):
            errors.append(f"{path}: expected a string, got {value!r}")
        return
    raise TypeError(f"{path}: the event checker does not support {tp!r}")
