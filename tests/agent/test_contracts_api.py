"""Platform contracts of every agent route (tests/api_base.py): role matrix (OPS_SUPERVISOR+), 401, 404
across tenants, 400 for malformed URNs, audited writes."""

import pytest

from agent.models import AgentActionState
from nexa.platform.roles import Role
from review.models import ReviewCategory
from tests.agent.factories import proposal
from tests.api_base import APIContractTests, RouteContract, operator_urn
from tests.review.factories import ReviewItemFactory, item_with_subcases_in_review


def _answers_action(state: str):
    def check(response, objects) -> bool:
        body = response.json()
        return body["urn"] == objects["action"].urn and body["state"] == state

    return check


def _triaged(response, objects) -> bool:
    body = response.json()
    return body["reviewUrn"] == objects["item"].urn and body["classification"]["cause"] == "data-incomplete"


class TestAgentTriageContract(APIContractTests):
    """A DATA_INCOMPLETE item: the agent classifies it and proposes nothing (no hotel search needed); the
    route's 404 across tenants and its bodies are tested in test_triage.py."""

    routes = (
        RouteContract(
            "triage",
            "POST",
            "/v1/agent/triage",
            min_role=Role.OPS_SUPERVISOR,
            body=lambda objects: {"reviewUrn": objects["item"].urn},
            audit_actions=("agent.triaged", "agent.tool_called", "review.recommended"),
            check=_triaged,
        ),
    )

    def make_objects(self, airline):
        return {"item": ReviewItemFactory(case__airline=airline, category=ReviewCategory.DATA_INCOMPLETE)}


class TestAgentDecisionContract(APIContractTests):
    routes = (
        RouteContract(
            "approve",
            "POST",
            "/v1/agent/{action}/approve",
            min_role=Role.OPS_SUPERVISOR,
            body=lambda objects: {"planHash": objects["action"].plan_hash},
            audit_actions=("agent.action_approved",),
            check=_answers_action("APPROVED"),
        ),
        RouteContract(
            "reject",
            "POST",
            "/v1/agent/{action}/reject",
            min_role=Role.OPS_SUPERVISOR,
            body={"reason": "the passengers prefer the airport hotel"},
            audit_actions=("agent.action_rejected",),
            check=_answers_action("REJECTED"),
        ),
    )

    def make_objects(self, airline):
        return {"action": proposal(item_with_subcases_in_review(airline))}


class TestAgentExecuteContract(APIContractTests):
    """Only the approver executes, so the caller's own airline's action is approved by the caller (the role
    under test, or the lowest allowed role)."""

    routes = (
        RouteContract(
            "execute",
            "POST",
            "/v1/agent/{action}/execute",
            min_role=Role.OPS_SUPERVISOR,
            audit_actions=("agent.action_executed",),
            check=_answers_action("EXECUTED"),
        ),
    )

    def make_objects(self, airline, approver=None):
        item = item_with_subcases_in_review(airline, passengers=2)
        into = [[urn] for urn in item.affected_subcase_urns]
        return {
            "action": proposal(
                item,
                action="split",
                params={"into": into},
                state=AgentActionState.APPROVED,
                approved_by=approver or operator_urn(airline, Role.OPS_SUPERVISOR),
            )
        }

    @pytest.fixture
    def objects(self, request):
        self.make_objects(self.other_airline)
        callspec = getattr(request.node, "callspec", None)
        role = callspec.params.get("role", Role.OPS_SUPERVISOR) if callspec else Role.OPS_SUPERVISOR
        return self.make_objects(self.airline, approver=operator_urn(self.airline, role))
