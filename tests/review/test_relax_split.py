"""The review actions ``relax`` and ``split`` (spec 001 § Operator workflow, step 3; docs/review.md § Relax,
§ Split) as an operator uses them, from the failing allocation to the resolved item.

Relax re-allocates through the real allocation use case: the hotel searches run on their own connections
(compose worker threads) against the hotel simulators, so those tests commit their data (``transaction=True``).
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from audit.models import AuditEntry
from booking.hotels import hotels_seed_demo
from cases import services as case_services
from cases.models import Allocation, AllocationStatus, DemandStatus, PassengerGroup, SubCase, SubCaseStatus, Tier
from nexa.platform.models import OutboxEvent
from nexa.platform.outbox import event_urn
from nexa.platform.problems import Problem
from nexa.platform.roles import Role
from policies.models import Policy
from policies.selectors import policy_resolve
from review import selectors as review_selectors
from review import services, tasks
from review.models import PolicyRelaxation, ReviewCategory, ReviewItem, ReviewState
from tests.api_base import APIContractTests, RouteContract, assert_problem
from tests.cases.demand_helpers import principal as principal_of
from tests.cases.factories import CaseFactory, PassengerGroupFactory, SubCaseFactory
from tests.cases.test_allocation import GENEROUS_RULES, VENDORS, grouped, make_wave
from tests.policies.factories import active_policy
from tests.review.factories import ReviewItemFactory, delivery, item_with_subcases_in_review

ANA = "urn:nexa:user:ana"
BEN = "urn:nexa:user:ben"
AGENT_ACTION = "urn:nexa:agent-action:019371a8-5e2c-7c3d-9a4b-2f6e8d1c0b7a"
# Nothing lies within 100 m of the airport: every group fails with ALLOCATION_FAILED until relaxed.
TIGHT_RULES = {**GENEROUS_RULES, "maxDistanceKm": 0.1}

transactional = pytest.mark.django_db(transaction=True)


@pytest.fixture
def vendors(simulator_control, settings):
    settings.NEXA_HOTEL_VENDORS = list(VENDORS)
    return simulator_control


def post(client, path, body=None, **headers):
    return client.post(path, body or {}, format="json", **headers)


def relax(client, item, fields, reason="airport hotels all booked", **headers):
    return post(client, f"/v1/manual-review/{item.urn}/relax", {"fields": fields, "reason": reason}, **headers)


def split(client, item, into, reason="one group per tier", **headers):
    return post(client, f"/v1/manual-review/{item.urn}/split", {"into": into, "reason": reason}, **headers)


def statuses(sub_cases) -> list[str]:
    return [SubCase.objects.get(pk=s.pk).status for s in sub_cases]


def items_from_allocation(case) -> list[ReviewItem]:
    """Hand every ``allocation:failed`` of the case to the review consumer, as the outbox relay does."""
    urns = []
    for row in OutboxEvent.objects.filter(event="allocation:failed", payload__caseUrn=case.urn).order_by("created_at"):
        kwargs = delivery(row.event, row.payload, airline=row.airline, event_id=event_urn(row.id))
        urns.append(tasks.review_item_from_allocation_failed(**kwargs))
    return [ReviewItem.objects.select_related("case").get(pk=urn.rsplit(":", 1)[1]) for urn in urns]


def failed_allocation(*, airline="IB", rules=TIGHT_RULES, parties=([[], []],), tier=Tier.ECONOMY):
    """A case whose approved wave was allocated with no compliant hotel, and the item its failure made."""
    hotels_seed_demo(airline=airline)
    if not Policy.objects.filter(airline=airline, status="ACTIVE").exists():
        active_policy(airline=airline, rules=dict(rules))
    case = CaseFactory(airline=airline, airport="MAD")
    sub_cases = grouped(case, *parties, tier=tier)
    wave = make_wave(case, sub_cases)
    allocation = case_services.allocation_create(
        principal=principal_of(airline, Role.OPS_SUPERVISOR), demand_urn=wave.urn
    )
    [item] = items_from_allocation(case)
    return item, sub_cases, wave, allocation


# --- relax -----------------------------------------------------------------------------------------------------


@transactional
def test_relax_records_the_relaxation_and_allocates_the_passengers_again(vendors, client_for):
    item, sub_cases, wave, first = failed_allocation()
    assert item.category == ReviewCategory.ALLOCATION_FAILED and statuses(sub_cases) == ["MANUAL_REVIEW"] * 2
    ana = client_for("IB", Role.OPS_SUPERVISOR, ANA)

    response = relax(ana, item, {"maxDistanceKm": 60})

    assert response.status_code == 200, response.content
    body = response.json()
    # An OPEN item is claimed for the actor in the same transaction, and stays unresolved.
    assert (body["state"], body["assignedTo"], body["resolution"]) == ("CLAIMED", ANA, None)
    [entry] = body["actions"]
    assert (entry["action"], entry["params"], entry["by"], entry["agentActionUrn"]) == (
        "relax", {"fields": {"maxDistanceKm": 60}}, ANA, None,
    )  # fmt: skip
    result = entry["result"]
    new = Allocation.objects.exclude(pk=first.pk).get()
    assert (result["outcome"], result["allocationUrn"], result["demandUrn"]) == ("ALLOCATED", new.urn, wave.urn)
    assert sorted(result["allocatedSubCaseUrns"]) == sorted(s.urn for s in sub_cases)
    assert result["unallocated"] == []
    assert [(c["rule"], c["current"], c["proposed"], c["relaxes"]) for c in result["ruleChanges"]] == [
        ("maxDistanceKm", 0.1, 60, True)
    ]
    # The new allocation of the same wave holds them, ALLOCATED; the first (nothing left to book) is superseded.
    assert (new.demand_id, new.status) == (wave.pk, AllocationStatus.PLANNED)
    occupants = {o for a in new.plan["assignments"] for r in a["rooms"] for o in r["occupants"]}
    assert occupants == {s.urn for s in sub_cases}
    assert statuses(sub_cases) == ["ALLOCATED", "ALLOCATED"]
    first.refresh_from_db()
    assert first.status == AllocationStatus.SUPERSEDED
    wave.refresh_from_db()
    assert wave.status == DemandStatus.ALLOCATED
    [row] = PolicyRelaxation.objects.filter(case=item.case)
    assert (row.rule, row.value, row.item_id, row.created_by) == ("maxDistanceKm", 60, item.pk, ANA)
    # Audited and announced; the relax writes no new failure (no new item).
    assert AuditEntry.objects.filter(action="review.relaxed", entity_urn=item.urn, actor=ANA).count() == 1
    assert AuditEntry.objects.filter(action="allocation.superseded", entity_urn=first.urn).count() == 1
    assert [e.payload["reviewUrn"] for e in OutboxEvent.objects.filter(event="review:relaxed")] == [item.urn]
    assert OutboxEvent.objects.filter(event="allocation:failed").count() == 1

    # Resolve RELAXED: the passengers the relax allocated are not disturbed.
    resolved = post(ana, f"/v1/manual-review/{item.urn}/resolve", {"resolution": "RELAXED", "reason": "40 km ok"})
    assert resolved.status_code == 200, resolved.content
    assert resolved.json()["state"] == "RESOLVED"
    assert statuses(sub_cases) == ["ALLOCATED", "ALLOCATED"]
    # And the new allocation is booked like any other.
    booked = post(ana, f"/v1/cases/{item.case.urn}/book-rooms", {"allocationUrn": new.urn})
    assert booked.status_code in (200, 202), booked.content
    assert statuses(sub_cases) == ["BOOKING", "BOOKING"]


@transactional
def test_the_relaxation_shows_in_policy_resolution_for_that_case_only(vendors, client_for):
    item, _, _, _ = failed_allocation()
    other_case = CaseFactory(airline="IB", airport="MAD")
    ana = client_for("IB", Role.OPS_SUPERVISOR, ANA)
    assert relax(ana, item, {"maxDistanceKm": 60, "minStars": 1}).status_code == 422  # minStars is 1 already
    assert relax(ana, item, {"maxDistanceKm": 60}).status_code == 200

    mine = ana.get("/v1/policies/resolve", {"caseUrn": item.case.urn}).json()
    assert mine["effectiveRules"]["maxDistanceKm"] == 60
    assert mine["relaxations"] == [
        {"rule": "maxDistanceKm", "value": 60, "reason": "airport hotels all booked", "source": item.urn}
    ]
    theirs = ana.get("/v1/policies/resolve", {"caseUrn": other_case.urn}).json()
    assert theirs["effectiveRules"]["maxDistanceKm"] == 0.1 and theirs["relaxations"] == []
    assert mine["policy"]["urn"] == theirs["policy"]["urn"]


@transactional
def test_a_relax_that_still_places_nobody_leaves_them_in_review_without_a_new_item(vendors, client_for):
    item, sub_cases, _, first = failed_allocation()
    ana = client_for("IB", Role.OPS_SUPERVISOR, ANA)

    response = relax(ana, item, {"maxDistanceKm": 0.2})

    assert response.status_code == 200, response.content
    [entry] = response.json()["actions"]
    assert (entry["result"]["outcome"], entry["result"]["allocationUrn"]) == ("STILL_UNPLACEABLE", None)
    [unplaced] = entry["result"]["unallocated"]
    assert unplaced["category"] == "ALLOCATION_FAILED" and sorted(unplaced["subCaseUrns"]) == sorted(
        s.urn for s in sub_cases
    )
    assert statuses(sub_cases) == ["MANUAL_REVIEW", "MANUAL_REVIEW"]
    assert list(Allocation.objects.values_list("pk", flat=True)) == [first.pk]  # nothing new written
    assert OutboxEvent.objects.filter(event="allocation:failed").count() == 1
    assert ReviewItem.objects.count() == 1
    # The relaxation stands (the operator may relax further: a second relax must be looser still).
    assert PolicyRelaxation.objects.filter(item=item).count() == 1
    assert_problem(relax(ana, item, {"maxDistanceKm": 0.15}), 422, "unprocessable")
    assert relax(ana, item, {"maxDistanceKm": 60}).json()["actions"][1]["result"]["outcome"] == "ALLOCATED"


@transactional
def test_a_relax_that_places_some_leaves_the_rest_in_review_and_resolve_moves_only_them(vendors, client_for):
    hotels_seed_demo(airline="IB")
    active_policy(airline="IB", rules=dict(TIGHT_RULES))
    case = CaseFactory(airline="IB", airport="MAD")
    placeable, incomplete = grouped(case, [[]]), grouped(case, [[]])
    SubCase.objects.filter(pk=incomplete[0].pk).update(first_name="")
    everyone = placeable + incomplete
    SubCase.objects.filter(pk__in=[s.pk for s in everyone]).update(status=SubCaseStatus.MANUAL_REVIEW)
    wave = make_wave(case, everyone, status=DemandStatus.ALLOCATED)
    item = ReviewItemFactory(
        case=case, airline="IB", category=ReviewCategory.ALLOCATION_FAILED, demand_urn=wave.urn,
        affected_subcase_urns=[s.urn for s in everyone],
    )  # fmt: skip
    ana = client_for("IB", Role.OPS_SUPERVISOR, ANA)

    response = relax(ana, item, {"maxDistanceKm": 60})

    assert response.status_code == 200, response.content
    result = response.json()["actions"][0]["result"]
    assert result["outcome"] == "PARTIALLY_ALLOCATED" and result["allocatedSubCaseUrns"] == [placeable[0].urn]
    assert [(u["subCaseUrns"], u["category"]) for u in result["unallocated"]] == [
        ([incomplete[0].urn], "DATA_INCOMPLETE")
    ]
    assert statuses(everyone) == ["ALLOCATED", "MANUAL_REVIEW"]
    assert not OutboxEvent.objects.filter(event="allocation:failed").exists()
    resolved = post(ana, f"/v1/manual-review/{item.urn}/resolve", {"resolution": "RELAXED", "reason": "partly"})
    assert resolved.status_code == 200, resolved.content
    assert statuses(everyone) == ["ALLOCATED", "GROUPED"]


@transactional
def test_a_replayed_relax_answers_the_same_and_relaxes_once(vendors, client_for):
    item, _, _, _ = failed_allocation()
    ana = client_for("IB", Role.OPS_SUPERVISOR, ANA)
    first = relax(ana, item, {"maxDistanceKm": 60}, HTTP_IDEMPOTENCY_KEY="relax-1")
    again = relax(ana, item, {"maxDistanceKm": 60}, HTTP_IDEMPOTENCY_KEY="relax-1")
    assert first.status_code == again.status_code == 200
    assert again.content == first.content and again.headers["Idempotent-Replayed"] == "true"
    assert PolicyRelaxation.objects.count() == 1 and Allocation.objects.count() == 2
    assert len(ReviewItem.objects.get(pk=item.pk).actions) == 1
    assert AuditEntry.objects.filter(action="review.relaxed").count() == 1


@transactional
def test_an_agent_action_is_recorded_on_the_relax(vendors):
    item, _, _, _ = failed_allocation()
    principal = principal_of("IB", Role.OPS_SUPERVISOR)
    done = services.review_item_relax(
        principal=principal,
        review_urn=item.urn,
        fields={"maxDistanceKm": 60},
        reason="agent rec #1",
        agent_action_urn=AGENT_ACTION,
    )
    assert done.actions[0]["agentActionUrn"] == AGENT_ACTION
    assert ReviewItem.objects.get(pk=item.pk).accepted_agent_action_urn == AGENT_ACTION
    assert PolicyRelaxation.objects.get(item=item).agent_action_urn == AGENT_ACTION


# --- relax: refusals (before any re-allocation: no vendor is asked) ---------------------------------------------


@pytest.fixture
def relaxable_item(db):
    active_policy(airline="IB", rules=dict(TIGHT_RULES, minStars=3))
    return item_with_subcases_in_review(category=ReviewCategory.ALLOCATION_FAILED)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"mealAllowance": {"dinner": {"amount": "50.00", "currency": "EUR"}}}, "fields.mealAllowance", "relaxable"),
        ({"maxWalkKm": 3}, "fields.maxWalkKm", "relaxable"),
        ({"maxDistanceKm": "far"}, "fields.maxDistanceKm", "number"),
        ({"maxDistanceKm": 0.05}, "fields.maxDistanceKm", "does not relax"),  # a tightening
        ({"maxDistanceKm": 0.1}, "fields.maxDistanceKm", "does not relax"),  # the same value
        ({"minStars": 4}, "fields.minStars", "does not relax"),  # more stars tighten
        ({"maxNightlyRate": {"amount": "2000.00", "currency": "USD"}}, "fields.maxNightlyRate", "EUR"),
        ({"maxNightlyRate": {"amount": "900.00", "currency": "EUR"}}, "fields.maxNightlyRate", "does not relax"),
        ({"maxOccupancy": {"perRoom": 1, "familyException": True}}, "fields.maxOccupancy", "does not relax"),
        ({}, "fields", "non-empty"),
    ],
)
def test_what_does_not_relax_is_422_naming_the_field(relaxable_item, client_for, fields, field, words):
    ana = client_for("IB", Role.OPS_SUPERVISOR, ANA)
    problem = assert_problem(relax(ana, relaxable_item, fields), 422, "unprocessable")
    [error] = [e for e in problem["errors"] if e["field"] == field]
    assert words in error["message"], error
    assert not PolicyRelaxation.objects.exists()
    item = ReviewItem.objects.get(pk=relaxable_item.pk)
    assert item.actions == [] and item.state == ReviewState.OPEN  # rolled back with the claim
    assert not AuditEntry.objects.filter(action__startswith="review.").exists()


@pytest.mark.django_db
def test_a_rule_the_policy_does_not_set_cannot_be_relaxed(client_for):
    active_policy(airline="IB", rules={"minStars": 3})
    item = item_with_subcases_in_review(category=ReviewCategory.ALLOCATION_FAILED)
    problem = assert_problem(
        relax(client_for("IB", Role.OPS_SUPERVISOR, ANA), item, {"maxDistanceKm": 40}), 422, "unprocessable"
    )
    assert "sets no such rule" in problem["errors"][0]["message"]


@pytest.mark.django_db
def test_relax_on_an_item_a_colleague_holds_is_409_with_the_holder(relaxable_item, client_for):
    ana, ben = client_for("IB", Role.OPS_SUPERVISOR, ANA), client_for("IB", Role.OPS_SUPERVISOR, BEN)
    assert post(ben, f"/v1/manual-review/{relaxable_item.urn}/claim").status_code == 200
    problem = assert_problem(relax(ana, relaxable_item, {"maxDistanceKm": 40}), 409, "review-claimed")
    assert problem["assignedTo"] == BEN
    assert not PolicyRelaxation.objects.exists()


@pytest.mark.django_db
def test_relax_on_a_resolved_item_is_409(client_for):
    active_policy(airline="IB", rules=dict(TIGHT_RULES))
    item = item_with_subcases_in_review(
        category=ReviewCategory.ALLOCATION_FAILED, state=ReviewState.RESOLVED, resolution="NO_ACTION"
    )
    problem = assert_problem(
        relax(client_for("IB", Role.OPS_SUPERVISOR, ANA), item, {"maxDistanceKm": 40}), 409, "illegal-transition"
    )
    assert problem["currentState"] == "RESOLVED"


@pytest.mark.django_db
@pytest.mark.parametrize("category", ["MIXED_TIER_GROUP", "POLICY_VIOLATION", "DATA_INCOMPLETE"])
def test_relax_where_a_relaxation_cannot_help_is_409(client_for, category):
    active_policy(airline="IB", rules=dict(TIGHT_RULES))
    item = item_with_subcases_in_review(category=category)
    problem = assert_problem(
        relax(client_for("IB", Role.OPS_SUPERVISOR, ANA), item, {"maxDistanceKm": 40}), 409, "relax-not-applicable"
    )
    assert problem["category"] == category


@pytest.mark.django_db
def test_relax_when_nobody_is_left_in_review_is_409(relaxable_item, client_for):
    SubCase.objects.filter(case=relaxable_item.case).update(status=SubCaseStatus.GROUPED)
    assert_problem(
        relax(client_for("IB", Role.OPS_SUPERVISOR, ANA), relaxable_item, {"maxDistanceKm": 40}),
        409,
        "nothing-to-reallocate",
    )
    assert not PolicyRelaxation.objects.exists()


# --- the relaxation source and the pricing read -------------------------------------------------------------


@pytest.mark.django_db
def test_a_relaxation_never_tightens_another_tiers_policy_of_the_case():
    active_policy(airline="IB", scope_tier=Tier.ECONOMY, rules={"maxDistanceKm": 15, "minStars": 4})
    active_policy(airline="IB", scope_tier=Tier.BUSINESS, rules={"maxDistanceKm": 50, "minStars": 4})
    item = item_with_subcases_in_review(category=ReviewCategory.ALLOCATION_FAILED)
    PolicyRelaxation.objects.create(
        airline="IB", case=item.case, item=item, rule="maxDistanceKm", value=40, reason="r", created_by=ANA
    )
    principal = principal_of("IB", Role.OPS_SUPERVISOR)
    economy = policy_resolve(principal=principal, tier=Tier.ECONOMY, case_urn=item.case.urn)
    business = policy_resolve(principal=principal, tier=Tier.BUSINESS, case_urn=item.case.urn)
    assert economy.effective_rules["maxDistanceKm"] == 40 and [r.source for r in economy.relaxations] == [item.urn]
    assert business.effective_rules["maxDistanceKm"] == 50 and business.relaxations == []
    # Another airline's principal resolving the same case URN sees no relaxation (and no case: 404).
    with pytest.raises(Problem) as refused:
        policy_resolve(principal=principal_of("UX", Role.OPS_SUPERVISOR), case_urn=item.case.urn)
    assert refused.value.status_code == 404


@pytest.mark.django_db
def test_the_relaxation_preview_prices_a_relax_per_tier_and_writes_nothing():
    active_policy(airline="IB", scope_tier=Tier.ECONOMY, rules={"maxDistanceKm": 15, "minStars": 4})
    active_policy(airline="IB", scope_tier=Tier.BUSINESS, rules={"maxDistanceKm": 50, "minStars": 4})
    item = item_with_subcases_in_review(category=ReviewCategory.ALLOCATION_FAILED)
    SubCase.objects.filter(pk=item.affected_subcase_urns[1].rsplit(":", 1)[1]).update(tier=Tier.BUSINESS)

    changes = review_selectors.relaxation_preview(
        principal=principal_of("IB", Role.OPS_SUPERVISOR), case_urn=item.case.urn, fields={"maxDistanceKm": 40}
    )

    assert [(c.tier, c.rule, c.current, c.proposed, c.relaxes) for c in changes] == [
        ("BUSINESS", "maxDistanceKm", 50, 40, False),
        ("ECONOMY", "maxDistanceKm", 15, 40, True),
    ]
    assert changes[1].as_dict()["policyUrn"].startswith("urn:nexa:policy:")
    assert not PolicyRelaxation.objects.exists() and not AuditEntry.objects.exists()


# --- split ------------------------------------------------------------------------------------------------------


@transactional
def test_split_a_mixed_tier_group_from_the_failed_allocation_to_grouped_again(vendors, client_for):
    hotels_seed_demo(airline="IB")
    active_policy(airline="IB", rules=dict(GENEROUS_RULES))
    case = CaseFactory(airline="IB", airport="MAD")
    group = PassengerGroupFactory(case=case, airline="IB")
    economy = SubCaseFactory(case=case, airline="IB", group=group, pnr="MIX001", tier=Tier.ECONOMY, status="GROUPED")
    business = [
        SubCaseFactory(case=case, airline="IB", group=group, pnr="MIX001", tier=Tier.BUSINESS, status="GROUPED")
        for _ in range(2)
    ]
    wave = make_wave(case, [economy, *business])
    case_services.allocation_create(principal=principal_of("IB", Role.OPS_SUPERVISOR), demand_urn=wave.urn)
    [item] = items_from_allocation(case)
    assert item.category == ReviewCategory.MIXED_TIER_GROUP and item.affected_group_urns == [group.urn]
    ana = client_for("IB", Role.OPS_SUPERVISOR, ANA)
    into = [[economy.urn], [b.urn for b in business]]

    response = split(ana, item, into)

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["state"], body["assignedTo"], body["resolution"]) == ("CLAIMED", ANA, None)
    [entry] = body["actions"]
    assert (entry["action"], entry["params"], entry["by"]) == ("split", {"into": into}, ANA)
    assert entry["result"]["dissolvedGroupUrns"] == [group.urn]
    new_groups = entry["result"]["groups"]
    assert [g["subCaseUrns"] for g in new_groups] == into and not any(g["mixedTier"] for g in new_groups)
    assert body["links"]["groupUrns"] == [g["groupUrn"] for g in new_groups]
    assert body["affectedGroups"] == [g["label"] for g in new_groups]
    assert not PassengerGroup.objects.filter(pk=group.pk).exists()
    members = {s.pk: s for s in SubCase.objects.filter(case=case)}
    assert members[economy.pk].group.urn == new_groups[0]["groupUrn"]
    assert {members[b.pk].group.urn for b in business} == {new_groups[1]["groupUrn"]}
    assert {s.status for s in members.values()} == {"MANUAL_REVIEW"}  # the split moves nobody along the FSM
    assert AuditEntry.objects.filter(action="review.split", entity_urn=item.urn, actor=ANA).count() == 1
    assert AuditEntry.objects.filter(action="group.created", case_urn=case.urn, actor=ANA).count() == 2
    assert AuditEntry.objects.filter(action="subcase.regrouped", case_urn=case.urn).count() == 3
    changed = OutboxEvent.objects.filter(event="subcase:state-changed", payload__caseUrn=case.urn)
    assert {e.payload["subCaseUrn"] for e in changed if e.payload["status"] == "MANUAL_REVIEW"} >= {
        s.urn for s in (economy, *business)
    }
    assert [e.payload["reviewUrn"] for e in OutboxEvent.objects.filter(event="review:split")] == [item.urn]

    resolved = post(ana, f"/v1/manual-review/{item.urn}/resolve", {"resolution": "SPLIT", "reason": "by tier"})
    assert resolved.status_code == 200, resolved.content
    assert set(SubCase.objects.filter(case=case).values_list("status", flat=True)) == {"GROUPED"}


@pytest.fixture
def mixed_item(db):
    item = item_with_subcases_in_review(passengers=3, category=ReviewCategory.MIXED_TIER_GROUP)
    return item, [SubCase.objects.get(pk=urn.rsplit(":", 1)[1]) for urn in item.affected_subcase_urns]


@pytest.mark.django_db
def test_split_every_passenger_once_else_422_naming_them(mixed_item, client_for):
    item, (one, two, three) = mixed_item
    stranger = SubCaseFactory(case=item.case, airline="IB")  # same case, another group
    ana = client_for("IB", Role.OPS_SUPERVISOR, ANA)

    missing = assert_problem(split(ana, item, [[one.urn], [two.urn]]), 422, "unprocessable")
    assert any(three.urn in e["message"] and "missing" in e["message"] for e in missing["errors"])
    twice = assert_problem(split(ana, item, [[one.urn, two.urn], [two.urn, three.urn]]), 422, "unprocessable")
    assert {"field": "into[1][0]", "message": f"{two.urn} is listed twice (also in into[0])"} in twice["errors"]
    foreign = assert_problem(split(ana, item, [[one.urn, stranger.urn], [two.urn, three.urn]]), 422, "unprocessable")
    assert foreign["errors"][0]["field"] == "into[0][1]" and stranger.urn in foreign["errors"][0]["message"]
    one_group = assert_problem(split(ana, item, [[one.urn, two.urn, three.urn]]), 422, "unprocessable")
    assert one_group["errors"][0]["field"] == "into"
    empty = assert_problem(split(ana, item, [[one.urn, two.urn, three.urn], []]), 422, "unprocessable")
    assert empty["errors"][0]["field"] == "into[1]"
    # Passenger ids are sub-case URNs (the manifest has no per-passenger PAX id): anything else is named.
    pax = assert_problem(split(ana, item, [["PAX-1"], [two.urn, three.urn]]), 422, "unprocessable")
    assert pax["errors"][0]["field"] == "into[0][0]" and "PAX-1" in pax["errors"][0]["message"]
    assert ReviewItem.objects.get(pk=item.pk).actions == []
    assert SubCase.objects.get(pk=one.pk).group_id == one.group_id  # nothing regrouped
    assert list(PassengerGroup.objects.filter(case=item.case).values_list("pk", flat=True)) == [one.group_id]


@pytest.mark.django_db
def test_split_on_an_item_a_colleague_holds_is_409_and_resolved_is_409(mixed_item, client_for):
    item, (one, two, three) = mixed_item
    ana, ben = client_for("IB", Role.OPS_SUPERVISOR, ANA), client_for("IB", Role.OPS_SUPERVISOR, BEN)
    post(ben, f"/v1/manual-review/{item.urn}/claim")
    assert (
        assert_problem(split(ana, item, [[one.urn], [two.urn, three.urn]]), 409, "review-claimed")["assignedTo"] == BEN
    )
    assert (
        post(ben, f"/v1/manual-review/{item.urn}/resolve", {"resolution": "NO_ACTION", "reason": "x"}).status_code
        == 200
    )
    assert_problem(split(ben, item, [[one.urn], [two.urn, three.urn]]), 409, "illegal-transition")


@pytest.mark.django_db
def test_a_lapsed_claim_of_a_colleague_does_not_stop_the_split(mixed_item, client_for):
    item, (one, two, three) = mixed_item
    ReviewItem.objects.filter(pk=item.pk).update(
        state=ReviewState.CLAIMED, assigned_to=BEN, claimed_until=timezone.now() - dt.timedelta(seconds=1)
    )
    response = split(client_for("IB", Role.OPS_SUPERVISOR, ANA), item, [[one.urn], [two.urn, three.urn]])
    assert response.status_code == 200 and response.json()["assignedTo"] == ANA


@pytest.mark.django_db
def test_a_replayed_split_answers_the_same_and_splits_once(mixed_item, client_for):
    item, (one, two, three) = mixed_item
    ana = client_for("IB", Role.OPS_SUPERVISOR, ANA)
    first = split(ana, item, [[one.urn], [two.urn, three.urn]], HTTP_IDEMPOTENCY_KEY="split-1")
    again = split(ana, item, [[one.urn], [two.urn, three.urn]], HTTP_IDEMPOTENCY_KEY="split-1")
    assert first.status_code == 200 and again.content == first.content
    assert again.headers["Idempotent-Replayed"] == "true"
    assert PassengerGroup.objects.filter(case=item.case).count() == 2
    assert AuditEntry.objects.filter(action="review.split").count() == 1


@pytest.mark.django_db
def test_an_agent_action_is_recorded_on_the_split(mixed_item):
    item, (one, two, three) = mixed_item
    done = services.review_item_split(
        principal=principal_of("IB", Role.OPS_SUPERVISOR),
        review_urn=item.urn,
        into=[[one.urn, two.urn], [three.urn]],
        reason="agent rec #2",
        agent_action_urn=AGENT_ACTION,
    )
    assert done.actions[0]["agentActionUrn"] == AGENT_ACTION
    assert ReviewItem.objects.get(pk=item.pk).accepted_agent_action_urn == AGENT_ACTION


@pytest.mark.django_db
def test_split_of_passengers_already_allocated_is_409(mixed_item, client_for):
    item, (one, two, three) = mixed_item
    SubCase.objects.filter(pk=one.pk).update(status=SubCaseStatus.ALLOCATED)
    problem = assert_problem(
        split(client_for("IB", Role.OPS_SUPERVISOR, ANA), item, [[one.urn], [two.urn, three.urn]]),
        409,
        "regroup-not-allowed",
    )
    assert problem["subCaseUrns"] == [one.urn]


# --- platform contracts: roles, 401, 404 across tenants, 400 for malformed URNs, audit ---------------------------


def _answers_action(action: str):
    def check(response, objects) -> bool:
        body = response.json()
        return body["urn"] == objects["item"].urn and [a["action"] for a in body["actions"]] == [action]

    return check


def _relaxable_world(airline: str) -> ReviewItem:
    """Passengers an allocation sent to review (ALLOCATED wave, PLANNED allocation with nobody placed) under a
    policy no hotel meets, and the item."""
    hotels_seed_demo(airline=airline)
    active_policy(airline=airline, rules=dict(TIGHT_RULES))
    case = CaseFactory(airline=airline, airport="MAD")
    sub_cases = grouped(case, [[]])
    SubCase.objects.filter(pk__in=[s.pk for s in sub_cases]).update(status=SubCaseStatus.MANUAL_REVIEW)
    wave = make_wave(case, sub_cases, status=DemandStatus.ALLOCATED)
    return ReviewItemFactory(
        case=case,
        airline=airline,
        category=ReviewCategory.ALLOCATION_FAILED,
        affected_groups=[sub_cases[0].group.label],
        affected_group_urns=[sub_cases[0].group.urn],
        affected_subcase_urns=[s.urn for s in sub_cases],
        demand_urn=wave.urn,
    )


class TestRelaxContract(APIContractTests):
    routes = (
        RouteContract(
            "relax",
            "POST",
            "/v1/manual-review/{item}/relax",
            min_role=Role.OPS_SUPERVISOR,
            body={"fields": {"maxDistanceKm": 60}, "reason": "airport hotels all booked"},
            audit_actions=("review.relaxed", "review.claimed", "allocation.created", "subcase.mark_allocated"),
            check=_answers_action("relax"),
        ),
    )

    @pytest.fixture(autouse=True)
    def _world(self, transactional_db, simulator_control, settings):
        # transactional_db: the hotel searches run on their own connections (compose workers).
        settings.NEXA_HOTEL_VENDORS = list(VENDORS)

    def make_objects(self, airline):
        return {"item": _relaxable_world(airline)}


class TestSplitContract(APIContractTests):
    routes = (
        RouteContract(
            "split",
            "POST",
            "/v1/manual-review/{item}/split",
            min_role=Role.OPS_SUPERVISOR,
            body=lambda objects: {
                "into": [objects["item"].affected_subcase_urns[:1], objects["item"].affected_subcase_urns[1:]],
                "reason": "one group per tier",
            },
            audit_actions=("review.split", "review.claimed", "group.created", "group.dissolved", "subcase.regrouped"),
            check=_answers_action("split"),
        ),
    )

    def make_objects(self, airline):
        return {"item": item_with_subcases_in_review(airline, category=ReviewCategory.MIXED_TIER_GROUP)}
