"""POST /v1/agent/triage against the real hotel search (the vendor simulators), the real policy and the
real review service: classification, the top 3 written on the item, one PROPOSED action each, the run
and its audit trail; the refusals (400, 404 across tenants, 403, a resolved item). And the automatic
triage of a new item when the airline enabled the agent (the review:created consumer).

The hotel search runs its sections on their own connections (compose worker threads), so every test
commits its data (``transaction=True``), as the allocation tests do."""

import pytest
from django.db import transaction

from agent import services, tasks
from agent.models import AgentAction, AgentRun, AgentTrigger
from audit.models import AuditEntry
from booking.hotels import hotels_seed_demo
from booking.models import Hotel, HotelSearch
from cases.models import DemandStatus, SubCaseStatus, Tier
from nexa.platform.models import OutboxEvent, TenantSettings
from nexa.platform.outbox import Delivery, _consumers_for, event_urn
from nexa.platform.roles import Role
from review import services as review_services
from review.models import ReviewCategory, ReviewItem, ReviewState
from tests.agent.factories import proposal
from tests.api_base import assert_problem
from tests.cases.factories import CaseFactory, PassengerGroupFactory, SubCaseFactory
from tests.cases.test_allocation import make_wave
from tests.policies.factories import active_policy
from tests.review.factories import ReviewItemFactory, item_with_subcases_in_review

pytestmark = pytest.mark.django_db(transaction=True)

VENDORS = ("stayhub", "globerooms", "nightbed")
ANA = "urn:nexa:user:ana"
# Meliá, Auditorium and ibis are within 4 km of MAD; Hilton and NH, farther, break only maxDistanceKm.
RULES = {"maxDistanceKm": 4, "maxNightlyRate": {"amount": "1000.00", "currency": "EUR"}, "maxOccupancy": 2}


@pytest.fixture
def world(simulator_control, settings):
    settings.NEXA_HOTEL_VENDORS = list(VENDORS)
    settings.NEXA_AGENT_MODEL_URL = ""
    hotels_seed_demo(airline="IB")
    active_policy(airline="IB", rules=dict(RULES))
    return simulator_control


@pytest.fixture
def ana(client_for):
    return client_for("IB", Role.OPS_SUPERVISOR, ANA)


def hotel(name: str) -> Hotel:
    return Hotel.objects.get(airline="IB", airport="MAD", name__startswith=name)


def triage(client, **body):
    return client.post("/v1/agent/triage", body, format="json")


def test_triage_classifies_ranks_writes_the_top_3_and_proposes_each(world, ana):
    melia = hotel("Meliá")
    item = item_with_subcases_in_review(
        attempted_hotels=[{"hotelUrn": melia.urn, "reason": "hotel-full", "providerError": "not_enough_rooms"}]
    )
    response = triage(ana, reviewUrn=item.urn)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["reviewUrn"] == item.urn and [i["reviewUrn"] for i in body["items"]] == [item.urn]
    assert body["classification"] == {"cause": "no-availability", "confidence": 0.95}

    recs = body["recommendations"]
    assert len(recs) == 3 and [r["rank"] for r in recs] == [1, 2, 3]
    assert all(r["source"] == "agent" and r["reason"] for r in recs)
    # Compliant, fresh rebookings first; Meliá just refused this item, so it is stale and comes later.
    assert recs[0]["action"] == "rebook" and recs[0]["compliance"] == "policy-compliant" and recs[0]["fresh"]
    assert recs[0]["hotelUrn"] in {hotel("ibis").urn, hotel("Hotel Auditorium").urn}
    assert melia.urn not in [r.get("hotelUrn") for r in recs[:2]]
    assert all(r["distanceKm"] <= 4 for r in recs if r["action"] == "rebook")

    proposals = body["proposals"]
    assert [p["urn"] for p in proposals] == [r["agentActionUrn"] for r in recs]
    assert all(p["state"] == "PROPOSED" and p["reviewUrn"] == item.urn for p in proposals)
    assert [p["planHash"] for p in proposals] == [r["planHash"] for r in recs]
    assert proposals[0]["estimatedCost"]["currency"] == "EUR"

    item.refresh_from_db()
    assert item.recommendations == recs  # written through the review service
    run = AgentRun.objects.get(item=item)
    assert (run.trigger, run.planner, run.cause) == (AgentTrigger.OPERATOR, "deterministic", "no-availability")
    assert [call["tool"] for call in run.tool_calls][:2] == ["classify_failure", "search_hotels"]
    assert run.refusals == []
    actions = set(AuditEntry.objects.filter(entity_urn=item.urn).values_list("action", flat=True))
    assert {"agent.triaged", "agent.tool_called", "review.recommended"} <= actions
    assert OutboxEvent.objects.filter(event="review:recommended", payload__reviewUrn=item.urn).exists()
    assert HotelSearch.objects.filter(case_urn=item.case.urn).count() == 1  # the search, recorded as any is


def test_relaxation_options_come_with_their_cost(world, ana):
    """Compliance comes first, even before freshness: the near hotels (compliant, but they refused this item)
    still rank before the relaxations of maxDistanceKm, which follow them in the top 3."""
    refused = [{"hotelUrn": hotel(n).urn, "reason": "hotel-full"} for n in ("Meliá", "Hotel Auditorium", "ibis")]
    item = item_with_subcases_in_review(attempted_hotels=refused)
    recs = triage(ana, reviewUrn=item.urn).json()["recommendations"]
    relax = [r for r in recs if r["action"] == "relaxPolicy"]
    assert relax and relax[0]["fields"] == ["maxDistanceKm"]
    assert relax[0]["value"] > RULES["maxDistanceKm"] and relax[0]["value"] >= relax[0]["distanceKm"]
    order = {"policy-compliant": 0, "compliant once relaxed": 1, "outside policy": 2}
    assert [order[r["compliance"]] for r in recs] == sorted(order[r["compliance"]] for r in recs)
    assert all(not r["fresh"] for r in recs if r["action"] == "rebook")
    assert "relaxation costs" in relax[0]["reason"]
    (proposed,) = [a for a in AgentAction.objects.filter(item=item) if a.urn == relax[0]["agentActionUrn"]]
    assert proposed.params == {"fields": {"maxDistanceKm": relax[0]["value"]}}


def test_a_second_triage_expires_the_first_proposals(world, ana):
    item = item_with_subcases_in_review()
    first = [p["urn"] for p in triage(ana, reviewUrn=item.urn).json()["proposals"]]
    second = [p["urn"] for p in triage(ana, reviewUrn=item.urn).json()["proposals"]]
    state = {action.urn: action.state for action in AgentAction.objects.all()}
    assert first and {state[urn] for urn in first} == {"EXPIRED"}
    assert second and {state[urn] for urn in second} == {"PROPOSED"}


def test_triage_of_a_case_takes_each_open_item(world, ana):
    item = item_with_subcases_in_review()
    other = ReviewItemFactory(case=item.case, category=ReviewCategory.DATA_INCOMPLETE)
    ReviewItemFactory(case=item.case, state=ReviewState.RESOLVED)
    body = triage(ana, caseUrn=item.case.urn).json()
    assert sorted(i["reviewUrn"] for i in body["items"]) == sorted([item.urn, other.urn])
    data = next(i for i in body["items"] if i["reviewUrn"] == other.urn)
    assert data["classification"]["cause"] == "data-incomplete" and data["recommendations"] == []


def test_a_case_without_open_items_answers_nothing_to_triage(ana):
    item = ReviewItemFactory(state=ReviewState.RESOLVED)
    response = triage(ana, caseUrn=item.case.urn)
    assert response.status_code == 200, response.content
    assert response.json() == {
        "reviewUrn": None, "classification": None, "recommendations": [], "proposals": [], "items": []
    }  # fmt: skip
    assert not AgentRun.objects.exists()


def test_a_mixed_tier_group_is_first_proposed_split_by_tier(world, ana):
    case = CaseFactory()
    group = PassengerGroupFactory(case=case)
    subs = [
        SubCaseFactory(case=case, group=group, tier=tier, status=SubCaseStatus.MANUAL_REVIEW)
        for tier in (Tier.ECONOMY, Tier.BUSINESS)
    ]
    item = ReviewItemFactory(
        case=case, category=ReviewCategory.MIXED_TIER_GROUP, affected_subcase_urns=[s.urn for s in subs]
    )
    body = triage(ana, reviewUrn=item.urn).json()
    assert body["classification"]["cause"] == "mixed-tier-group"
    first = body["recommendations"][0]
    assert first["action"] == "split" and sorted(map(len, first["into"])) == [1, 1]


# --- refusals ----------------------------------------------------------------------------------------------


def test_bad_bodies_are_400(ana):
    item = item_with_subcases_in_review()
    assert_problem(triage(ana), 400, "validation-error")
    assert_problem(triage(ana, reviewUrn=item.urn, caseUrn=item.case.urn), 400, "validation-error")
    assert_problem(triage(ana, reviewUrn=item.urn, extra=True), 400, "validation-error")
    assert_problem(triage(ana, reviewUrn="urn:nexa:case:0190a0a0-0000-7000-8000-000000000001"), 400, "validation-error")
    assert_problem(triage(ana, reviewUrn="nope"), 400, "validation-error")
    assert not AgentRun.objects.exists()


def test_another_airlines_item_or_case_is_404(client_for):
    item = item_with_subcases_in_review("UX")
    ib = client_for("IB", Role.ADMIN, "urn:nexa:user:ib-admin")
    assert_problem(triage(ib, reviewUrn=item.urn), 404, "not-found")
    assert_problem(triage(ib, caseUrn=item.case.urn), 404, "not-found")
    assert not AgentRun.objects.exists() and not HotelSearch.objects.exists()


@pytest.mark.parametrize("role", [Role.AIRPORT_OPERATOR, Role.FINANCE_AUDIT])
def test_below_ops_supervisor_is_403(client_for, role):
    item = item_with_subcases_in_review()
    assert_problem(triage(client_for("IB", role), reviewUrn=item.urn), 403, "forbidden")


def test_a_resolved_item_is_409(ana):
    item = ReviewItemFactory(state=ReviewState.RESOLVED)
    assert_problem(triage(ana, reviewUrn=item.urn), 409, "review-resolved")


# --- automatic triage of a new item ---------------------------------------------------------------------------


def _created_delivery(item) -> dict:
    row = OutboxEvent.objects.get(event="review:created", payload__reviewUrn=item.urn)
    return Delivery(
        event_id=event_urn(row.id), event=row.event, payload=row.payload, rooms=list(row.rooms), sequence=1,
        airline=row.airline, correlation_urn=row.correlation_urn,
    ).as_kwargs()  # fmt: skip


def _new_item(category=ReviewCategory.ALLOCATION_FAILED):
    case = CaseFactory()
    group = PassengerGroupFactory(case=case)
    subs = [SubCaseFactory(case=case, group=group, status=SubCaseStatus.MANUAL_REVIEW) for _ in range(2)]
    with transaction.atomic():
        return review_services.review_item_open(
            airline=case.airline, source_event="allocation:failed",
            source_event_urn=event_urn(__import__("uuid").uuid4()), case_urn=case.urn, category=category,
            reason="no policy-compliant hotel within 4 km", subcase_urns=[s.urn for s in subs],
        )  # fmt: skip


def test_review_created_is_handed_to_the_agent():
    assert (tasks.TRIAGE_ON_CREATED, "default") in [(c.task_name, c.queue) for c in _consumers_for("review:created")]


def test_a_new_item_is_triaged_when_the_airline_enabled_the_agent(world):
    TenantSettings.objects.update_or_create(airline="IB", defaults={"agent_enabled": True})
    item = _new_item()
    kwargs = _created_delivery(item)
    assert tasks.agent_triage_on_review_created(**kwargs) == item.urn
    run = AgentRun.objects.get(item=item)
    assert (run.trigger, run.actor, run.source_event_urn) == (
        AgentTrigger.ITEM_CREATED, services.SYSTEM_AGENT_ACTOR, kwargs["event_id"]
    )  # fmt: skip
    assert run.cause == "policy-too-strict"
    item.refresh_from_db()
    assert item.recommendations and AgentAction.objects.filter(item=item, state="PROPOSED").count() == len(
        item.recommendations
    )
    # At-least-once delivery: the same event again triages nothing more.
    assert tasks.agent_triage_on_review_created(**kwargs) is None
    assert AgentRun.objects.filter(item=item).count() == 1


def test_a_new_item_is_left_alone_when_the_agent_is_not_enabled(world):
    TenantSettings.objects.update_or_create(airline="IB", defaults={"agent_enabled": False})
    item = _new_item()
    assert tasks.agent_triage_on_review_created(**_created_delivery(item)) is None
    assert not AgentRun.objects.exists()
    assert ReviewItem.objects.get(pk=item.pk).recommendations == []


def test_a_proposal_of_a_resolved_item_is_a_plan_changed(world, ana):
    item = item_with_subcases_in_review()
    action = proposal(item)
    ReviewItem.objects.filter(pk=item.pk).update(state=ReviewState.RESOLVED)
    assert_problem(
        ana.post(f"/v1/agent/{action.urn}/approve", {"planHash": action.plan_hash}, format="json"), 409, "plan-changed"
    )


# --- end to end: triage, approve, execute through the review service ------------------------------------------


def test_a_proposed_relaxation_is_approved_and_executed_through_the_relax_action(simulator_control, settings, ana):
    """No hotel within 1 km: the agent proposes relaxing maxDistanceKm; the operator approves and executes it;
    review_item_relax records the relaxation for this case and allocates the passengers again."""
    settings.NEXA_HOTEL_VENDORS = list(VENDORS)
    settings.NEXA_AGENT_MODEL_URL = ""
    hotels_seed_demo(airline="IB")
    active_policy(airline="IB", rules={**RULES, "maxDistanceKm": 1})
    case = CaseFactory()
    group = PassengerGroupFactory(case=case)
    subs = [SubCaseFactory(case=case, group=group, pnr="RLX001", status=SubCaseStatus.MANUAL_REVIEW) for _ in range(2)]
    wave = make_wave(case, subs, status=DemandStatus.ALLOCATED)
    item = ReviewItemFactory(
        case=case,
        category=ReviewCategory.ALLOCATION_FAILED,
        reason="no policy-compliant hotel within 1 km",
        demand_urn=wave.urn,
        affected_groups=[group.label],
        affected_group_urns=[group.urn],
        affected_subcase_urns=[s.urn for s in subs],
    )

    body = triage(ana, reviewUrn=item.urn).json()
    assert body["classification"]["cause"] == "policy-too-strict"
    first = body["recommendations"][0]
    assert first["action"] == "relaxPolicy" and first["fields"] == ["maxDistanceKm"]
    action_urn, plan = first["agentActionUrn"], first["planHash"]

    approved = ana.post(f"/v1/agent/{action_urn}/approve", {"planHash": plan}, format="json")
    assert approved.status_code == 200, approved.content
    executed = ana.post(f"/v1/agent/{action_urn}/execute", format="json")
    assert executed.status_code == 200, executed.content
    result = executed.json()
    assert (result["state"], result["executedBy"], result["result"]["reviewUrn"]) == ("EXECUTED", ANA, item.urn)

    item.refresh_from_db()
    assert item.accepted_agent_action_urn == action_urn and item.assigned_to == ANA
    (entry,) = item.actions
    assert entry["action"] == "relax" and entry["agentActionUrn"] == action_urn
    assert entry["params"]["fields"] == {"maxDistanceKm": first["value"]}
    assert entry["result"]["outcome"] == "ALLOCATED"
    # The rest of the triage's proposals no longer match the item (an action was taken on it).
    other = body["proposals"][1]
    assert_problem(
        ana.post(f"/v1/agent/{other['urn']}/approve", {"planHash": other["planHash"]}, format="json"),
        409,
        "plan-changed",
    )


def test_an_override_proposal_is_executed_through_the_override_action(simulator_control, settings, ana):
    """Every hotel breaks two rules (distance and rate): only overrides are proposed; executing the first
    records the manual booking of that very offer through review_item_override."""
    settings.NEXA_HOTEL_VENDORS = list(VENDORS)
    settings.NEXA_AGENT_MODEL_URL = ""
    hotels_seed_demo(airline="IB")
    active_policy(
        airline="IB", rules={**RULES, "maxDistanceKm": 1, "maxNightlyRate": {"amount": "1.00", "currency": "EUR"}}
    )
    case = CaseFactory()
    group = PassengerGroupFactory(case=case)
    subs = [SubCaseFactory(case=case, group=group, pnr="OVR001", status=SubCaseStatus.MANUAL_REVIEW) for _ in range(2)]
    wave = make_wave(case, subs, status=DemandStatus.ALLOCATED)
    item = ReviewItemFactory(
        case=case,
        category=ReviewCategory.ALLOCATION_FAILED,
        demand_urn=wave.urn,
        affected_groups=[group.label],
        affected_group_urns=[group.urn],
        affected_subcase_urns=[s.urn for s in subs],
    )
    first = triage(ana, reviewUrn=item.urn).json()["recommendations"][0]
    assert first["action"] == "override" and first["compliance"] == "outside policy"

    approved = ana.post(f"/v1/agent/{first['agentActionUrn']}/approve", {"planHash": first["planHash"]}, format="json")
    assert approved.status_code == 200, approved.content
    executed = ana.post(f"/v1/agent/{first['agentActionUrn']}/execute", format="json")
    assert executed.status_code == 200, executed.content
    assert executed.json()["state"] == "EXECUTED", executed.json()["result"]
    item.refresh_from_db()
    (entry,) = item.actions
    assert entry["action"] == "override" and entry["agentActionUrn"] == first["agentActionUrn"]
    assert entry["params"]["providerOfferId"] == first["providerOfferId"]
    assert entry["result"]["reservationUrns"]
