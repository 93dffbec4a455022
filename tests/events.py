"""``capture_events``: what a service published, checked against the event registry (Zulip's
``verify_action``, ARCHITECTURE §12).

    with capture_events() as events:
        services.subcase_transition(principal=..., sub_case=..., transition="mark_grouped", expected_version=1)
    changed = events.one("subcase:state-changed")
    assert changed.payload["lockedBy"] is None

The captured events are the outbox rows written inside the block (in publishing order). When the block
ends without an exception every one of them is checked against its declaration
(:mod:`nexa.platform.events`): the event is declared; the payload matches its schema; the rooms are
exactly the declared ones (``case:<payload caseUrn>`` and/or ``airline:<row airline>``); a ``client`` event
goes to at least one room (or no client could ever see it) and carries a ``caseUrn`` when it goes to a
case room. Any mismatch fails the test with every problem listed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from nexa.platform import events as registry
from nexa.platform.models import OutboxEvent


@dataclass(frozen=True, slots=True)
class CapturedEvent:
    event: str
    payload: dict[str, Any]
    rooms: list[str]
    airline: str

    @property
    def spec(self) -> registry.EventSpec:
        return registry.spec_of(self.event)


class CapturedEvents(list[CapturedEvent]):
    def names(self) -> list[str]:
        return [captured.event for captured in self]

    def of(self, event: str) -> list[CapturedEvent]:
        return [captured for captured in self if captured.event == event]

    def one(self, event: str) -> CapturedEvent:
        found = self.of(event)
        assert len(found) == 1, f"expected one {event!r}, captured {self.names()}"
        return found[0]

    def client(self) -> list[CapturedEvent]:
        """The events a Socket.IO / SSE client would see."""
        return [captured for captured in self if registry.is_client_event(captured.event)]


def problems_of(captured: CapturedEvent) -> list[str]:
    """Every way one captured event differs from the registry (empty: it matches)."""
    try:
        spec = registry.spec_of(captured.event)
    except registry.UnregisteredEvent as exc:
        return [str(exc)]
    problems = spec.errors(captured.payload)
    case_urn = captured.payload.get("caseUrn")
    if registry.Room.CASE in spec.rooms and not case_urn:
        problems.append("goes to a case room but its payload has no caseUrn")
    try:
        expected = spec.rooms_for(airline=captured.airline, case_urn=case_urn)
    except ValueError as exc:
        problems.append(str(exc))
    else:
        if sorted(captured.rooms) != sorted(expected):
            problems.append(f"rooms {captured.rooms} are not the declared {expected}")
    if spec.is_client and not captured.rooms:
        problems.append("a client event published to no room reaches no client")
    return problems


def assert_matches_registry(events: list[CapturedEvent]) -> None:
    report = [f"{captured.event} {captured.payload}: {p}" for captured in events for p in problems_of(captured)]
    assert not report, "events that do not match the registry:\n  " + "\n  ".join(report)


@contextlib.contextmanager
def capture_events(*, using: str = "default") -> Iterator[CapturedEvents]:
    """Capture the outbox rows written in the block and check them against the registry at its end."""
    rows = OutboxEvent.objects.using(using)
    before = set(rows.values_list("pk", flat=True))
    captured = CapturedEvents()
    yield captured
    # uuid7 primary keys: time-ordered, so pk order is publishing order within this process.
    new = rows.exclude(pk__in=before).order_by("pk")
    captured.extend(
        CapturedEvent(event=row.event, payload=row.payload, rooms=list(row.rooms), airline=row.airline) for row in new
    )
    assert_matches_registry(captured)
