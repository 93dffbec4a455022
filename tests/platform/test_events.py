"""The event registry (nexa/platform/events.py) and what ``publish()`` does with it."""

from typing import Literal, NotRequired, TypedDict

import pytest
from django.db import transaction
from django.test import override_settings

from nexa.platform import events as registry
from nexa.platform.models import OutboxEvent
from nexa.platform.outbox import publish

pytestmark = pytest.mark.django_db

CASE_URN = "urn:nexa:case:0190d8a4-5b1e-7c3a-9f00-2a1b3c4d5e6f"


class Inner(TypedDict):
    kind: Literal["A", "B"]


class Probe(TypedDict):
    caseUrn: registry.Annotated[str, registry.Urn("case")]
    count: int
    ratio: float
    flag: bool
    holder: str | None
    inner: Inner
    tags: list[str]
    note: NotRequired[str]


@pytest.fixture
def probe():
    spec = registry.declare("test.events.probe", payload=Probe, audience=registry.Audience.INTERNAL)
    yield spec
    registry.undeclare("test.events.probe")


def valid(**changes):
    return {
        "caseUrn": CASE_URN, "count": 1, "ratio": 1, "flag": False, "holder": None, "inner": {"kind": "A"},
        "tags": ["x"], **changes,
    }  # fmt: skip


def test_a_valid_payload_has_no_errors(probe):
    assert probe.errors(valid()) == []
    assert probe.errors(valid(note="optional key present", ratio=0.5, holder="urn:nexa:user:x")) == []


def test_every_mismatch_is_named(probe):
    payload = valid(count=True, ratio="1", flag=0, inner={"kind": "C"}, tags=[1], extra=1, caseUrn="urn:nexa:x")
    del payload["holder"]
    assert sorted(probe.errors(payload)) == sorted(
        [
            "payload.holder: missing",
            "payload.extra: not declared in Probe",
            "payload.caseUrn: expected a urn:nexa:case: URN, got 'urn:nexa:x'",
            "payload.count: expected an integer, got True",
            "payload.ratio: expected a number, got '1'",
            "payload.flag: expected a boolean, got 0",
            "payload.inner.kind: expected one of ['A', 'B'], got 'C'",
            "payload.tags[0]: expected a string, got 1",
        ]
    )


def test_declaring_again_the_same_is_harmless_and_differently_an_error(probe):
    assert registry.declare("test.events.probe", payload=Probe, audience="internal") == probe
    with pytest.raises(ValueError, match="already declared"):
        registry.declare("test.events.probe", payload=Probe, audience="client", rooms=[registry.Room.CASE])
    with pytest.raises(TypeError, match="TypedDict"):
        registry.declare("test.events.other", payload=dict, audience="internal")


def test_rooms_come_from_the_declaration():
    assert registry.rooms_for("case:updated", case_urn=CASE_URN, airline="IB") == [f"case:{CASE_URN}", "airline:IB"]
    assert registry.rooms_for("subcase:state-changed", case_urn=CASE_URN, airline="IB") == [f"case:{CASE_URN}"]
    assert registry.rooms_for("operator:deactivated", airline="IB") == ["airline:IB"]
    with pytest.raises(ValueError, match="case_urn"):
        registry.rooms_for("subcase:state-changed", airline="IB")


@override_settings(NEXA_EVENT_SCHEMA_CHECK=False)
def test_publish_refuses_an_undeclared_event_always():
    with transaction.atomic(), pytest.raises(registry.UnregisteredEvent, match="not declared"):
        publish("case:updatedd", {"caseUrn": CASE_URN}, [], airline="IB")
    assert not OutboxEvent.objects.exists()


def test_publish_refuses_a_payload_that_fails_its_schema_when_checking(probe, settings):
    assert settings.NEXA_EVENT_SCHEMA_CHECK, "the test suite checks every published payload"
    with transaction.atomic(), pytest.raises(registry.EventPayloadInvalid) as refused:
        publish("test.events.probe", valid(count="one"), [], airline="IB")
    assert refused.value.errors == ["payload.count: expected an integer, got 'one'"]
    assert not OutboxEvent.objects.exists()

    settings.NEXA_EVENT_SCHEMA_CHECK = False  # production: the change commits, the event goes out
    with transaction.atomic():
        publish("test.events.probe", valid(count="one"), [], airline="IB")
    assert OutboxEvent.objects.get().payload["count"] == "one"
