"""The saga's events, captured while the engine runs (in-process against the real provider simulators,
like tests/cases/test_saga.py) and checked against the event registry (``tests.events.capture_events``):
``graph:step:*`` to the case room, ``saga:*`` internal, and the review path's ``subcase:state-changed``."""

import pytest
from django.test import override_settings

from tests.cases.factories import MEAL, CaseFactory, SubCaseFactory
from tests.cases.test_saga import FAST, TRANSPORT, accept, drive
from tests.events import capture_events

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("simulator_control")]


@pytest.fixture
def passenger():
    return SubCaseFactory(case=CaseFactory(airline="IB"), airline="IB", language="es")


def test_a_completed_run_publishes_each_step_started_and_completed_to_the_case_room(passenger):
    run = accept(passenger, [MEAL])
    with capture_events() as events:
        drive(run)
    step_events = [e for e in events if e.event.startswith("graph:step:")]
    assert [(e.event, e.payload.get("name")) for e in step_events] == [
        ("graph:step:started", "meal.issue_card"),
        ("graph:step:completed", None),
        ("graph:step:started", "notify.passenger"),
        ("graph:step:completed", None),
    ]
    assert all(e.rooms == [f"case:{passenger.case.urn}"] for e in step_events)
    assert events.one("saga:completed").payload["sagaUrn"] == run.urn
    assert set(events.names()) <= {*(e.event for e in step_events), "saga:completed", "notification:queued"}


@override_settings(**FAST)
def test_a_failed_run_undoes_its_steps_and_sends_the_passenger_to_review(simulator_control, passenger):
    simulator_control.transport.refuse({passenger.urn: "no_drivers_available"})
    run = accept(passenger, [MEAL, TRANSPORT])
    with capture_events() as events:
        drive(run)
    failed = events.one("saga:failed")
    assert failed.payload["category"] == "BOOKING_FAILED" and failed.rooms == [f"case:{passenger.case.urn}"]
    assert events.one("subcase:state-changed").payload["status"] == "MANUAL_REVIEW"
    assert "graph:step:progress" in events.names()  # the card's undo is announced
