"""Platform contracts of every review route (tests/api_base.py): role matrix (OPS_SUPERVISOR+), 401, 404
across tenants, 400 for malformed URNs, audited writes."""

import datetime as dt

import pytest
from django.utils import timezone

from nexa.platform.roles import Role
from operators.models import Operator
from review.models import ReviewState
from tests.api_base import APIContractTests, RouteContract, operator_urn
from tests.review.factories import item_with_subcases_in_review

ASSIGNEE = "urn:nexa:user:assignee"


def _only_own_airline(response, objects) -> bool:
    urns = [item["urn"] for item in response.json()["items"]]
    return objects["item"].urn in urns and all(
        item["caseUrn"] == objects["item"].case.urn for item in response.json()["items"]
    )


def _answers_item(state: str):
    def check(response, objects) -> bool:
        body = response.json()
        return body["urn"] == objects["item"].urn and body["state"] == state

    return check


class _ReviewContract(APIContractTests):
    def make_objects(self, airline):
        Operator.objects.get_or_create(
            airline=airline, operator_urn=ASSIGNEE, defaults={"role": Role.OPS_SUPERVISOR, "display_name": "Assignee"}
        )
        return {"item": item_with_subcases_in_review(airline)}


class TestManualReviewReadsContract(_ReviewContract):
    routes = (
        RouteContract("list", "GET", "/v1/manual-review", min_role=Role.OPS_SUPERVISOR, check=_only_own_airline),
        RouteContract(
            "queue", "GET", "/v1/booking/manual-review", min_role=Role.OPS_SUPERVISOR, check=_only_own_airline
        ),
        RouteContract(
            "detail", "GET", "/v1/manual-review/{item}", min_role=Role.OPS_SUPERVISOR, check=_answers_item("OPEN")
        ),
    )


class TestManualReviewClaimContract(_ReviewContract):
    routes = (
        RouteContract(
            "claim",
            "POST",
            "/v1/manual-review/{item}/claim",
            min_role=Role.OPS_SUPERVISOR,
            audit_actions=("review.claimed",),
            check=_answers_item("CLAIMED"),
        ),
    )


class TestBookingReviewQueueWritesContract(_ReviewContract):
    routes = (
        RouteContract(
            "assign",
            "POST",
            "/v1/booking/manual-review/{item}/assign",
            min_role=Role.OPS_SUPERVISOR,
            body={"operatorUrn": ASSIGNEE, "reason": "night shift lead"},
            audit_actions=("review.assigned",),
            check=_answers_item("CLAIMED"),
        ),
        RouteContract(
            "escalate",
            "POST",
            "/v1/booking/manual-review/{item}/escalate",
            min_role=Role.OPS_SUPERVISOR,
            body={"reason": "VIP group waiting"},
            audit_actions=("review.escalated",),
            check=_answers_item("ESCALATED"),
        ),
    )


class TestResolveContract(_ReviewContract):
    """Only the claimer resolves, so the caller's own airline's item is claimed by the caller: the role
    under test (role matrix) or the lowest allowed role (the audit test, and the rest)."""

    routes = (
        RouteContract(
            "resolve",
            "POST",
            "/v1/manual-review/{item}/resolve",
            min_role=Role.OPS_SUPERVISOR,
            body={"resolution": "NO_ACTION", "reason": "passengers found their own hotel"},
            audit_actions=("review.resolved", "subcase.return_to_grouped"),
            check=_answers_item("RESOLVED"),
        ),
        RouteContract(
            "queue-resolve",
            "POST",
            "/v1/booking/manual-review/{item}/resolve",
            min_role=Role.OPS_SUPERVISOR,
            body={"resolution": "CANCELLED", "reason": "passengers rebooked on another carrier"},
            audit_actions=("review.resolved", "subcase.cancel"),
            check=_answers_item("RESOLVED"),
        ),
    )

    @pytest.fixture
    def objects(self, request):
        self.make_objects(self.other_airline)
        callspec = getattr(request.node, "callspec", None)
        role = callspec.params.get("role", Role.OPS_SUPERVISOR) if callspec else Role.OPS_SUPERVISOR
        item = item_with_subcases_in_review(
            self.airline,
            state=ReviewState.CLAIMED,
            assigned_to=operator_urn(self.airline, role),
            claimed_until=timezone.now() + dt.timedelta(minutes=10),
        )
        return {"item": item}
