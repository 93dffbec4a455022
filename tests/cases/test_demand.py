"""Demand waves in the service (cases.services.demand): the room estimate, the approval TTL, lazy expiry, and
the concurrency claims with real concurrent clients — two INITIAL requests for one case at once give one 201
and one 409, two approvals of one wave at once give one 200 and one 409."""

import datetime as dt
import json
import threading

import pytest
from django.db import connection, transaction
from django.test import override_settings
from django.utils import timezone

from audit.models import AuditEntry
from cases import services
from cases.models import DemandKind, DemandStatus, DemandWave, DemandWaveMember, SpecialNeed, SubCaseStatus
from nexa.platform.models import TenantSettings
from nexa.platform.problems import Problem
from nexa.platform.roles import Role
from tests.cases.demand_helpers import demand_body, grouped_case, lapse, make_wave, principal, today
from tests.cases.factories import SubCaseFactory

pytestmark = pytest.mark.django_db


def request(case, **overrides):
    values = {
        "kind": DemandKind.INITIAL,
        "check_in": today(),
        "nights": 1,
        "reason": "storm",
        "subcase_ids": None,
        "group_ids": None,
    }
    values.update(overrides)
    return services.demand_request(principal=principal(case.airline), case=case, **values)


# --- the room estimate ----------------------------------------------------------------------------------


def test_rooms_are_estimated_per_group():
    case, groups, _members = grouped_case(sizes=(1, 2, 3, 4))
    minor = SubCaseFactory(
        case=case, group=groups[3], status=SubCaseStatus.GROUPED, special_needs=[SpecialNeed.UNACCOMPANIED_MINOR]
    )
    wave = request(case)
    # 1 → 1, 2 → 1, 3 → 2, 4 + a minor → 2 + 1
    assert (wave.people, wave.rooms) == (11, 7)
    assert DemandWaveMember.objects.filter(wave=wave).count() == 11
    assert DemandWaveMember.objects.get(sub_case=minor).group_id == groups[3].pk


def test_a_passenger_without_a_group_counts_as_a_group_of_one():
    case, _, _ = grouped_case(sizes=())
    loose = [SubCaseFactory(case=case, status=SubCaseStatus.GROUPED) for _ in range(3)]
    assert services.estimated_rooms(loose) == 3


def test_members_that_moved_on_are_not_asked_for():
    case, groups, members = grouped_case(sizes=(3,))
    members[0][2].status = SubCaseStatus.CANCELLED
    members[0][2].save()
    wave = request(case, group_ids=[groups[0].pk])
    assert wave.people == 2
    assert set(DemandWaveMember.objects.values_list("sub_case_id", flat=True)) == {s.pk for s in members[0][:2]}


# --- TTL and lazy expiry ------------------------------------------------------------------------------


@override_settings(NEXA_DEMAND_APPROVAL_TTL_MINUTES=45)
def test_the_ttl_is_the_airlines_else_the_environments():
    assert services.demand_approval_ttl("IB") == dt.timedelta(minutes=45)
    TenantSettings.objects.create(airline="IB", demand_approval_ttl_minutes=10)
    assert services.demand_approval_ttl("IB") == dt.timedelta(minutes=10)
    TenantSettings.objects.create(airline="LH")
    assert services.demand_approval_ttl("LH") == dt.timedelta(minutes=45)
    case, _, _ = grouped_case()
    wave = request(case)
    assert wave.expires_at - wave.created_at == dt.timedelta(minutes=10)


def test_a_lapsed_wave_reads_expired_before_its_row_says_so():
    case, _, members = grouped_case()
    wave = make_wave(case, members[0])
    assert wave.status_at(timezone.now()) == DemandStatus.PENDING_APPROVAL
    lapse(wave)
    wave.refresh_from_db()
    assert wave.status == DemandStatus.PENDING_APPROVAL
    assert wave.status_at(timezone.now()) == DemandStatus.EXPIRED


def test_approving_a_lapsed_wave_stores_expired_and_refuses():
    case, _, members = grouped_case()
    wave = make_wave(case, members[0])
    lapse(wave)
    with pytest.raises(Problem) as refused:
        services.demand_approve(principal=principal(role=Role.OPS_SUPERVISOR), wave=wave, reason="late")
    assert refused.value.status_code == 409 and refused.value.slug == "demand-expired"
    wave.refresh_from_db()
    assert (wave.status, wave.version) == (DemandStatus.EXPIRED, 2)


def test_an_expired_wave_frees_its_passengers_for_an_incremental_wave():
    case, _, members = grouped_case(sizes=(2, 1))
    make_wave(case, members[1], status=DemandStatus.APPROVED)  # the INITIAL one
    stale = make_wave(case, members[0], kind=DemandKind.INCREMENTAL)
    lapse(stale)
    wave = request(case, kind=DemandKind.INCREMENTAL)
    assert wave.people == 2
    stale.refresh_from_db()
    assert stale.status == DemandStatus.EXPIRED


def test_a_passenger_review_sent_back_to_grouped_may_join_a_new_wave_and_one_still_allocated_may_not():
    # The INITIAL wave was allocated: one passenger placed (ALLOCATED), one sent to review and returned to
    # the flow by its resolution (GROUPED again, e.g. after a split). Only the returned one is free.
    case, _, members = grouped_case(sizes=(1, 1))
    placed, returned = members[0][0], members[1][0]
    make_wave(case, [placed, returned], status=DemandStatus.ALLOCATED)
    placed.status = SubCaseStatus.ALLOCATED
    placed.save(update_fields=["status"])
    wave = request(case, kind=DemandKind.INCREMENTAL, subcase_ids=[returned.pk])
    assert wave.people == 1
    with pytest.raises(Problem) as refused:
        request(case, kind=DemandKind.INCREMENTAL, subcase_ids=[placed.pk])
    assert refused.value.status_code == 422


def test_resolving_needs_a_wave_of_the_principals_airline():
    case, _, members = grouped_case("LH")
    wave = make_wave(case, members[0])
    with pytest.raises(Problem) as refused:
        services.demand_approve(principal=principal("IB", Role.ADMIN), wave=wave, reason="x")
    assert refused.value.status_code == 404
    wave.refresh_from_db()
    assert wave.status == DemandStatus.PENDING_APPROVAL


# --- concurrency (real threads, each with its own database connection) ----------------------------------


def _race(calls):
    """Run the callables at the same instant (a barrier), each on its own connection; their results."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(index, call):
        try:
            barrier.wait()
            results[index] = call()
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.mark.django_db(transaction=True)
def test_two_initial_requests_at_once_give_one_wave_and_one_409(client_for):
    case, _, members = grouped_case(sizes=(2, 2))
    url = f"/v1/demand/case/{case.urn}"
    clients = [client_for("IB", Role.AIRPORT_OPERATOR) for _ in range(2)]
    bodies = [demand_body(subCaseUrns=[s.urn for s in group]) for group in members]
    responses = _race(
        [
            lambda c=client, b=body: c.post(url, data=json.dumps(b), content_type="application/json")
            for client, body in zip(clients, bodies, strict=True)
        ]
    )
    assert sorted(r.status_code for r in responses) == [201, 409]
    winner = next(r.json() for r in responses if r.status_code == 201)
    loser = next(r.json() for r in responses if r.status_code == 409)
    assert loser["existingDemandUrn"] == winner["urn"]
    assert DemandWave.objects.count() == 1
    assert AuditEntry.objects.filter(action="demand.requested").count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_approvals_at_once_give_one_200_and_one_409(client_for):
    case, _, members = grouped_case()
    wave = make_wave(case, members[0])
    url = f"/v1/demand/{wave.urn}/approve"
    clients = [client_for("IB", Role.OPS_SUPERVISOR), client_for("IB", Role.ADMIN)]
    responses = _race(
        [
            lambda c=client: c.post(url, data=json.dumps({"reason": "go"}), content_type="application/json")
            for client in clients
        ]
    )
    assert sorted(r.status_code for r in responses) == [200, 409]
    loser = next(r.json() for r in responses if r.status_code == 409)
    assert loser["currentStatus"] == "APPROVED"
    wave.refresh_from_db()
    assert (wave.status, wave.version) == (DemandStatus.APPROVED, 2)
    assert AuditEntry.objects.filter(action="demand.approved").count() == 1


@pytest.mark.django_db(transaction=True)
def test_an_approval_and_a_rejection_at_once_resolve_the_wave_once(client_for):
    case, _, members = grouped_case()
    wave = make_wave(case, members[0])
    supervisor = client_for("IB", Role.OPS_SUPERVISOR)
    admin = client_for("IB", Role.ADMIN)
    responses = _race(
        [
            lambda: supervisor.post(
                f"/v1/demand/{wave.urn}/approve", data=json.dumps({"reason": "go"}), content_type="application/json"
            ),
            lambda: admin.post(
                f"/v1/demand/{wave.urn}/reject", data=json.dumps({"reason": "no"}), content_type="application/json"
            ),
        ]
    )
    assert sorted(r.status_code for r in responses) == [200, 409]
    wave.refresh_from_db()
    winner = next(r.json() for r in responses if r.status_code == 200)
    assert wave.status == winner["status"] and wave.version == 2
    assert AuditEntry.objects.filter(action__in=["demand.approved", "demand.rejected"]).count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_request_waits_for_a_concurrent_writer_of_the_case_and_answers_409_naming_its_wave(client_for):
    """Another transaction wrote an INITIAL wave of the case and has not committed: the request waits on the
    case row (the foreign key's check holds a share lock on it), then sees the committed wave and answers 409
    naming it — never a 500, never a second INITIAL wave. (Every writer of waves takes the case lock first, so
    the unique index's refusal, also answered 409, is only a backstop.)"""
    case, _, members = grouped_case(sizes=(1, 1))
    client = client_for("IB", Role.AIRPORT_OPERATOR)
    url = f"/v1/demand/case/{case.urn}"
    body = demand_body(subCaseUrns=[members[1][0].urn])
    responses = []

    def request_rooms():
        try:
            responses.append(client.post(url, data=json.dumps(body), content_type="application/json"))
        finally:
            connection.close()

    with transaction.atomic():
        first = make_wave(case, members[0])
        with connection.cursor() as cursor:
            # Django's foreign keys are deferred: check them now, so this transaction holds the case row's
            # share lock the way a writer under the case lock would hold the row itself.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            thread = threading.Thread(target=request_rooms)
            thread.start()
            for _ in range(2000):  # until the request waits on this transaction (a lock not granted)
                cursor.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")
                if cursor.fetchone()[0]:
                    break
                thread.join(0.005)
            else:
                pytest.fail(f"the request never waited: {responses}")
    thread.join()
    problem = responses[0].json()
    assert responses[0].status_code == 409 and problem["existingDemandUrn"] == first.urn, problem
    assert list(DemandWave.objects.values_list("id", flat=True)) == [first.pk]
    assert not AuditEntry.objects.filter(action="demand.requested").exists()
