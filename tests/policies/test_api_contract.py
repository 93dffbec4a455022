"""Every policy route on the shared API contract base: 401, the role matrix, 404 across tenants,
400 for malformed URNs, audited writes."""

from audit.models import AuditEntry
from nexa.platform.models import OutboxEvent
from nexa.platform.roles import Role
from policies.models import Policy, PolicyStatus
from tests.api_base import APIContractTests, RouteContract
from tests.policies.factories import PolicyFactory, active_policy


def _is_policy(status):
    def check(response, objects):
        body = response.json()
        return body["urn"] == objects["policy"].urn and body["status"] == status

    return check


def _only_own_active(response, objects):
    urns = {item["urn"] for item in response.json()["items"]}
    return urns == {objects["active"].urn}


class TestPoliciesAPIContract(APIContractTests):
    routes = (
        RouteContract(
            "create",
            "POST",
            "/v1/policies",
            min_role=Role.OPS_SUPERVISOR,
            expect_status=201,
            body={"name": "MAD default", "scope": {"airport": "MAD"}, "rules": {"minStars": 3}},
            audit_actions=("policy.created",),
            check=lambda response, objects: response.json()["status"] == "DRAFT" and response.json()["version"] == 1,
        ),
        RouteContract(
            "generate-ai",
            "POST",
            "/v1/policies/generate-ai",
            min_role=Role.OPS_SUPERVISOR,
            expect_status=201,
            body={"description": "Business class gets a 4-star within 15 km, up to 180 EUR a night"},
            audit_actions=("policy.generated",),
        ),
        RouteContract("active", "GET", "/v1/policies/active", min_role=Role.AIRPORT_OPERATOR, check=_only_own_active),
        RouteContract(
            "resolve",
            "GET",
            "/v1/policies/resolve?airport=MAD",
            min_role=Role.AIRPORT_OPERATOR,
            check=lambda response, objects: response.json()["policy"]["urn"] == objects["active"].urn,
        ),
        RouteContract(
            "detail", "GET", "/v1/policies/{policy}", min_role=Role.AIRPORT_OPERATOR, check=_is_policy("DRAFT")
        ),
        RouteContract(
            "patch",
            "POST",
            "/v1/policies/{policy}/patch",
            min_role=Role.OPS_SUPERVISOR,
            body={"version": 1, "changes": {"rules": {"minStars": 5}}},
            audit_actions=("policy.patched",),
            check=lambda response, objects: response.json()["version"] == 2,
        ),
        RouteContract(
            "activate",
            "POST",
            "/v1/policies/{policy}/activate",
            min_role=Role.ADMIN,
            audit_actions=("policy.activated",),
            check=_is_policy("ACTIVE"),
        ),
        RouteContract(
            "deactivate",
            "POST",
            "/v1/policies/{active}/deactivate",
            min_role=Role.ADMIN,
            audit_actions=("policy.archived",),
            check=lambda response, objects: response.json()["status"] == "ARCHIVED",
        ),
    )

    def make_objects(self, airline):
        return {
            "policy": PolicyFactory(airline=airline, scope_airport="MAD", scope_tier="BUSINESS"),
            "active": active_policy(airline=airline, scope_airport="MAD"),
        }

    def assert_unchanged(self, objects, *, audit_rows, events):
        assert AuditEntry.objects.count() == audit_rows
        assert OutboxEvent.objects.count() == events
        assert Policy.objects.get(pk=objects["policy"].pk).status == PolicyStatus.DRAFT
        assert Policy.objects.get(pk=objects["policy"].pk).version == 1
        assert Policy.objects.get(pk=objects["active"].pk).status == PolicyStatus.ACTIVE
