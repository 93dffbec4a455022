"""Sub-case transitions: the state machine, optimistic concurrency, audit and outbox rows, and the
case status fanning up."""

import threading

import pytest
from django.db import connection

from audit.models import AuditEntry
from cases import services
from cases.models import CaseStatus, SubCase, SubCaseStatus
from nexa.platform.auth import Principal
from nexa.platform.models import OutboxEvent
from nexa.platform.problems import Problem, conflict_problem
from nexa.platform.roles import Role
from operators.lock_guard import entity_lock_guard
from tests.cases.factories import CaseFactory, SubCaseFactory

pytestmark = pytest.mark.django_db

PRINCIPAL = Principal(airline="IB", role=Role.AIRPORT_OPERATOR, operator_urn="urn:nexa:user:ib-op", subject="op")


def transition(client, sub_case, name, version, reason=""):
    return client.post(
        f"/v1/subcases/{sub_case.urn}/transition",
        {"transition": name, "version": version, "reason": reason},
        format="json",
    )


@pytest.fixture
def operator(client_for):
    return client_for("IB", Role.AIRPORT_OPERATOR, "urn:nexa:user:ib-op")


def test_transition_moves_bumps_version_audits_and_publishes(operator):
    sub_case = SubCaseFactory()
    case = sub_case.case
    response = transition(operator, sub_case, "mark_grouped", 1, reason="family of four")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "GROUPED" and body["version"] == 2 and body["urn"] == sub_case.urn

    sub_case.refresh_from_db()
    case.refresh_from_db()
    assert (sub_case.status, sub_case.version) == ("GROUPED", 2)
    assert (case.status, case.version) == (CaseStatus.IN_PROGRESS, 2)  # OPEN → IN_PROGRESS fans up

    entry = AuditEntry.objects.get(entity_urn=sub_case.urn)
    assert entry.action == "subcase.mark_grouped" and entry.actor == "urn:nexa:user:ib-op"
    assert entry.case_urn == case.urn and entry.reason == "family of four"
    assert entry.before == {"status": "PENDING", "version": 1}
    assert entry.after == {"status": "GROUPED", "version": 2, "transition": "mark_grouped"}
    assert entry.correlation_urn == response["X-Correlation-Id"]
    case_entry = AuditEntry.objects.get(entity_urn=case.urn, action="case.status_changed")
    assert case_entry.after == {"status": "IN_PROGRESS", "version": 2}

    state_changed = OutboxEvent.objects.get(event="subcase:state-changed")
    assert state_changed.payload == {
        "subCaseUrn": sub_case.urn,
        "caseUrn": case.urn,
        "status": "GROUPED",
        "version": 2,
        "lockedBy": None,
    }
    assert state_changed.rooms == [f"case:{case.urn}"] and state_changed.airline == "IB"  # case room only
    case_updated = OutboxEvent.objects.get(event="case:updated")
    assert case_updated.payload["caseUrn"] == case.urn
    assert case_updated.payload["status"] == "IN_PROGRESS" and case_updated.payload["version"] == 2
    assert case_updated.payload["counts"]["GROUPED"] == 1


def test_every_transition_of_a_full_journey_is_audited_and_published(operator):
    sub_case = SubCaseFactory()
    journey = ["mark_grouped", "mark_allocated", "start_booking", "mark_booked", "mark_notified", "close"]
    for version, name in enumerate(journey, start=1):
        assert transition(operator, sub_case, name, version).status_code == 200
    sub_case.refresh_from_db()
    sub_case.case.refresh_from_db()
    assert sub_case.status == "CLOSED" and sub_case.version == len(journey) + 1
    assert sub_case.case.status == CaseStatus.CLOSED
    actions = list(AuditEntry.objects.filter(entity_urn=sub_case.urn).order_by("created_at", "id"))
    assert [entry.action for entry in actions] == [f"subcase.{name}" for name in journey]
    assert OutboxEvent.objects.filter(event="subcase:state-changed").count() == len(journey)
    assert OutboxEvent.objects.filter(event="case:updated").count() == len(journey)


@pytest.mark.parametrize(
    ("status", "name"),
    [
        ("PENDING", "mark_booked"),
        ("PENDING", "close"),
        ("GROUPED", "start_booking"),
        ("CLOSED", "cancel"),
        ("CANCELLED", "mark_grouped"),
        ("BOOKED", "mark_failed"),
    ],
)
def test_illegal_transitions_are_409_naming_status_and_allowed(operator, status, name):
    sub_case = SubCaseFactory(status=status)
    response = transition(operator, sub_case, name, 1)
    assert response.status_code == 409
    body = response.json()
    assert body["type"].endswith("/illegal-transition")
    assert body["currentStatus"] == status and status in body["detail"]
    allowed = sorted(t.name for t in sub_case.get_available_status_transitions())
    assert body["allowedTransitions"] == allowed
    sub_case.refresh_from_db()
    assert (sub_case.status, sub_case.version) == (status, 1)
    assert not AuditEntry.objects.exists() and not OutboxEvent.objects.exists()


def test_stale_version_is_409_with_the_current_version(operator):
    sub_case = SubCaseFactory()
    assert transition(operator, sub_case, "mark_grouped", 1).status_code == 200
    response = transition(operator, sub_case, "mark_allocated", 1)
    assert response.status_code == 409
    assert response.json()["type"].endswith("/version-conflict")
    assert response.json()["version"] == 2
    sub_case.refresh_from_db()
    assert sub_case.status == "GROUPED"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"transition": "teleport", "version": 1}, "transition"),
        ({"transition": "mark_grouped"}, "version"),
        ({"transition": "mark_grouped", "version": 0}, "version"),
    ],
)
def test_invalid_transition_bodies_are_400(operator, body, field):
    sub_case = SubCaseFactory()
    response = operator.post(f"/v1/subcases/{sub_case.urn}/transition", body, format="json")
    assert response.status_code == 400
    assert [error["field"] for error in response.json()["errors"]] == [field]


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_writers_with_the_same_version_exactly_one_wins(client_for):
    sub_case = SubCaseFactory()
    barrier = threading.Barrier(2)
    responses = []

    def write(name: str):
        client = client_for("IB", Role.AIRPORT_OPERATOR, f"urn:nexa:user:{name}")
        barrier.wait()
        responses.append(transition(client, sub_case, "mark_grouped" if name == "a" else "cancel", 1))
        connection.close()

    threads = [threading.Thread(target=write, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200, 409]
    loser = next(response for response in responses if response.status_code == 409).json()
    assert loser["type"].endswith("/version-conflict") and loser["version"] == 2
    winner = next(response for response in responses if response.status_code == 200).json()
    sub_case.refresh_from_db()
    assert (sub_case.status, sub_case.version) == (winner["status"], 2)
    assert AuditEntry.objects.filter(entity_urn=sub_case.urn).count() == 1
    assert OutboxEvent.objects.filter(event="subcase:state-changed").count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_transitions_on_different_sub_cases_derive_the_right_case_status(client_for):
    """The case row lock serialises derivation: the last writer sees the first one's committed state."""
    case = CaseFactory()
    first, second = SubCaseFactory(case=case, status="BOOKING"), SubCaseFactory(case=case, status="BOOKING")
    barrier = threading.Barrier(2)
    codes = []

    def book(sub_case):
        client = client_for("IB", Role.AIRPORT_OPERATOR)
        barrier.wait()
        codes.append(transition(client, sub_case, "mark_booked", 1).status_code)
        connection.close()

    threads = [threading.Thread(target=book, args=(s,)) for s in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert codes == [200, 200]
    case.refresh_from_db()
    assert case.status == CaseStatus.FULFILLED


def test_write_guard_can_refuse_a_transition():
    """The seam the entity-lock module plugs into: a guard that refuses leaves nothing written."""
    sub_case = SubCaseFactory()
    seen = []

    def only_the_holder(*, principal, sub_case, fencing_token):
        seen.append((principal.operator_urn, sub_case.urn, fencing_token))
        if fencing_token != 7:
            raise conflict_problem(slug="locked", title="Locked", detail="held by someone else", lockedBy="urn:x")

    # Only this test's guard: the entity-lock guard would refuse these made-up fencing tokens first.
    services.subcase_write_guard_unregister(entity_lock_guard)
    services.subcase_write_guard_register(only_the_holder)
    try:
        with pytest.raises(Problem) as refused:
            services.subcase_transition(
                principal=PRINCIPAL, sub_case=sub_case, transition="mark_grouped", expected_version=1, fencing_token=3
            )
        assert refused.value.extensions["lockedBy"] == "urn:x"
        sub_case.refresh_from_db()
        assert sub_case.version == 1 and not AuditEntry.objects.exists() and not OutboxEvent.objects.exists()

        moved = services.subcase_transition(
            principal=PRINCIPAL, sub_case=sub_case, transition="mark_grouped", expected_version=1, fencing_token=7
        )
        assert moved.status == SubCaseStatus.GROUPED
        assert seen == [("urn:nexa:user:ib-op", sub_case.urn, 3), ("urn:nexa:user:ib-op", sub_case.urn, 7)]
    finally:
        services.subcase_write_guard_unregister(only_the_holder)
        services.subcase_write_guard_register(entity_lock_guard)


def test_service_refuses_another_airlines_sub_case():
    sub_case = SubCaseFactory(case=CaseFactory(airline="LH"), airline="LH")
    with pytest.raises(Problem) as refused:
        services.subcase_transition(principal=PRINCIPAL, sub_case=sub_case, transition="cancel", expected_version=1)
    assert refused.value.status_code == 404
    assert SubCase.objects.get(pk=sub_case.pk).status == "PENDING"
