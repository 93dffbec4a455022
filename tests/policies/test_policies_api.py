"""Policies over HTTP: create, versions, activation, deactivation, and every error status."""

import pytest

from audit.models import AuditEntry
from nexa.platform import events as registry
from nexa.platform.models import OutboxEvent
from nexa.platform.roles import Role
from policies.events import POLICY_ACTIVATED, PolicyActivatedPayload
from policies.models import Policy, PolicyStatus, PolicyVersion
from tests.api_base import assert_problem
from tests.policies.factories import RULES, PolicyFactory, active_policy

pytestmark = pytest.mark.django_db


@pytest.fixture
def supervisor(client_for):
    return client_for("IB", Role.OPS_SUPERVISOR)


@pytest.fixture
def admin(client_for):
    return client_for("IB", Role.ADMIN)


def _create(client, **body):
    body = {"name": "MAD business", "scope": {"airport": "MAD", "tier": "BUSINESS"}, "rules": RULES, **body}
    return client.post("/v1/policies", body, format="json")


def test_create_answers_a_draft_at_version_1_with_every_rule(supervisor):
    response = _create(supervisor)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "DRAFT" and body["version"] == 1 and body["currentVersion"] == 1
    assert body["scope"] == {"airport": "MAD", "tier": "BUSINESS"}
    assert body["rules"] == RULES
    assert body["urn"].startswith("urn:nexa:policy:")
    assert response["Location"] == f"/v1/policies/{body['urn']}"
    entry = AuditEntry.objects.get(action="policy.created")
    assert entry.entity_urn == body["urn"] and entry.after["rules"] == RULES


def test_create_normalises_amounts_and_defaults_the_scope(supervisor):
    response = _create(supervisor, scope=None, rules={"maxNightlyRate": {"amount": "90.5", "currency": "GBP"}})
    assert response.status_code == 400  # scope null is not an object
    body = {"name": "default", "rules": {"maxNightlyRate": {"amount": "90.5", "currency": "GBP"}}}
    response = supervisor.post("/v1/policies", body, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["scope"] == {}
    assert response.json()["rules"]["maxNightlyRate"] == {"amount": "90.50", "currency": "GBP"}


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"scope": {"airport": "mad"}}, {"scope.airport"}),
        ({"scope": {"tier": "COACH", "cause": "STRIKE"}}, {"scope.tier", "scope.cause"}),
        ({"scope": {"gate": "A1"}}, {"scope.gate"}),
        ({"rules": {"minStars": 6}}, {"rules.minStars"}),
        ({"rules": {"minStars": True}}, {"rules.minStars"}),
        ({"rules": {"maxDistanceKm": 0}}, {"rules.maxDistanceKm"}),
        (
            {"rules": {"maxNightlyRate": {"amount": 180, "currency": "eur"}}},
            {"rules.maxNightlyRate.amount", "rules.maxNightlyRate.currency"},
        ),
        (
            {"rules": {"mealAllowance": {"brunch": {"amount": "1.00", "currency": "EUR"}}}},
            {"rules.mealAllowance.brunch"},
        ),
        ({"rules": {"maxOccupancy": {"perRoom": 0}}}, {"rules.maxOccupancy.perRoom"}),
        ({"rules": {"transport": "yes"}}, {"rules.transport"}),
        ({"rules": {"regulation": "EU262"}}, {"rules.regulation"}),
        ({"rules": {"spa": True}}, {"rules.spa"}),
        ({"name": "   "}, {"name"}),
    ],
)
def test_create_refuses_bad_input_naming_each_field(supervisor, body, fields):
    audit_rows = AuditEntry.objects.count()
    body = assert_problem(_create(supervisor, **body), 400, "validation-error")
    assert {error["field"] for error in body["errors"]} == fields
    assert AuditEntry.objects.count() == audit_rows
    assert not Policy.objects.exists()


def test_patch_makes_an_immutable_new_version_and_older_ones_stay_readable(supervisor):
    urn = _create(supervisor).json()["urn"]
    response = supervisor.post(
        f"/v1/policies/{urn}/patch",
        {"version": 1, "changes": {"name": "MAD business v2", "rules": {"minStars": 5, "transport": None}}},
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["version"] == 2 and body["name"] == "MAD business v2"
    assert body["rules"]["minStars"] == 5 and "transport" not in body["rules"]

    old = supervisor.get(f"/v1/policies/{urn}?version=1")
    assert old.status_code == 200, old.content
    old = old.json()
    assert old["version"] == 1 and old["currentVersion"] == 2
    assert old["rules"] == RULES and old["name"] == "MAD business"
    assert supervisor.get(f"/v1/policies/{urn}").json()["version"] == 2
    assert supervisor.get(f"/v1/policies/{urn}?version=").json()["version"] == 2
    assert PolicyVersion.objects.filter(policy__id=Policy.objects.get().id).count() == 2
    entry = AuditEntry.objects.get(action="policy.patched")
    assert entry.before["version"] == 1 and entry.after["version"] == 2


def test_a_stale_version_is_a_409_carrying_the_current_one(supervisor):
    urn = _create(supervisor).json()["urn"]
    supervisor.post(f"/v1/policies/{urn}/patch", {"version": 1, "changes": {"rules": {"minStars": 3}}}, format="json")
    response = supervisor.post(
        f"/v1/policies/{urn}/patch", {"version": 1, "changes": {"rules": {"minStars": 2}}}, format="json"
    )
    body = assert_problem(response, 409, "version-conflict")
    assert body["version"] == 2
    assert Policy.objects.get().rules["minStars"] == 3


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({}, "changes"),
        ({"scope": {"airport": "BCN"}}, "changes.scope"),
        ({"rules": {"minStars": 0}}, "changes.rules.minStars"),
    ],
)
def test_patch_refuses_bad_changes(supervisor, changes, field):
    urn = _create(supervisor).json()["urn"]
    body = assert_problem(
        supervisor.post(f"/v1/policies/{urn}/patch", {"version": 1, "changes": changes}, format="json"),
        400,
        "validation-error",
    )
    assert field in {error["field"] for error in body["errors"]}


def test_unknown_version_is_404_and_a_bad_one_400(supervisor):
    urn = _create(supervisor).json()["urn"]
    assert_problem(supervisor.get(f"/v1/policies/{urn}?version=7"), 404, "not-found")
    assert_problem(supervisor.get(f"/v1/policies/{urn}?version=zero"), 400, "validation-error")
    assert_problem(supervisor.get(f"/v1/policies/{urn}?version=0"), 400, "validation-error")


def test_activation_archives_the_active_policy_of_the_same_scope_and_publishes(admin):
    old = active_policy(scope_airport="MAD", scope_tier="BUSINESS")
    other_scope = active_policy(scope_airport="MAD")
    new = PolicyFactory(scope_airport="MAD", scope_tier="BUSINESS")
    response = admin.post(f"/v1/policies/{new.urn}/activate", {"reason": "winter rates"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "ACTIVE" and response.json()["activatedAt"]
    statuses = dict(Policy.objects.values_list("id", "status"))
    assert statuses == {old.id: "ARCHIVED", other_scope.id: "ACTIVE", new.id: "ACTIVE"}
    event = OutboxEvent.objects.get(event="policy:activated")
    assert event.payload == {
        "policyUrn": new.urn,
        "version": 1,
        "scope": {"airport": "MAD", "tier": "BUSINESS"},
        "archivedPolicyUrn": old.urn,
        "activatedBy": "urn:nexa:user:ib-admin",
    }
    assert event.rooms == [] and event.airline == "IB"
    declared = registry.spec_of(POLICY_ACTIVATED)
    assert declared.audience is registry.Audience.INTERNAL and not declared.rooms
    assert declared.errors(event.payload) == [] and set(event.payload) == set(PolicyActivatedPayload.__annotations__)
    assert set(AuditEntry.objects.values_list("action", "entity_urn")) == {
        ("policy.archived", old.urn),
        ("policy.activated", new.urn),
    }
    listed = admin.get("/v1/policies/active").json()["items"]
    assert {item["urn"] for item in listed} == {other_scope.urn, new.urn}


@pytest.mark.parametrize("status", [PolicyStatus.ACTIVE, PolicyStatus.ARCHIVED])
def test_only_a_draft_can_be_activated(admin, status):
    policy = PolicyFactory(status=status)
    body = assert_problem(admin.post(f"/v1/policies/{policy.urn}/activate"), 409, "illegal-transition")
    assert body["currentStatus"] == status
    assert not OutboxEvent.objects.exists()


@pytest.mark.parametrize("status", [PolicyStatus.DRAFT, PolicyStatus.ARCHIVED])
def test_only_an_active_policy_can_be_deactivated(admin, status):
    policy = PolicyFactory(status=status)
    assert_problem(admin.post(f"/v1/policies/{policy.urn}/deactivate"), 409, "illegal-transition")
    assert Policy.objects.get().status == status


def test_deactivate_archives_and_resolve_then_finds_nothing(admin):
    policy = active_policy()
    assert (
        admin.post(f"/v1/policies/{policy.urn}/deactivate", {"reason": "season over"}, format="json").status_code == 200
    )
    assert Policy.objects.get().status == "ARCHIVED"
    assert AuditEntry.objects.get(action="policy.archived").reason == "season over"
    assert_problem(admin.get("/v1/policies/resolve"), 404, "no-policy-matches")


def test_a_patched_active_policy_stays_active_with_its_new_rules(admin):
    policy = active_policy()
    response = admin.post(
        f"/v1/policies/{policy.urn}/patch", {"version": 1, "changes": {"rules": {"minStars": 2}}}, format="json"
    )
    assert response.json()["status"] == "ACTIVE"
    assert admin.get("/v1/policies/resolve").json()["effectiveRules"]["minStars"] == 2


def test_create_is_idempotent_with_a_key(supervisor):
    body = {"name": "n", "rules": {"minStars": 3}}
    one = supervisor.post("/v1/policies", body, format="json", HTTP_IDEMPOTENCY_KEY="policy-key-1")
    two = supervisor.post("/v1/policies", body, format="json", HTTP_IDEMPOTENCY_KEY="policy-key-1")
    assert one.status_code == two.status_code == 201
    assert two["Idempotent-Replayed"] == "true" and one.json()["urn"] == two.json()["urn"]
    assert Policy.objects.count() == 1
