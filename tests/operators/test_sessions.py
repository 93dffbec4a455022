"""Operator sessions (presence) and lease lifetime: heartbeats renew, the last socket closing releases
every lock, stale sessions and expired leases are swept — each release audited and published."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models.functions import Now

from audit.models import AuditEntry
from nexa.platform.auth import Principal
from nexa.platform.models import OutboxEvent
from nexa.platform.problems import Problem
from nexa.platform.roles import Role
from operators import services, tasks
from operators.models import EntityLock, Operator, OperatorSession
from operators.selectors import operator_is_active
from tests.cases.factories import SubCaseFactory
from tests.operators.helpers import expire_lease, lock_events

pytestmark = pytest.mark.django_db

ALICE, BOB = "urn:nexa:user:ib-alice", "urn:nexa:user:ib-bob"


def principal(operator: str = ALICE, role: Role = Role.AIRPORT_OPERATOR, airline: str = "IB") -> Principal:
    return Principal(airline=airline, role=role, operator_urn=operator, subject=operator)


def remaining(entity_urn: str) -> float:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT extract(epoch FROM expires_at - now()) FROM operators_entitylock WHERE entity_urn = %s",
            [entity_urn],
        )
        return float(cursor.fetchone()[0])


def shorten_lease(entity_urn: str, seconds: int = 5) -> None:
    EntityLock.objects.filter(entity_urn=entity_urn).update(expires_at=Now() + timedelta(seconds=seconds))


def open_session(session_id: str, operator: str = ALICE, instance: str = "web-1:100") -> None:
    services.operator_session_open(principal=principal(operator), session_id=session_id, server_instance=instance)


# --- lease expiry sweep ------------------------------------------------------------------------------


def test_expiry_sweep_frees_expired_leases_audits_and_publishes_locked_by_null():
    expired, live = SubCaseFactory(), SubCaseFactory()
    services.subcase_lock(principal=principal(), sub_case_urn=expired.urn)
    services.subcase_lock(principal=principal(BOB), sub_case_urn=live.urn)
    expire_lease(expired.urn)

    assert tasks.lock_leases_expire_sweep() == 1

    assert EntityLock.objects.get(entity_urn=expired.urn).holder is None
    assert EntityLock.objects.get(entity_urn=live.urn).holder == BOB
    entry = AuditEntry.objects.get(entity_urn=expired.urn, action="subcase.lock_expired")
    assert entry.actor == services.SYSTEM_LOCK_SWEEP and entry.airline == "IB" and entry.case_urn == expired.case.urn
    assert entry.reason == "lease expired" and entry.before == {"lockedBy": ALICE, "fencingToken": 1}
    assert lock_events(expired.urn)[-1] == {
        "subCaseUrn": expired.urn,
        "caseUrn": expired.case.urn,
        "status": "PENDING",
        "version": 1,
        "lockedBy": None,
    }
    assert services.lock_leases_expire_sweep() == 0  # nothing left to free; nothing published twice
    assert len(lock_events(expired.urn)) == 2


def test_after_the_sweep_the_next_grant_gets_the_next_token():
    sub_case = SubCaseFactory()
    services.subcase_lock(principal=principal(), sub_case_urn=sub_case.urn)
    expire_lease(sub_case.urn)
    services.lock_leases_expire_sweep()

    grant = services.subcase_lock(principal=principal(BOB), sub_case_urn=sub_case.urn)

    assert grant.fencing_token == 2
    # The sweep already freed it: Bob's grant took a free lock.
    assert AuditEntry.objects.get(entity_urn=sub_case.urn, action="subcase.lock_granted", actor=BOB).before == {
        "lockedBy": None
    }


def test_expiry_sweep_handles_more_than_one_batch(monkeypatch):
    monkeypatch.setattr(services, "SWEEP_BATCH", 2)
    sub_cases = [SubCaseFactory() for _ in range(5)]
    for sub_case in sub_cases:
        services.subcase_lock(principal=principal(), sub_case_urn=sub_case.urn)
        expire_lease(sub_case.urn)

    assert services.lock_leases_expire_sweep() == 5
    assert not EntityLock.objects.exclude(holder=None).exists()


# --- renewals ------------------------------------------------------------------------------------------


def test_renew_extends_live_leases_only():
    live, expired, others = SubCaseFactory(), SubCaseFactory(), SubCaseFactory()
    services.subcase_lock(principal=principal(), sub_case_urn=live.urn)
    services.subcase_lock(principal=principal(), sub_case_urn=expired.urn)
    services.subcase_lock(principal=principal(BOB), sub_case_urn=others.urn)
    shorten_lease(live.urn)
    shorten_lease(others.urn)
    expire_lease(expired.urn)

    assert services.operator_locks_renew(operator_urns=[ALICE]) == 1

    assert remaining(live.urn) == pytest.approx(120, abs=1)
    assert remaining(expired.urn) < 0  # a lease that ran out is not revived
    assert remaining(others.urn) == pytest.approx(5, abs=1)
    assert EntityLock.objects.get(entity_urn=live.urn).fencing_token == 1


def test_heartbeat_touches_sessions_and_renews_their_operators_leases():
    mine, bobs = SubCaseFactory(), SubCaseFactory()
    open_session("sid-a")
    open_session("sid-b", BOB)
    services.subcase_lock(principal=principal(), sub_case_urn=mine.urn)
    services.subcase_lock(principal=principal(BOB), sub_case_urn=bobs.urn)
    shorten_lease(mine.urn)
    shorten_lease(bobs.urn)
    OperatorSession.objects.update(last_seen_at=Now() - timedelta(seconds=30))

    services.operator_sessions_touch(session_ids=["sid-a", "sid-unknown"])

    assert remaining(mine.urn) == pytest.approx(120, abs=1)
    assert remaining(bobs.urn) == pytest.approx(5, abs=1)
    with connection.cursor() as cursor:
        cursor.execute("SELECT session_id, last_seen_at >= now() FROM operators_operatorsession ORDER BY session_id")
        assert cursor.fetchall() == [("sid-a", True), ("sid-b", False)]


# --- sessions ----------------------------------------------------------------------------------------


def test_opening_a_session_records_it_and_profiles_an_operator_known_only_from_tokens():
    open_session("sid-1", instance="web-7:4242")

    session = OperatorSession.objects.get(session_id="sid-1")
    assert (session.operator_urn, session.airline, session.role, session.server_instance) == (
        ALICE,
        "IB",
        "AIRPORT_OPERATOR",
        "web-7:4242",
    )
    profile = Operator.objects.get(operator_urn=ALICE)
    assert (profile.airline, profile.role, profile.active, profile.display_name) == (
        "IB",
        "AIRPORT_OPERATOR",
        True,
        "ib-alice",
    )
    open_session("sid-1", instance="web-7:4242")  # the same socket again: harmless
    assert OperatorSession.objects.count() == 1


def test_a_known_operators_role_follows_the_token():
    Operator.objects.create(operator_urn=ALICE, airline="IB", role="AIRPORT_OPERATOR", display_name="Alice")
    services.operator_session_open(
        principal=principal(role=Role.OPS_SUPERVISOR), session_id="sid-1", server_instance="web-1:1"
    )
    profile = Operator.objects.get(operator_urn=ALICE)
    assert profile.role == "OPS_SUPERVISOR" and profile.display_name == "Alice"


def test_a_deactivated_operator_cannot_open_a_session():
    Operator.objects.create(operator_urn=ALICE, airline="IB", role="AIRPORT_OPERATOR", display_name="A", active=False)
    assert not operator_is_active(airline="IB", operator_urn=ALICE)
    with pytest.raises(Problem) as refused:
        open_session("sid-1")
    assert refused.value.status_code == 403 and refused.value.slug == "operator-deactivated"
    assert not OperatorSession.objects.exists()


def test_operator_is_active_for_unknown_and_active_operators_only():
    assert operator_is_active(airline="IB", operator_urn="urn:nexa:user:never-seen")
    Operator.objects.create(operator_urn=BOB, airline="IB", role="AIRPORT_OPERATOR", display_name="B")
    assert operator_is_active(airline="IB", operator_urn=BOB)
    Operator.objects.filter(operator_urn=BOB).update(active=False)
    assert not operator_is_active(airline="IB", operator_urn=BOB)


def test_closing_the_last_session_releases_every_lock_of_the_operator():
    first, second, bobs = SubCaseFactory(), SubCaseFactory(), SubCaseFactory()
    open_session("sid-1")
    open_session("sid-b", BOB)
    for sub_case in (first, second):
        services.subcase_lock(principal=principal(), sub_case_urn=sub_case.urn)
    services.subcase_lock(principal=principal(BOB), sub_case_urn=bobs.urn)

    released = services.operator_session_close(session_id="sid-1")

    assert released == sorted([first.urn, second.urn])
    assert not EntityLock.objects.filter(holder=ALICE).exists()
    assert EntityLock.objects.get(entity_urn=bobs.urn).holder == BOB
    for sub_case in (first, second):
        entry = AuditEntry.objects.get(entity_urn=sub_case.urn, action="subcase.lock_released")
        assert entry.actor == ALICE and entry.reason == "disconnected"
        assert lock_events(sub_case.urn)[-1]["lockedBy"] is None
    assert not OperatorSession.objects.filter(session_id="sid-1").exists()
    assert Operator.objects.get(operator_urn=ALICE).last_seen_at is not None


def test_closing_a_session_that_is_not_the_last_keeps_the_locks():
    sub_case = SubCaseFactory()
    open_session("sid-1", instance="web-1:1")
    open_session("sid-2", instance="web-2:2")
    services.subcase_lock(principal=principal(), sub_case_urn=sub_case.urn)

    assert services.operator_session_close(session_id="sid-1") == []
    assert EntityLock.objects.get(entity_urn=sub_case.urn).holder == ALICE

    assert services.operator_session_close(session_id="sid-2") == [sub_case.urn]
    assert EntityLock.objects.get(entity_urn=sub_case.urn).holder is None


def test_closing_an_unknown_session_does_nothing():
    assert services.operator_session_close(session_id="never-opened") == []


def test_the_disconnect_path_is_a_handful_of_queries(django_assert_max_num_queries):
    sub_cases = [SubCaseFactory(), SubCaseFactory()]
    open_session("sid-1")
    for sub_case in sub_cases:
        services.subcase_lock(principal=principal(), sub_case_urn=sub_case.urn)

    # delete session, advisory lock, last-seen, other sessions?, release, sub-case states; then one audit
    # row and one outbox row per lock; plus the savepoint around it (the test runs in a transaction).
    with django_assert_max_num_queries(8 + 2 * len(sub_cases)):
        assert len(services.operator_session_close(session_id="sid-1")) == 2


def test_operator_locks_release_all_releases_and_reports_each_lock():
    sub_cases = [SubCaseFactory(), SubCaseFactory()]
    for sub_case in sub_cases:
        services.subcase_lock(principal=principal(), sub_case_urn=sub_case.urn)

    released = services.operator_locks_release_all(
        airline="IB", operator_urn=ALICE, reason="deactivated", actor="urn:nexa:user:ib-admin"
    )

    assert released == sorted(sub_case.urn for sub_case in sub_cases)
    entries = AuditEntry.objects.filter(action="subcase.lock_released")
    assert entries.count() == 2 and {entry.actor for entry in entries} == {"urn:nexa:user:ib-admin"}
    assert services.operator_locks_release_all(airline="IB", operator_urn=ALICE, reason="again") == []
    # Another airline's holder of the same URN is untouched: releases are per airline.
    assert services.operator_locks_release_all(airline="LH", operator_urn=ALICE, reason="x") == []


# --- stale sessions -------------------------------------------------------------------------------------


def test_stale_sweep_closes_silent_sessions_and_releases_their_operators_locks(settings):
    settings.NEXA_SESSION_STALE_SECONDS = 60
    mine, bobs = SubCaseFactory(), SubCaseFactory()
    open_session("sid-dead", instance="web-crashed:1")
    open_session("sid-bob", BOB, instance="web-ok:2")
    services.subcase_lock(principal=principal(), sub_case_urn=mine.urn)
    services.subcase_lock(principal=principal(BOB), sub_case_urn=bobs.urn)
    OperatorSession.objects.filter(session_id="sid-dead").update(last_seen_at=Now() - timedelta(seconds=61))
    OperatorSession.objects.filter(session_id="sid-bob").update(last_seen_at=Now() - timedelta(seconds=59))

    assert tasks.operator_sessions_stale_sweep() == 1

    assert list(OperatorSession.objects.values_list("session_id", flat=True)) == ["sid-bob"]
    assert EntityLock.objects.get(entity_urn=mine.urn).holder is None
    assert EntityLock.objects.get(entity_urn=bobs.urn).holder == BOB
    entry = AuditEntry.objects.get(entity_urn=mine.urn, action="subcase.lock_released")
    assert entry.actor == services.SYSTEM_SESSION_SWEEP and entry.reason == "session went stale"
    assert lock_events(mine.urn)[-1]["lockedBy"] is None
    assert services.operator_sessions_stale_sweep() == 0


def test_stale_sweep_keeps_locks_of_an_operator_still_connected_elsewhere():
    sub_case = SubCaseFactory()
    open_session("sid-dead", instance="web-crashed:1")
    open_session("sid-alive", instance="web-ok:2")
    services.subcase_lock(principal=principal(), sub_case_urn=sub_case.urn)
    OperatorSession.objects.filter(session_id="sid-dead").update(last_seen_at=Now() - timedelta(seconds=600))

    assert services.operator_sessions_stale_sweep() == 1
    assert EntityLock.objects.get(entity_urn=sub_case.urn).holder == ALICE


# --- concurrency ----------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_sockets_of_one_operator_closing_at_once_release_the_locks_exactly_once():
    sub_case = SubCaseFactory()
    open_session("sid-1", instance="web-1:1")
    open_session("sid-2", instance="web-2:2")
    services.subcase_lock(principal=principal(), sub_case_urn=sub_case.urn)
    barrier = threading.Barrier(2)
    results: dict[str, list[str]] = {}

    def close(session_id: str) -> None:
        try:
            barrier.wait(timeout=10)
            results[session_id] = services.operator_session_close(session_id=session_id)
        finally:
            connection.close()

    threads = [threading.Thread(target=close, args=(sid,)) for sid in ("sid-1", "sid-2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(results.values(), key=len) == [[], [sub_case.urn]]
    assert EntityLock.objects.get(entity_urn=sub_case.urn).holder is None
    assert AuditEntry.objects.filter(entity_urn=sub_case.urn, action="subcase.lock_released").count() == 1
    assert OutboxEvent.objects.filter(event="subcase:state-changed", payload__lockedBy=None).count() == 1
