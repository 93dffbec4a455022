"""The operator in the loop: approve quoting the plan hash (a different hash, or a plan the item no longer
matches: 409), reject, lazy expiry (409, reads EXPIRED), execute only by the approver and only after
approval, through the review service a human calls (EXECUTED, or FAILED with the problem)."""

import datetime as dt

import pytest
from django.utils import timezone

from agent.models import AgentAction, AgentActionState
from audit.models import AuditEntry
from nexa.platform.roles import Role
from review.models import ReviewItem
from tests.agent.factories import proposal
from tests.api_base import assert_problem
from tests.review.factories import item_with_subcases_in_review

pytestmark = pytest.mark.django_db

ANA = "urn:nexa:user:ana"
BEN = "urn:nexa:user:ben"


@pytest.fixture
def ana(client_for):
    return client_for("IB", Role.OPS_SUPERVISOR, ANA)


@pytest.fixture
def ben(client_for):
    return client_for("IB", Role.OPS_SUPERVISOR, BEN)


def post(client, action, verb, body=None):
    return client.post(f"/v1/agent/{action.urn}/{verb}", body or {}, format="json")


def approve(client, action, plan_hash=None, reason="looks right"):
    return post(client, action, "approve", {"planHash": plan_hash or action.plan_hash, "reason": reason})


def test_approve_quoting_the_plan_hash(ana):
    action = proposal(item_with_subcases_in_review())
    response = approve(ana, action)
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["state"], body["approvedBy"], body["planHash"], body["version"]) == (
        "APPROVED", ANA, action.plan_hash, 2
    )  # fmt: skip
    entry = AuditEntry.objects.get(action="agent.action_approved")
    assert (entry.entity_urn, entry.actor, entry.reason) == (action.urn, ANA, "looks right")


def test_approve_with_another_plan_hash_is_409_and_changes_nothing(ana):
    action = proposal(item_with_subcases_in_review())
    body = assert_problem(approve(ana, action, plan_hash="0" * 64), 409, "plan-changed")
    assert body["planHash"] == action.plan_hash
    action.refresh_from_db()
    assert action.state == AgentActionState.PROPOSED and not AuditEntry.objects.filter(action__startswith="agent.")


def test_a_plan_the_item_no_longer_matches_is_409(ana):
    item = item_with_subcases_in_review()
    action = proposal(item)
    ReviewItem.objects.filter(pk=item.pk).update(
        attempted_hotels=[{"hotelUrn": action.params["hotelUrn"], "reason": "hotel-full"}]
    )
    assert_problem(approve(ana, action), 409, "plan-changed")


def test_a_claim_does_not_change_the_plan(ana):
    item = item_with_subcases_in_review()
    action = proposal(item)
    assert ana.post(f"/v1/manual-review/{item.urn}/claim").status_code == 200
    assert approve(ana, action).status_code == 200


def test_an_expired_proposal_is_409_and_reads_expired(ana):
    action = proposal(item_with_subcases_in_review(), expires_in=dt.timedelta(minutes=-1))
    body = assert_problem(approve(ana, action), 409, "agent-action-expired")
    assert body["currentState"] == "EXPIRED"
    assert_problem(post(ana, action, "reject", {"reason": "too late"}), 409, "agent-action-expired")


def test_an_approved_proposal_expires_too(ana):
    action = proposal(item_with_subcases_in_review(), state=AgentActionState.APPROVED, approved_by=ANA)
    AgentAction.objects.filter(pk=action.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    body = assert_problem(post(ana, action, "execute"), 409, "agent-action-expired")
    assert body["currentState"] == "EXPIRED"


def test_reject_with_a_reason(ana):
    action = proposal(item_with_subcases_in_review())
    response = post(ana, action, "reject", {"reason": "the group prefers to stay at the airport"})
    assert response.status_code == 200, response.content
    assert (response.json()["state"], response.json()["decisionReason"]) == (
        "REJECTED", "the group prefers to stay at the airport"
    )  # fmt: skip
    assert AuditEntry.objects.get(action="agent.action_rejected").actor == ANA
    assert_problem(approve(ana, action), 409, "illegal-transition")


def test_bodies_are_closed_and_checked(ana):
    action = proposal(item_with_subcases_in_review())
    assert_problem(post(ana, action, "approve", {"planHash": action.plan_hash, "extra": 1}), 400, "validation-error")
    assert_problem(post(ana, action, "approve", {"planHash": "not-a-hash"}), 400, "validation-error")
    assert_problem(post(ana, action, "approve", {}), 400, "validation-error")
    assert_problem(post(ana, action, "reject", {}), 400, "validation-error")


def test_execute_before_approval_is_409(ana):
    action = proposal(item_with_subcases_in_review())
    body = assert_problem(post(ana, action, "execute"), 409, "illegal-transition")
    assert body["currentState"] == "PROPOSED"


def test_only_the_approving_operator_executes(ana, ben):
    action = proposal(item_with_subcases_in_review())
    assert approve(ana, action).status_code == 200
    body = assert_problem(post(ben, action, "execute"), 403, "not-the-approver")
    assert body["approvedBy"] == ANA
    action.refresh_from_db()
    assert action.state == AgentActionState.APPROVED and not action.executed_by


def test_execute_refuses_a_plan_the_item_no_longer_matches(ana):
    item = item_with_subcases_in_review()
    action = proposal(item)
    assert approve(ana, action).status_code == 200
    ReviewItem.objects.filter(pk=item.pk).update(actions=[{"action": "rebook", "by": BEN}])
    assert_problem(post(ana, action, "execute"), 409, "plan-changed")


def test_another_airlines_proposal_is_404(client_for):
    action = proposal(item_with_subcases_in_review("IB"))
    foreign = client_for("UX", Role.ADMIN, "urn:nexa:user:ux-admin")
    assert_problem(approve(foreign, action), 404, "not-found")


# --- execute through the review services -------------------------------------------------------------------


def test_execute_runs_the_review_service_as_the_approver(ana):
    item = item_with_subcases_in_review(passengers=2)
    into = [[item.affected_subcase_urns[0]], [item.affected_subcase_urns[1]]]
    action = proposal(item, action="split", params={"into": into})
    assert approve(ana, action).status_code == 200
    response = post(ana, action, "execute")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["state"], body["executedBy"]) == ("EXECUTED", ANA)
    assert body["result"]["reviewUrn"] == item.urn
    item.refresh_from_db()
    assert item.assigned_to == ANA  # claimed for the approver first, as a human would
    assert any(entry.get("agentActionUrn") == action.urn for entry in item.actions)
    assert AuditEntry.objects.filter(action="agent.action_executed", entity_urn=action.urn, actor=ANA).exists()


def test_a_refusal_of_the_review_service_is_failed_with_the_problem(ana):
    item = item_with_subcases_in_review(passengers=2)
    action = proposal(item, action="split", params={"into": [[item.affected_subcase_urns[0]]]})  # not a partition
    assert approve(ana, action).status_code == 200
    response = post(ana, action, "execute")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["state"] == "FAILED" and body["result"]["problem"]["status"] == 422
    assert AuditEntry.objects.filter(action="agent.action_failed", entity_urn=action.urn).exists()


def test_a_replayed_approve_answers_the_first_answer_and_approves_once(ana):
    action = proposal(item_with_subcases_in_review())
    key = {"HTTP_IDEMPOTENCY_KEY": "approve-once"}
    body = {"planHash": action.plan_hash}
    first = ana.post(f"/v1/agent/{action.urn}/approve", body, format="json", **key)
    again = ana.post(f"/v1/agent/{action.urn}/approve", body, format="json", **key)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json() and again.headers.get("Idempotent-Replayed") == "true"
    assert AuditEntry.objects.filter(action="agent.action_approved").count() == 1
