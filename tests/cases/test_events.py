"""The cases domain's events, captured from each service that publishes and checked against the event
registry (``tests.events.capture_events``: declared, schema, audience, rooms); ``lockedBy`` of
``subcase:state-changed`` is the current holder (issue 10)."""

import pytest
from django.db.models.functions import Now

from cases import services
from cases.api import event_stream
from cases.models import SagaRun, SagaRunStatus, SubCase, SubCaseStatus
from nexa.platform import events as registry
from nexa.platform.auth import Principal
from nexa.platform.roles import Role
from operators import services as operators
from operators.models import EntityLock
from operators.socketio import protocol
from tests.cases.factories import MEAL, CaseFactory, SubCaseFactory, declaration, passenger_row
from tests.events import capture_events

pytestmark = pytest.mark.django_db

SPEC_000_SERVER_EVENTS = {
    "case:updated",
    "subcase:state-changed",
    "graph:step:started",
    "graph:step:completed",
    "graph:step:progress",
    "notification:dispatched",
}
HOLDER = "urn:nexa:user:ib-holder"


def principal(role=Role.OPS_SUPERVISOR, operator=HOLDER, airline="IB"):
    return Principal(airline=airline, role=role, operator_urn=operator, subject=operator)


def version_of(sub_case) -> int:
    return SubCase.objects.get(pk=sub_case.pk).version


# --- the registry ----------------------------------------------------------------------------------------


def test_the_client_events_are_exactly_spec_000s_table_and_feed_both_allow_lists():
    assert registry.client_event_names() == SPEC_000_SERVER_EVENTS
    assert protocol.server_events() == SPEC_000_SERVER_EVENTS  # Socket.IO fan-out and replay
    sse_query = str(event_stream._room_events("case:x").query)  # the SSE stream's filter
    assert all(f"'{name}'" in sse_query or name in sse_query for name in SPEC_000_SERVER_EVENTS)
    assert "operator:deactivated" not in sse_query and "saga:failed" not in sse_query
    assert all(protocol.is_server_event(name) for name in SPEC_000_SERVER_EVENTS)
    assert not protocol.is_server_event("operator:deactivated")


def test_the_airline_room_carries_case_updated_only():
    airline_events = {name for name, spec in registry.declared().items() if registry.Room.AIRLINE in spec.rooms}
    assert airline_events == {"case:updated", "operator:deactivated"}
    client_in_airline_room = {name for name in airline_events if registry.is_client_event(name)}
    assert client_in_airline_room == {"case:updated"}


# --- transitions ----------------------------------------------------------------------------------------


def test_transition_publishes_the_sub_case_to_its_case_room_and_the_case_to_both_rooms():
    sub_case = SubCaseFactory()
    case = sub_case.case
    with capture_events() as events:
        services.subcase_transition(
            principal=principal(Role.AIRPORT_OPERATOR), sub_case=sub_case, transition="mark_grouped", expected_version=1
        )
    assert events.names() == ["subcase:state-changed", "case:updated"]
    changed = events.one("subcase:state-changed")
    assert changed.payload == {
        "subCaseUrn": sub_case.urn,
        "caseUrn": case.urn,
        "status": "GROUPED",
        "version": 2,
        "lockedBy": None,  # nobody holds a lock
    }
    assert changed.rooms == [f"case:{case.urn}"]
    assert events.one("case:updated").rooms == [f"case:{case.urn}", "airline:IB"]


def test_a_locked_sub_case_transitioned_by_its_holder_keeps_lockedBy():
    """Regression (issue 10): a transition under a lock published ``lockedBy: null``, which spec 000 reads
    as "the lock is gone", so consoles dropped the 🔒."""
    sub_case = SubCaseFactory()
    holder = principal(Role.AIRPORT_OPERATOR)
    grant = operators.subcase_lock(principal=holder, sub_case_urn=sub_case.urn)
    with capture_events() as events:
        services.subcase_transition(
            principal=holder,
            sub_case=sub_case,
            transition="mark_grouped",
            expected_version=1,
            fencing_token=grant.fencing_token,
        )
    assert events.one("subcase:state-changed").payload["lockedBy"] == HOLDER


def test_an_expired_lock_is_not_reported():
    sub_case = SubCaseFactory()
    operators.subcase_lock(principal=principal(Role.AIRPORT_OPERATOR), sub_case_urn=sub_case.urn)
    EntityLock.objects.filter(entity_urn=sub_case.urn).update(expires_at=Now())
    with capture_events() as events:
        services.subcase_transition(
            principal=principal(Role.AIRPORT_OPERATOR, "urn:nexa:user:ib-other"),
            sub_case=sub_case,
            transition="mark_grouped",
            expected_version=1,
        )
    assert events.one("subcase:state-changed").payload["lockedBy"] is None


def test_the_sagas_review_path_reports_the_holder_it_overrides():
    sub_case = SubCaseFactory()
    operators.subcase_lock(principal=principal(Role.AIRPORT_OPERATOR), sub_case_urn=sub_case.urn)
    with capture_events() as events:
        services.subcase_send_to_review_by_system(airline="IB", sub_case_id=sub_case.pk, reason="saga failed")
    assert events.names() == ["subcase:state-changed", "case:updated"]
    changed = events.one("subcase:state-changed").payload
    assert (changed["status"], changed["lockedBy"]) == (SubCaseStatus.MANUAL_REVIEW, HOLDER)


# --- compensate, retry, cancel, transfers ----------------------------------------------------------------


def test_compensate_publishes_the_state_change_with_the_holder_and_hands_the_run_to_a_worker():
    sub_case = SubCaseFactory(case=CaseFactory(airline="IB"), airline="IB")
    holder = principal()
    grant = operators.subcase_lock(principal=holder, sub_case_urn=sub_case.urn)
    with capture_events() as events:
        run, created = services.subcase_compensate(
            principal=holder,
            sub_case_urn=sub_case.urn,
            expected_version=version_of(sub_case),
            items=[MEAL],
            reason="storm",
            fencing_token=grant.fencing_token,
        )
    assert created
    assert events.names() == ["subcase:state-changed", "saga:requested"]
    changed = events.one("subcase:state-changed")
    assert changed.payload["lockedBy"] == HOLDER  # the regression: it was null under a lock
    assert changed.payload["version"] == version_of(sub_case)
    requested = events.one("saga:requested")
    assert requested.rooms == [] and requested.payload["sagaUrn"] == run.urn
    assert events.client() == [changed]


def _run(sub_case, status):
    run, _ = services.subcase_compensate(
        principal=principal(),
        sub_case_urn=sub_case.urn,
        expected_version=version_of(sub_case),
        items=[MEAL],
        reason="test",
    )
    SagaRun.objects.filter(pk=run.pk).update(status=status)
    run.refresh_from_db()
    return run


def test_retry_and_cancel_hand_the_run_back_to_a_worker_internally():
    failed = _run(SubCaseFactory(), SagaRunStatus.FAILED)
    with capture_events() as events:
        services.saga_run_retry(principal=principal(), run=failed, reason="provider back")
    assert events.names() == ["saga:requested"]

    pending = _run(SubCaseFactory(), SagaRunStatus.PENDING)
    with capture_events() as events:
        services.saga_run_cancel(principal=principal(), run=pending, reason="rebooked")
    assert events.names() == ["saga:requested"] and events.client() == []


def test_transfers_request_one_run_per_sub_case(client_for):
    case = CaseFactory(airline="IB")
    riders = [SubCaseFactory(case=case) for _ in range(2)]
    with capture_events() as events:
        response = client_for("IB").post(
            f"/v1/transport/cases/{case.urn}/transfers/request",
            {
                "subCaseUrns": [rider.urn for rider in riders],
                "pickup": {"lat": 40.4719, "lng": -3.5626, "address": "MAD T4"},
                "dropoff": {"lat": 40.4168, "lng": -3.7038, "address": "Hotel Centro"},
            },
            format="json",
        )
    assert response.status_code == 202, response.content
    assert events.names() == ["saga:requested", "saga:requested"]


# --- declare, manifest, groups ------------------------------------------------------------------------------


def test_declare_and_manifest_publish_case_updated_to_both_rooms(client_for):
    supervisor = client_for("IB", Role.OPS_SUPERVISOR)
    with capture_events() as events:
        response = supervisor.post("/v1/cases", declaration(passengers=[passenger_row(1)]), format="json")
    assert response.status_code == 201, response.content
    urn = response.json()["urn"]
    assert events.names() == ["case:updated"]
    assert events.one("case:updated").rooms == [f"case:{urn}", "airline:IB"]

    with capture_events() as events:
        response = supervisor.post(f"/v1/cases/{urn}/manifest", {"passengers": [passenger_row(2)]}, format="json")
    assert response.status_code == 201, response.content
    assert events.names() == ["case:updated"]
    assert events.one("case:updated").payload["counts"]["PENDING"] == 2


def test_grouping_publishes_one_state_change_per_passenger_then_the_case(client_for):
    case = CaseFactory(airline="IB")
    passengers = [SubCaseFactory(case=case, pnr="ABC123") for _ in range(2)] + [SubCaseFactory(case=case)]
    holder = principal(Role.AIRPORT_OPERATOR)
    operators.subcase_lock(principal=holder, sub_case_urn=passengers[0].urn)
    with capture_events() as events:
        response = client_for("IB", Role.AIRPORT_OPERATOR, HOLDER).post(
            f"/v1/cases/{case.urn}/passenger-groups", {}, format="json"
        )
    assert response.status_code in (200, 201), response.content
    assert events.names() == ["subcase:state-changed"] * 3 + ["case:updated"]
    locked_by = {e.payload["subCaseUrn"]: e.payload["lockedBy"] for e in events.of("subcase:state-changed")}
    assert locked_by == {passengers[0].urn: HOLDER, passengers[1].urn: None, passengers[2].urn: None}
