"""GET /v1/operators (presence, locks held, tenant isolation) and POST /v1/operators/{urn}/deactivate."""

from datetime import timedelta
from urllib.parse import quote

import pytest
from django.db.models.functions import Now
from rest_framework.test import APIClient

from audit.models import AuditEntry
from nexa.platform.models import OutboxEvent
from nexa.platform.problems import Problem
from nexa.platform.roles import Role
from operators import services
from operators.models import EntityLock, Operator, OperatorSession
from tests.api_base import assert_problem
from tests.cases.factories import CaseFactory, SubCaseFactory
from tests.operators.helpers import expire_lease, lock_events
from tests.operators.test_sessions import principal

pytestmark = pytest.mark.django_db

ALICE, BOB, CARLA = "urn:nexa:user:ib-alice", "urn:nexa:user:ib-bob", "urn:nexa:user:ib-carla"
HANS = "urn:nexa:user:lh-hans"


def profile(operator: str, airline: str = "IB", role: str = "AIRPORT_OPERATOR", name: str = "") -> Operator:
    return Operator.objects.create(operator_urn=operator, airline=airline, role=role, display_name=name or operator)


def deactivate(client: APIClient, operator: str, body: dict | None = None):
    return client.post(
        f"/v1/operators/{quote(operator, safe=':')}/deactivate",
        body if body is not None else {"reason": "left the company"},
        format="json",
    )


def reactivate(client: APIClient, operator: str, body: dict | None = None):
    return client.post(
        f"/v1/operators/{quote(operator, safe=':')}/reactivate",
        body if body is not None else {"reason": "back"},
        format="json",
    )


@pytest.fixture
def admin(client_for):
    return client_for("IB", Role.ADMIN, "urn:nexa:user:ib-admin")


# --- GET /v1/operators --------------------------------------------------------------------------------


def test_list_shows_presence_last_seen_and_live_locks_of_own_airline_only(client_for):
    profile(ALICE, name="Alice Ramos")
    profile(BOB, role="OPS_SUPERVISOR", name="Bob Ortiz")
    profile(HANS, airline="LH", name="Hans")
    held, expired = SubCaseFactory(), SubCaseFactory()
    services.operator_session_open(principal=principal(ALICE), session_id="sid-a", server_instance="web-1:1")
    services.subcase_lock(principal=principal(ALICE), sub_case_urn=held.urn)
    services.subcase_lock(principal=principal(ALICE), sub_case_urn=expired.urn)
    expire_lease(expired.urn)
    lh_case = CaseFactory(airline="LH")
    services.subcase_lock(
        principal=principal(HANS, airline="LH"), sub_case_urn=SubCaseFactory(case=lh_case, airline="LH").urn
    )

    response = client_for("IB", Role.AIRPORT_OPERATOR, CARLA).get("/v1/operators")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["hasMore"] is False and body["nextCursor"] is None
    rows = {row["operatorUrn"]: row for row in body["items"]}
    assert list(rows) == [ALICE, BOB]  # ordered by URN; LH's Hans is not there
    alice = rows[ALICE]
    assert alice["displayName"] == "Alice Ramos" and alice["role"] == "AIRPORT_OPERATOR" and alice["active"] is True
    assert alice["connected"] is True and alice["lastSeenAt"] is not None
    assert alice["locksHeld"] == [held.urn]  # the expired lease is not held any more
    assert rows[BOB] == {
        "operatorUrn": BOB,
        "displayName": "Bob Ortiz",
        "role": "OPS_SUPERVISOR",
        "active": True,
        "connected": False,
        "lastSeenAt": None,
        "locksHeld": [],
    }


def test_a_stale_session_is_not_connected_and_a_closed_one_leaves_last_seen(client_for):
    services.operator_session_open(principal=principal(ALICE), session_id="sid-a", server_instance="web-1:1")
    services.operator_session_open(principal=principal(BOB), session_id="sid-b", server_instance="web-1:1")
    OperatorSession.objects.filter(session_id="sid-a").update(last_seen_at=Now() - timedelta(seconds=61))
    services.operator_session_close(session_id="sid-b")

    rows = {row["operatorUrn"]: row for row in client_for("IB").get("/v1/operators").json()["items"]}

    assert rows[ALICE]["connected"] is False and rows[ALICE]["lastSeenAt"] is not None
    assert rows[BOB]["connected"] is False and rows[BOB]["lastSeenAt"] is not None


def test_list_is_cursor_paginated(client_for):
    for number in range(5):
        profile(f"urn:nexa:user:ib-op-{number}")
    client = client_for("IB")

    first = client.get("/v1/operators?limit=2").json()
    second = client.get(f"/v1/operators?limit=2&cursor={first['nextCursor']}").json()
    third = client.get(f"/v1/operators?limit=2&cursor={second['nextCursor']}").json()

    urns = [row["operatorUrn"] for page in (first, second, third) for row in page["items"]]
    assert urns == [f"urn:nexa:user:ib-op-{number}" for number in range(5)]
    assert first["hasMore"] and second["hasMore"] and not third["hasMore"]
    assert_problem(client.get("/v1/operators?limit=0"), 400, "validation-error")


# --- POST /v1/operators/{urn}/deactivate ---------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.AIRPORT_OPERATOR, Role.OPS_SUPERVISOR, Role.FINANCE_AUDIT])
def test_only_an_admin_deactivates(client_for, role):
    profile(ALICE)
    body = assert_problem(deactivate(client_for("IB", role, "urn:nexa:user:ib-x"), ALICE), 403, "forbidden")
    assert str(role) in body["detail"]
    assert Operator.objects.get(operator_urn=ALICE).active is True


def test_deactivate_needs_a_token():
    assert_problem(deactivate(APIClient(), ALICE), 401, "unauthorized")


@pytest.mark.parametrize("body", [{}, {"reason": ""}, {"reason": "  "}])
def test_deactivate_needs_a_reason(admin, body):
    profile(ALICE)
    problem = assert_problem(deactivate(admin, ALICE, body), 400, "validation-error")
    assert problem["errors"][0]["field"] == "reason"
    assert Operator.objects.get(operator_urn=ALICE).active is True


def test_deactivate_releases_locks_forgets_sessions_audits_and_tells_the_sockets(admin):
    profile(ALICE)
    first, second = SubCaseFactory(), SubCaseFactory()
    services.operator_session_open(principal=principal(ALICE), session_id="sid-a", server_instance="web-1:1")
    for sub_case in (first, second):
        services.subcase_lock(principal=principal(ALICE), sub_case_urn=sub_case.urn)

    response = deactivate(admin, ALICE, {"reason": "account compromised"})

    assert response.status_code == 200, response.content
    assert response.json() == {
        "operatorUrn": ALICE,
        "active": False,
        "releasedLocks": sorted([first.urn, second.urn]),
    }
    assert Operator.objects.get(operator_urn=ALICE).active is False
    assert not OperatorSession.objects.filter(operator_urn=ALICE).exists()
    assert not EntityLock.objects.filter(holder=ALICE).exists()
    entry = AuditEntry.objects.get(action="operator.deactivated")
    assert entry.entity_urn == ALICE and entry.actor == "urn:nexa:user:ib-admin"
    assert entry.reason == "account compromised" and entry.correlation_urn == response["X-Correlation-Id"]
    for sub_case in (first, second):
        released = AuditEntry.objects.get(entity_urn=sub_case.urn, action="subcase.lock_released")
        assert released.actor == "urn:nexa:user:ib-admin"
        assert released.reason == "operator deactivated: account compromised"
        assert lock_events(sub_case.urn)[-1]["lockedBy"] is None
    event = OutboxEvent.objects.get(event="operator:deactivated")
    assert event.payload == {"operatorUrn": ALICE} and event.rooms == ["airline:IB"] and event.airline == "IB"


def test_a_deactivated_operator_can_neither_connect_nor_lock_nor_call_the_api(admin, client_for):
    profile(ALICE)
    alice = client_for("IB", Role.AIRPORT_OPERATOR, ALICE)
    assert alice.get("/v1/operators").status_code == 200  # the same token, before
    deactivate(admin, ALICE)

    with pytest.raises(Problem) as refused:
        services.operator_session_open(principal=principal(ALICE), session_id="sid-a", server_instance="web-1:1")
    assert refused.value.slug == "operator-deactivated"
    # The next request with the token she already holds is refused, not only at its expiry.
    assert_problem(alice.post(f"/v1/subcases/{SubCaseFactory().urn}/lock"), 403, "operator-deactivated")
    assert_problem(alice.get("/v1/operators"), 403, "operator-deactivated")
    listed = {row["operatorUrn"]: row for row in admin.get("/v1/operators").json()["items"]}
    assert listed[ALICE]["active"] is False


def test_the_same_urn_in_another_airline_is_not_refused(admin, client_for):
    """Identity is (airline, operator URN): LH's operator with IB's deactivated URN still works."""
    profile(ALICE)
    profile(ALICE, airline="LH")
    deactivate(admin, ALICE)
    assert client_for("LH", Role.AIRPORT_OPERATOR, ALICE).get("/v1/operators").status_code == 200
    assert Operator.objects.get(airline="LH", operator_urn=ALICE).active is True


def test_a_reactivated_operator_is_accepted_again(admin, client_for):
    profile(ALICE)
    alice = client_for("IB", Role.AIRPORT_OPERATOR, ALICE)
    deactivate(admin, ALICE)
    assert_problem(alice.get("/v1/operators"), 403, "operator-deactivated")
    response = reactivate(admin, ALICE, {"reason": "back from leave"})
    assert response.status_code == 200, response.content
    assert response.json() == {"operatorUrn": ALICE, "active": True}
    assert alice.get("/v1/operators").status_code == 200
    entry = AuditEntry.objects.get(action="operator.reactivated")
    assert entry.entity_urn == ALICE and entry.reason == "back from leave" and entry.airline == "IB"
    assert entry.actor == "urn:nexa:user:ib-admin" and entry.correlation_urn == response["X-Correlation-Id"]


def test_deactivation_is_enforced_when_redis_lost_its_index(admin, client_for, redis_client):
    """The Redis index is a cache in front of the database: flushed, it is rebuilt, never trusted empty."""
    from operators import principal_check

    profile(ALICE)
    alice = client_for("IB", Role.AIRPORT_OPERATOR, ALICE)
    deactivate(admin, ALICE)
    redis_client.delete(principal_check.DEACTIVATED_KEY, principal_check.BUILT_KEY)
    assert_problem(alice.get("/v1/operators"), 403, "operator-deactivated")


def test_an_operator_deactivated_in_django_admin_is_refused_too(client_for):
    """Any save of the profile (Django admin, a shell) updates the index, not only the service."""
    alice_profile = profile(ALICE)
    alice = client_for("IB", Role.AIRPORT_OPERATOR, ALICE)
    alice_profile.active = False
    alice_profile.save()
    assert_problem(alice.get("/v1/operators"), 403, "operator-deactivated")


def test_an_operator_without_a_profile_in_the_airline_is_404_and_nothing_is_created(admin):
    """Deactivating a URN the airline has no profile for is the same 404 as another airline's URN: no
    row is created (a pre-emptive profile would tell the caller the URN was free)."""
    profile(HANS, airline="LH")
    nowhere = assert_problem(
        deactivate(admin, "urn:user:auth0|64f1c2", {"reason": "pre-emptive block"}), 404, "not-found"
    )
    elsewhere = assert_problem(deactivate(admin, HANS), 404, "not-found")
    assert (nowhere["title"], nowhere["detail"]) == (elsewhere["title"], elsewhere["detail"])
    assert list(Operator.objects.values_list("airline", "operator_urn")) == [("LH", HANS)]
    assert not AuditEntry.objects.exists() and not OutboxEvent.objects.exists()


def test_another_airlines_operator_is_404_and_untouched(admin):
    profile(HANS, airline="LH")
    assert_problem(deactivate(admin, HANS), 404, "not-found")
    assert_problem(reactivate(admin, HANS), 404, "not-found")
    assert Operator.objects.get(operator_urn=HANS).active is True
    assert Operator.objects.filter(operator_urn=HANS).count() == 1  # no IB row was created for it
    assert not AuditEntry.objects.exists() and not OutboxEvent.objects.exists()


def test_the_same_urn_in_two_airlines_is_two_operators(admin):
    """Operator URNs are unique per airline, not globally: IB's ADMIN deactivates IB's profile only."""
    profile(ALICE, airline="LH")
    profile(ALICE)
    assert deactivate(admin, ALICE).status_code == 200
    assert dict(Operator.objects.filter(operator_urn=ALICE).values_list("airline", "active")) == {
        "IB": False,
        "LH": True,
    }


def test_a_malformed_operator_urn_is_400(admin):
    assert_problem(deactivate(admin, "alice"), 400, "validation-error")


def test_deactivating_twice_audits_once(admin):
    profile(ALICE)
    assert deactivate(admin, ALICE).status_code == 200
    assert deactivate(admin, ALICE).status_code == 200
    assert AuditEntry.objects.filter(action="operator.deactivated").count() == 1


# --- no lock-out ------------------------------------------------------------------------------------------


def test_an_admin_cannot_deactivate_themselves(admin):
    profile("urn:nexa:user:ib-admin", role="ADMIN")
    profile("urn:nexa:user:ib-admin-2", role="ADMIN")
    problem = assert_problem(deactivate(admin, "urn:nexa:user:ib-admin"), 409, "cannot-deactivate-self")
    assert "another ADMIN" in problem["detail"]
    assert Operator.objects.get(operator_urn="urn:nexa:user:ib-admin").active is True
    assert not AuditEntry.objects.exists()


def test_the_last_active_admin_cannot_be_deactivated(client_for):
    profile("urn:nexa:user:ib-boss", role="ADMIN")
    profile("urn:nexa:user:ib-gone", role="ADMIN")
    Operator.objects.filter(operator_urn="urn:nexa:user:ib-gone").update(active=False)
    # An ADMIN by token without an active profile of their own (the profile-less caller is not counted).
    caller = client_for("IB", Role.ADMIN, "urn:nexa:user:ib-tokenonly")
    problem = assert_problem(deactivate(caller, "urn:nexa:user:ib-boss"), 409, "last-active-admin")
    assert "urn:nexa:user:ib-boss" in problem["detail"]
    assert Operator.objects.get(operator_urn="urn:nexa:user:ib-boss").active is True
    # With a second active ADMIN it is allowed; LH's admins never count for IB.
    profile("urn:nexa:user:lh-boss", airline="LH", role="ADMIN")
    profile("urn:nexa:user:ib-boss-2", role="ADMIN")
    assert deactivate(caller, "urn:nexa:user:ib-boss").status_code == 200


def test_reactivate_an_active_operator_is_409(admin):
    profile(ALICE)
    assert_problem(reactivate(admin, ALICE), 409, "operator-already-active")
    assert not AuditEntry.objects.exists()


@pytest.mark.parametrize("body", [{}, {"reason": ""}, {"reason": "  "}])
def test_reactivate_needs_a_reason(admin, body):
    profile(ALICE)
    deactivate(admin, ALICE)
    problem = assert_problem(reactivate(admin, ALICE, body), 400, "validation-error")
    assert problem["errors"][0]["field"] == "reason"
    assert Operator.objects.get(operator_urn=ALICE).active is False


def test_reactivate_is_idempotent_with_an_idempotency_key(admin):
    profile(ALICE)
    deactivate(admin, ALICE)
    url = f"/v1/operators/{quote(ALICE, safe=':')}/reactivate"
    headers = {"HTTP_IDEMPOTENCY_KEY": "reactivate-alice-0001"}
    first = admin.post(url, {"reason": "back"}, format="json", **headers)
    again = admin.post(url, {"reason": "back"}, format="json", **headers)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert AuditEntry.objects.filter(action="operator.reactivated").count() == 1


@pytest.mark.parametrize("role", [Role.AIRPORT_OPERATOR, Role.OPS_SUPERVISOR, Role.FINANCE_AUDIT])
def test_only_an_admin_reactivates(client_for, role):
    profile(ALICE)
    Operator.objects.filter(operator_urn=ALICE).update(active=False)
    assert_problem(reactivate(client_for("IB", role, "urn:nexa:user:ib-x"), ALICE), 403, "forbidden")
    assert Operator.objects.get(operator_urn=ALICE).active is False
