"""Entity locks over HTTP: grant, renewal, refusal, unlock, force-unlock, fencing tokens, leases."""

import pytest
from django.db import connection

from audit.models import AuditEntry
from cases import services as case_services
from nexa.platform.auth import Principal
from nexa.platform.problems import Problem
from nexa.platform.roles import Role
from operators.models import EntityLock, Operator
from tests.cases.factories import CaseFactory, SubCaseFactory
from tests.operators.helpers import assert_problem, expire_lease, force_unlock, lock, lock_events, unlock

pytestmark = pytest.mark.django_db

ALICE, BOB = "urn:nexa:user:ib-alice", "urn:nexa:user:ib-bob"


@pytest.fixture
def alice(client_for):
    return client_for("IB", Role.AIRPORT_OPERATOR, ALICE)


@pytest.fixture
def bob(client_for):
    return client_for("IB", Role.AIRPORT_OPERATOR, BOB)


@pytest.fixture
def sub_case():
    return SubCaseFactory()


def principal(operator: str, role: Role = Role.AIRPORT_OPERATOR, airline: str = "IB") -> Principal:
    return Principal(airline=airline, role=role, operator_urn=operator, subject=operator)


def transition(client, sub_case, version: int, name: str = "mark_grouped", **headers):
    return client.post(
        f"/v1/subcases/{sub_case.urn}/transition", {"transition": name, "version": version}, format="json", **headers
    )


# --- lock ---------------------------------------------------------------------------------------------


def test_lock_grants_a_lease_with_a_fencing_token_audited_and_published(alice, sub_case):
    response = lock(alice, sub_case.urn)

    assert response.status_code == 200, response.content
    assert response.json() == {
        "subCaseUrn": sub_case.urn,
        "lockedBy": ALICE,
        "fencingToken": 1,
        "expiresInSeconds": 120,
    }
    row = EntityLock.objects.get(entity_urn=sub_case.urn)
    assert (row.holder, row.airline, row.case_urn, row.fencing_token) == (ALICE, "IB", sub_case.case.urn, 1)

    entry = AuditEntry.objects.get(entity_urn=sub_case.urn, action="subcase.lock_granted")
    assert entry.actor == ALICE and entry.case_urn == sub_case.case.urn
    assert entry.before == {"lockedBy": None} and entry.after == {"lockedBy": ALICE, "fencingToken": 1}
    assert entry.correlation_urn == response["X-Correlation-Id"]
    assert lock_events(sub_case.urn) == [
        {"subCaseUrn": sub_case.urn, "caseUrn": sub_case.case.urn, "status": "PENDING", "version": 1, "lockedBy": ALICE}
    ]


def test_lease_length_follows_the_setting(alice, sub_case, settings):
    settings.NEXA_LOCK_LEASE_SECONDS = 7
    assert lock(alice, sub_case.urn).json()["expiresInSeconds"] == 7


def test_the_holder_locking_again_renews_the_lease_and_keeps_the_token(alice, sub_case):
    first = lock(alice, sub_case.urn).json()
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE operators_entitylock SET expires_at = now() + interval '5 seconds' WHERE entity_urn = %s",
            [sub_case.urn],
        )

    renewed = lock(alice, sub_case.urn)

    assert renewed.status_code == 200
    assert renewed.json()["fencingToken"] == first["fencingToken"] == 1
    assert renewed.json()["expiresInSeconds"] == 120  # extended from 5 s
    # A renewal changes no holder: one grant in the audit log, one event.
    assert AuditEntry.objects.filter(entity_urn=sub_case.urn).count() == 1
    assert len(lock_events(sub_case.urn)) == 1


def test_another_operator_gets_409_with_the_holder_and_time_left(alice, bob, sub_case):
    lock(alice, sub_case.urn)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE operators_entitylock SET expires_at = now() + interval '42.3 seconds' WHERE entity_urn = %s",
            [sub_case.urn],
        )

    body = assert_problem(lock(bob, sub_case.urn), 409, "subcase-locked")

    assert body["lockedBy"] == ALICE and body["expiresInSeconds"] == 43
    assert EntityLock.objects.get(entity_urn=sub_case.urn).holder == ALICE
    assert AuditEntry.objects.filter(entity_urn=sub_case.urn).count() == 1


def test_an_expired_lease_goes_to_the_next_operator_with_a_new_token(alice, bob, sub_case):
    lock(alice, sub_case.urn)
    expire_lease(sub_case.urn)

    response = lock(bob, sub_case.urn)

    assert response.status_code == 200, response.content
    assert response.json()["lockedBy"] == BOB and response.json()["fencingToken"] == 2
    entry = AuditEntry.objects.get(entity_urn=sub_case.urn, action="subcase.lock_granted", actor=BOB)
    assert entry.before == {"lockedBy": ALICE} and entry.after == {"lockedBy": BOB, "fencingToken": 2}
    assert [event["lockedBy"] for event in lock_events(sub_case.urn)] == [ALICE, BOB]


def test_the_former_holder_relocking_after_expiry_gets_a_new_token(alice, sub_case):
    lock(alice, sub_case.urn)
    expire_lease(sub_case.urn)
    assert lock(alice, sub_case.urn).json()["fencingToken"] == 2


def test_fencing_tokens_strictly_grow_across_grants_and_never_repeat(alice, bob, sub_case):
    tokens = [lock(alice, sub_case.urn).json()["fencingToken"]]
    unlock(alice, sub_case.urn)
    tokens.append(lock(bob, sub_case.urn).json()["fencingToken"])
    expire_lease(sub_case.urn)
    tokens.append(lock(alice, sub_case.urn).json()["fencingToken"])
    unlock(alice, sub_case.urn)
    tokens.append(lock(alice, sub_case.urn).json()["fencingToken"])

    assert tokens == [1, 2, 3, 4]


def test_locks_of_different_sub_cases_are_independent(alice, bob):
    first, second = SubCaseFactory(), SubCaseFactory()
    assert lock(alice, first.urn).status_code == 200
    assert lock(bob, second.urn).json()["fencingToken"] == 1


def test_a_deactivated_operator_cannot_lock(alice, sub_case):
    Operator.objects.create(
        operator_urn=ALICE, airline="IB", role="AIRPORT_OPERATOR", display_name="Alice", active=False
    )
    assert_problem(lock(alice, sub_case.urn), 403, "operator-deactivated")
    assert not EntityLock.objects.filter(entity_urn=sub_case.urn).exists()


# --- unlock -------------------------------------------------------------------------------------------


def test_the_holder_unlocks_audited_and_published_with_locked_by_null(alice, sub_case):
    lock(alice, sub_case.urn)

    response = unlock(alice, sub_case.urn)

    assert response.status_code == 200, response.content
    assert response.json() == {"subCaseUrn": sub_case.urn, "lockedBy": None}
    row = EntityLock.objects.get(entity_urn=sub_case.urn)
    assert row.holder is None and row.fencing_token == 1  # the token is kept: it never repeats
    entry = AuditEntry.objects.get(entity_urn=sub_case.urn, action="subcase.lock_released")
    assert entry.actor == ALICE and entry.before == {"lockedBy": ALICE, "fencingToken": 1}
    assert entry.after == {"lockedBy": None}
    assert [event["lockedBy"] for event in lock_events(sub_case.urn)] == [ALICE, None]


def test_unlock_when_not_locked_and_when_locked_by_another_are_two_distinct_409s(alice, bob, sub_case):
    never_locked = assert_problem(unlock(alice, sub_case.urn), 409, "subcase-not-locked")
    assert "lockedBy" not in never_locked

    lock(alice, sub_case.urn)
    by_another = assert_problem(unlock(bob, sub_case.urn), 409, "subcase-locked-by-another")
    assert by_another["lockedBy"] == ALICE and 0 < by_another["expiresInSeconds"] <= 120
    assert EntityLock.objects.get(entity_urn=sub_case.urn).holder == ALICE

    unlock(alice, sub_case.urn)
    assert_problem(unlock(alice, sub_case.urn), 409, "subcase-not-locked")


def test_unlocking_an_expired_lease_is_not_locked(alice, sub_case):
    lock(alice, sub_case.urn)
    expire_lease(sub_case.urn)
    assert_problem(unlock(alice, sub_case.urn), 409, "subcase-not-locked")


# --- force-unlock -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "status"),
    [
        (Role.AIRPORT_OPERATOR, 403),
        (Role.FINANCE_AUDIT, 403),
        (Role.OPS_SUPERVISOR, 200),
        (Role.ADMIN, 200),
    ],
)
def test_force_unlock_role_matrix(client_for, alice, sub_case, role, status):
    lock(alice, sub_case.urn)
    response = force_unlock(client_for("IB", role, "urn:nexa:user:ib-boss"), sub_case.urn, {"reason": "shift change"})
    assert response.status_code == status, response.content
    assert (EntityLock.objects.get(entity_urn=sub_case.urn).holder is None) is (status == 200)


@pytest.mark.parametrize("body", [{}, {"reason": ""}, {"reason": "   "}, {"reason": None}])
def test_force_unlock_needs_a_reason(client_for, alice, sub_case, body):
    lock(alice, sub_case.urn)
    supervisor = client_for("IB", Role.OPS_SUPERVISOR, "urn:nexa:user:ib-boss")
    problem = assert_problem(force_unlock(supervisor, sub_case.urn, body), 400, "validation-error")
    assert problem["errors"][0]["field"] == "reason"
    assert EntityLock.objects.get(entity_urn=sub_case.urn).holder == ALICE


def test_force_unlock_releases_audits_the_reason_and_publishes(client_for, alice, sub_case):
    lock(alice, sub_case.urn)
    supervisor = client_for("IB", Role.OPS_SUPERVISOR, "urn:nexa:user:ib-boss")

    response = force_unlock(supervisor, sub_case.urn, {"reason": "Alice left her desk"})

    assert response.status_code == 200, response.content
    assert response.json() == {"subCaseUrn": sub_case.urn, "lockedBy": None, "previousHolder": ALICE}
    entry = AuditEntry.objects.get(entity_urn=sub_case.urn, action="subcase.lock_force_released")
    assert entry.actor == "urn:nexa:user:ib-boss" and entry.reason == "Alice left her desk"
    assert entry.before == {"lockedBy": ALICE, "fencingToken": 1} and entry.after == {"lockedBy": None}
    assert lock_events(sub_case.urn)[-1] == {
        "subCaseUrn": sub_case.urn,
        "caseUrn": sub_case.case.urn,
        "status": "PENDING",
        "version": 1,
        "lockedBy": None,
    }


def test_force_unlock_of_a_free_sub_case_is_409(client_for, sub_case):
    supervisor = client_for("IB", Role.OPS_SUPERVISOR, "urn:nexa:user:ib-boss")
    assert_problem(force_unlock(supervisor, sub_case.urn, {"reason": "why not"}), 409, "subcase-not-locked")


def test_after_force_unlock_the_former_holders_token_is_stale(client_for, alice, sub_case):
    token = lock(alice, sub_case.urn).json()["fencingToken"]
    force_unlock(client_for("IB", Role.OPS_SUPERVISOR, "urn:nexa:user:ib-boss"), sub_case.urn, {"reason": "stuck"})

    with pytest.raises(Problem) as refused:
        case_services.subcase_transition(
            principal=principal(ALICE),
            sub_case=sub_case,
            transition="mark_grouped",
            expected_version=1,
            fencing_token=token,
        )
    assert refused.value.status_code == 409 and refused.value.slug == "stale-fencing-token"


# --- the guard on sub-case writes -----------------------------------------------------------------------


def test_a_sub_case_locked_by_another_operator_refuses_their_transition(alice, bob, sub_case):
    lock(alice, sub_case.urn)

    body = assert_problem(transition(bob, sub_case, 1), 409, "subcase-locked")

    assert body["lockedBy"] == ALICE and 0 < body["expiresInSeconds"] <= 120
    sub_case.refresh_from_db()
    assert (sub_case.status, sub_case.version) == ("PENDING", 1)


def test_the_holder_transitions_with_or_without_its_current_token(alice, sub_case):
    token = lock(alice, sub_case.urn).json()["fencingToken"]
    assert transition(alice, sub_case, 1).status_code == 200

    moved = case_services.subcase_transition(
        principal=principal(ALICE),
        sub_case=sub_case,
        transition="mark_allocated",
        expected_version=2,
        fencing_token=token,
    )
    assert moved.status == "ALLOCATED" and moved.version == 3


def test_anyone_may_write_a_free_sub_case_without_a_token(bob, sub_case):
    assert transition(bob, sub_case, 1).status_code == 200


def test_a_token_on_a_never_locked_sub_case_is_stale(sub_case):
    with pytest.raises(Problem) as refused:
        case_services.subcase_transition(
            principal=principal(BOB),
            sub_case=sub_case,
            transition="mark_grouped",
            expected_version=1,
            fencing_token=1,
        )
    assert refused.value.slug == "stale-fencing-token"


def test_after_an_expired_lease_is_taken_over_the_old_holders_token_is_refused(alice, bob, sub_case):
    old_token = lock(alice, sub_case.urn).json()["fencingToken"]
    expire_lease(sub_case.urn)
    new_token = lock(bob, sub_case.urn).json()["fencingToken"]
    assert new_token > old_token

    # Alice (whose lease ran out while she was away) tries to write with her old token.
    with pytest.raises(Problem) as refused:
        case_services.subcase_transition(
            principal=principal(ALICE),
            sub_case=sub_case,
            transition="mark_grouped",
            expected_version=1,
            fencing_token=old_token,
        )
    assert refused.value.status_code == 409 and refused.value.slug == "subcase-locked"
    assert refused.value.extensions["lockedBy"] == BOB

    # Bob's current token is accepted.
    moved = case_services.subcase_transition(
        principal=principal(BOB),
        sub_case=sub_case,
        transition="mark_grouped",
        expected_version=1,
        fencing_token=new_token,
    )
    assert moved.version == 2


def test_an_expired_lease_not_taken_over_still_makes_the_token_stale(alice, sub_case):
    token = lock(alice, sub_case.urn).json()["fencingToken"]
    expire_lease(sub_case.urn)

    with pytest.raises(Problem) as refused:
        case_services.subcase_transition(
            principal=principal(ALICE),
            sub_case=sub_case,
            transition="mark_grouped",
            expected_version=1,
            fencing_token=token,
        )
    assert refused.value.slug == "stale-fencing-token"
    sub_case.refresh_from_db()
    assert sub_case.version == 1


def test_an_old_token_of_the_same_holder_is_stale(alice, sub_case):
    old = lock(alice, sub_case.urn).json()["fencingToken"]
    unlock(alice, sub_case.urn)
    lock(alice, sub_case.urn)

    with pytest.raises(Problem) as refused:
        case_services.subcase_transition(
            principal=principal(ALICE),
            sub_case=sub_case,
            transition="mark_grouped",
            expected_version=1,
            fencing_token=old,
        )
    assert refused.value.slug == "stale-fencing-token"


def test_transition_route_refuses_a_stale_x_fencing_token(alice, sub_case):
    old = lock(alice, sub_case.urn).json()["fencingToken"]
    unlock(alice, sub_case.urn)
    current = lock(alice, sub_case.urn).json()["fencingToken"]

    assert_problem(transition(alice, sub_case, 1, HTTP_X_FENCING_TOKEN=str(old)), 409, "stale-fencing-token")
    assert transition(alice, sub_case, 1, HTTP_X_FENCING_TOKEN=str(current)).status_code == 200


def test_automatic_grouping_respects_another_operators_lock(client_for, alice):
    case = CaseFactory()
    mine, theirs = SubCaseFactory(case=case), SubCaseFactory(case=case)
    lock(alice, theirs.urn)
    bob = client_for("IB", Role.AIRPORT_OPERATOR, BOB)

    response = bob.post(f"/v1/cases/{case.urn}/passenger-groups", {}, format="json")

    assert_problem(response, 409, "subcase-locked")
    mine.refresh_from_db()
    assert mine.status == "PENDING"  # nothing of the refused write happened
