"""Resolution: the specificity table, the why, case context through the hook, relaxations, 404s."""

import pytest

from nexa.platform.roles import Role
from policies import selectors
from tests.api_base import assert_problem
from tests.cases.factories import CaseFactory
from tests.policies.factories import active_policy

pytestmark = pytest.mark.django_db

SCOPES = {
    "airport+tier+cause": {"scope_airport": "MAD", "scope_tier": "BUSINESS", "scope_cause": "CANCELLATION"},
    "airport+tier": {"scope_airport": "MAD", "scope_tier": "BUSINESS"},
    "airport+cause": {"scope_airport": "MAD", "scope_cause": "CANCELLATION"},
    "airport": {"scope_airport": "MAD"},
    "tier+cause": {"scope_tier": "BUSINESS", "scope_cause": "CANCELLATION"},
    "tier": {"scope_tier": "BUSINESS"},
    "cause": {"scope_cause": "CANCELLATION"},
    "default": {},
}


@pytest.fixture
def operator(client_for):
    return client_for("IB", Role.AIRPORT_OPERATOR)


@pytest.fixture
def every_scope():
    return {label: active_policy(name=label, **fields) for label, fields in SCOPES.items()}


@pytest.mark.parametrize(
    ("query", "expected", "candidates"),
    [
        ("airport=MAD&tier=BUSINESS&cause=CANCELLATION", "airport+tier+cause", 8),
        ("airport=MAD&tier=BUSINESS&cause=DELAY", "airport+tier", 4),
        ("airport=MAD&tier=ECONOMY&cause=CANCELLATION", "airport+cause", 4),
        ("airport=MAD&tier=ECONOMY&cause=DELAY", "airport", 2),
        ("airport=MAD", "airport", 2),
        ("airport=BCN&tier=BUSINESS&cause=CANCELLATION", "tier+cause", 4),
        ("airport=BCN&tier=BUSINESS", "tier", 2),
        ("airport=BCN&cause=CANCELLATION", "cause", 2),
        ("airport=BCN&tier=FIRST&cause=DIVERSION", "default", 1),
        ("", "default", 1),
        ("airport=&tier=&cause=", "default", 1),
    ],
)
def test_the_most_specific_active_policy_wins_and_the_why_lists_the_candidates(
    operator, every_scope, query, expected, candidates
):
    response = operator.get(f"/v1/policies/resolve?{query}")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["policy"]["urn"] == every_scope[expected].urn
    assert body["why"]["chosen"] == expected
    assert body["why"]["order"] == list(SCOPES)
    listed = body["why"]["candidates"]
    assert len(listed) == candidates
    assert listed[0] == {
        "urn": every_scope[expected].urn,
        "name": expected,
        "scope": every_scope[expected].scope,
        "specificity": expected,
        "score": selectors.specificity(every_scope[expected].scope),
        "chosen": True,
    }
    scores = [candidate["score"] for candidate in listed]
    assert scores == sorted(scores, reverse=True) and not any(c["chosen"] for c in listed[1:])
    assert body["effectiveRules"] == every_scope[expected].rules
    assert body["relaxations"] == []


def test_drafts_archived_and_other_airlines_policies_are_never_candidates(operator):
    from tests.policies.factories import PolicyFactory

    PolicyFactory(scope_airport="MAD")
    PolicyFactory(scope_airport="MAD", status="ARCHIVED")
    active_policy(airline="LH", scope_airport="MAD")
    active_policy(airline="LH")
    body = assert_problem(operator.get("/v1/policies/resolve?airport=MAD"), 404, "no-policy-matches")
    assert "airport=MAD" in body["detail"]


def test_the_case_gives_airport_and_cause_and_the_query_wins(operator):
    case = CaseFactory(airport="FRA", cause="DELAY")
    fra_delay = active_policy(scope_airport="FRA", scope_cause="DELAY")
    mad = active_policy(scope_airport="MAD")
    body = operator.get(f"/v1/policies/resolve?caseUrn={case.urn}").json()
    assert body["policy"]["urn"] == fra_delay.urn
    assert body["context"] == {"airport": "FRA", "tier": None, "cause": "DELAY", "caseUrn": case.urn}
    assert operator.get(f"/v1/policies/resolve?caseUrn={case.urn}&airport=MAD").json()["policy"]["urn"] == mad.urn


def test_another_airlines_case_or_no_case_is_404(operator):
    active_policy()
    foreign = CaseFactory(airline="LH")
    assert_problem(operator.get(f"/v1/policies/resolve?caseUrn={foreign.urn}"), 404, "not-found")
    missing = "urn:nexa:case:019371a8-5e2c-7c3d-9a4b-2f6e8d1c0b7a"
    assert_problem(operator.get(f"/v1/policies/resolve?caseUrn={missing}"), 404, "not-found")


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("airport=mad", "airport"),
        ("airport=MADX", "airport"),
        ("tier=COACH", "tier"),
        ("cause=STRIKE", "cause"),
        ("caseUrn=urn:nexa:subcase:019371a8-5e2c-7c3d-9a4b-2f6e8d1c0b7a", "caseUrn"),
        ("caseUrn=nope", "caseUrn"),
    ],
)
def test_bad_query_values_are_400_naming_the_parameter(operator, query, field):
    body = assert_problem(operator.get(f"/v1/policies/resolve?{query}"), 400, "validation-error")
    assert [error["field"] for error in body["errors"]] == [field]


def test_a_registered_relaxation_changes_the_effective_rules_of_that_case_only(operator):
    case = CaseFactory(airport="MAD", cause="CANCELLATION")
    policy = active_policy(scope_airport="MAD")

    def relax(*, principal, case_urn, policy):
        if case_urn != case.urn:
            return []
        return [selectors.Relaxation(rule="maxDistanceKm", value=40, reason="no rooms within 15 km", source="test")]

    selectors.relaxation_register(relax)
    try:
        body = operator.get(f"/v1/policies/resolve?caseUrn={case.urn}").json()
        assert body["effectiveRules"]["maxDistanceKm"] == 40
        assert body["policy"]["rules"]["maxDistanceKm"] == policy.rules["maxDistanceKm"]
        assert body["relaxations"] == [
            {"rule": "maxDistanceKm", "value": 40, "reason": "no rooms within 15 km", "source": "test"}
        ]
        assert operator.get("/v1/policies/resolve?airport=MAD").json()["effectiveRules"]["maxDistanceKm"] == 15
    finally:
        selectors.relaxation_unregister(relax)
