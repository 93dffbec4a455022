"""The review routes as an operator uses them: claim (a lease), resolve (only the claimer; the sub-cases go
back into the flow), assign, escalate (one level up), the state machine's refusals, the lists' filters,
order and pages, idempotent POSTs."""

import datetime as dt
import threading

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from audit.models import AuditEntry
from cases.models import SubCase, SubCaseStatus
from nexa.platform.auth import issue_token
from nexa.platform.models import OutboxEvent, TenantSettings
from nexa.platform.roles import Role
from operators.models import Operator
from review.models import ReviewItem, ReviewState
from tests.api_base import assert_problem
from tests.review.factories import ReviewItemFactory, item_with_subcases_in_review

pytestmark = pytest.mark.django_db

ANA = "urn:nexa:user:ana"
BEN = "urn:nexa:user:ben"


@pytest.fixture
def as_operator(client_for):
    def make(operator: str, role: Role = Role.OPS_SUPERVISOR, airline: str = "IB") -> APIClient:
        return client_for(airline, role, operator)

    return make


@pytest.fixture
def ana(as_operator):
    return as_operator(ANA)


@pytest.fixture
def ben(as_operator):
    return as_operator(BEN)


def post(client, path: str, body: dict | None = None, **headers):
    return client.post(path, body or {}, format="json", **headers)


def claim(client, item):
    return post(client, f"/v1/manual-review/{item.urn}/claim")


def resolve(client, item, resolution="NO_ACTION", reason="handled by phone", prefix="/v1/manual-review"):
    return post(client, f"{prefix}/{item.urn}/resolve", {"resolution": resolution, "reason": reason})


def escalate(client, item, reason="waiting too long"):
    return post(client, f"/v1/booking/manual-review/{item.urn}/escalate", {"reason": reason})


def statuses(item) -> set[str]:
    return set(SubCase.objects.filter(case=item.case).values_list("status", flat=True))


# --- claim ------------------------------------------------------------------------------------------------------


def test_claim_is_a_lease_a_second_claimer_gets_409_with_the_holder(ana, ben):
    item = item_with_subcases_in_review()
    before = timezone.now()
    first = claim(ana, item)
    assert first.status_code == 200, first.content
    body = first.json()
    assert (body["state"], body["assignedTo"], body["version"]) == ("CLAIMED", ANA, 2)
    until = dt.datetime.fromisoformat(body["claimedUntil"])
    assert before + dt.timedelta(minutes=15) <= until <= timezone.now() + dt.timedelta(minutes=15)

    refused = assert_problem(claim(ben, item), 409, "review-claimed")
    assert refused["assignedTo"] == ANA and refused["claimedUntil"] == body["claimedUntil"]
    assert ReviewItem.objects.get(pk=item.pk).assigned_to == ANA
    claimed = OutboxEvent.objects.filter(event="review:claimed")
    assert [e.payload["assignedTo"] for e in claimed] == [ANA]


def test_the_claimer_claiming_again_extends_the_lease(ana):
    item = item_with_subcases_in_review()
    claim(ana, item)
    ReviewItem.objects.filter(pk=item.pk).update(claimed_until=timezone.now() + dt.timedelta(minutes=1))
    again = claim(ana, item)
    assert again.status_code == 200
    assert dt.datetime.fromisoformat(again.json()["claimedUntil"]) > timezone.now() + dt.timedelta(minutes=14)
    assert again.json()["version"] == 3


def test_a_lapsed_claim_may_be_taken_by_anyone(ana, ben):
    item = item_with_subcases_in_review()
    claim(ana, item)
    ReviewItem.objects.filter(pk=item.pk).update(claimed_until=timezone.now() - dt.timedelta(seconds=1))
    taken = claim(ben, item)
    assert taken.status_code == 200 and taken.json()["assignedTo"] == BEN
    # Ana's lease lapsed and Ben took it: Ana no longer acts on it.
    assert_problem(resolve(ana, item), 409, "review-claimed")


@pytest.mark.django_db(transaction=True)
def test_concurrent_claimers_exactly_one_wins_the_rest_see_the_winner():
    item = item_with_subcases_in_review()
    operators = [f"urn:nexa:user:ib-claimer-{n:02d}" for n in range(12)]
    clients = {}
    for operator in operators:
        client = APIClient()
        client.credentials(
            HTTP_AUTHORIZATION=f"Bearer {issue_token(airline='IB', role='OPS_SUPERVISOR', operator_urn=operator)}"
        )
        clients[operator] = client
    barrier = threading.Barrier(len(operators))
    responses, errors = {}, []

    def run(operator):
        try:
            barrier.wait(timeout=30)
            responses[operator] = claim(clients[operator], item)
        except BaseException as error:  # noqa: BLE001 - reported by the test
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(operator,)) for operator in operators]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    winners = [op for op, response in responses.items() if response.status_code == 200]
    assert len(winners) == 1, {op: r.status_code for op, r in responses.items()}
    for operator, response in responses.items():
        if operator != winners[0]:
            assert_problem(response, 409, "review-claimed")
            assert response.json()["assignedTo"] == winners[0]
    stored = ReviewItem.objects.get(pk=item.pk)
    assert (stored.assigned_to, stored.version) == (winners[0], 2)
    assert AuditEntry.objects.filter(action="review.claimed", entity_urn=item.urn).count() == 1


# --- resolve ----------------------------------------------------------------------------------------------------


def test_only_the_claimer_resolves(ana, ben):
    item = item_with_subcases_in_review()
    assert_problem(resolve(ana, item), 409, "review-not-claimed")  # claim it first
    claim(ana, item)
    refused = assert_problem(resolve(ben, item), 409, "review-claimed")
    assert refused["assignedTo"] == ANA
    assert statuses(item) == {SubCaseStatus.MANUAL_REVIEW}

    done = resolve(ana, item, "NO_ACTION", "passengers found their own hotel")
    assert done.status_code == 200, done.content
    body = done.json()
    assert (body["state"], body["resolution"], body["resolutionReason"], body["resolvedBy"]) == (
        "RESOLVED",
        "NO_ACTION",
        "passengers found their own hotel",
        ANA,
    )
    assert body["resolvedAt"] is not None and body["claimedUntil"] is None
    entry = AuditEntry.objects.get(action="review.resolved")
    assert (entry.actor, entry.reason, entry.entity_urn) == (ANA, "passengers found their own hotel", item.urn)
    event = OutboxEvent.objects.get(event="review:resolved")
    assert (event.payload["resolution"], event.payload["state"]) == ("NO_ACTION", "RESOLVED")


@pytest.mark.parametrize(
    ("resolution", "after"),
    [
        ("NO_ACTION", SubCaseStatus.GROUPED),
        ("RELAXED", SubCaseStatus.GROUPED),
        ("SPLIT", SubCaseStatus.GROUPED),
        ("CANCELLED", SubCaseStatus.CANCELLED),
        ("REBOOKED", SubCaseStatus.MANUAL_REVIEW),
        ("OVERRIDDEN", SubCaseStatus.MANUAL_REVIEW),
    ],
)
def test_resolution_moves_the_subcases_back_into_the_flow(ana, resolution, after):
    item = item_with_subcases_in_review(passengers=3)
    claim(ana, item)
    response = resolve(ana, item, resolution, prefix="/v1/booking/manual-review")
    assert response.status_code == 200, response.content
    assert statuses(item) == {after}
    moved = OutboxEvent.objects.filter(event="subcase:state-changed").count()
    assert moved == (0 if after == SubCaseStatus.MANUAL_REVIEW else 3)


def test_a_subcase_already_out_of_review_is_left_where_it_is(ana):
    item = item_with_subcases_in_review(passengers=2)
    first, second = SubCase.objects.filter(case=item.case).order_by("created_at", "id")
    SubCase.objects.filter(pk=second.pk).update(status=SubCaseStatus.BOOKED)
    claim(ana, item)
    assert resolve(ana, item, "CANCELLED").status_code == 200
    assert SubCase.objects.get(pk=first.pk).status == SubCaseStatus.CANCELLED
    assert SubCase.objects.get(pk=second.pk).status == SubCaseStatus.BOOKED


def test_a_resolved_item_refuses_every_action_with_409(ana, ben):
    item = item_with_subcases_in_review()
    claim(ana, item)
    resolve(ana, item)
    version = ReviewItem.objects.get(pk=item.pk).version
    body = assert_problem(resolve(ana, item), 409, "illegal-transition")
    assert body["currentState"] == "RESOLVED" and body["allowedTransitions"] == []
    assert_problem(claim(ben, item), 409, "illegal-transition")
    assert_problem(escalate(ana, item), 409, "illegal-transition")
    Operator.objects.create(airline="IB", operator_urn=BEN, role=Role.OPS_SUPERVISOR, display_name="Ben")
    assign = post(ana, f"/v1/booking/manual-review/{item.urn}/assign", {"operatorUrn": BEN, "reason": "x"})
    assert_problem(assign, 409, "illegal-transition")
    assert ReviewItem.objects.get(pk=item.pk).version == version


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"resolution": "FIXED", "reason": "x"}, "resolution"),
        ({"resolution": "NO_ACTION"}, "reason"),
        ({"resolution": "NO_ACTION", "reason": "   "}, "reason"),
        ({"resolution": "NO_ACTION", "reason": "x", "note": "y"}, "note"),
    ],
)
def test_bad_resolve_bodies_are_400_naming_the_field(ana, body, field):
    item = item_with_subcases_in_review()
    claim(ana, item)
    problem = assert_problem(post(ana, f"/v1/manual-review/{item.urn}/resolve", body), 400, "validation-error")
    assert field in {error["field"] for error in problem["errors"]}


# --- escalate -----------------------------------------------------------------------------------------------------


def test_escalate_raises_priority_one_level_and_high_stays_high(ana):
    TenantSettings.objects.create(airline="IB", sla_medium_minutes=45)
    item = item_with_subcases_in_review(category="POLICY_VIOLATION", priority="LOW")
    seen = []
    for _ in range(3):
        before = timezone.now()
        response = escalate(ana, item, "gate agent asked twice")
        assert response.status_code == 200, response.content
        body = response.json()
        seen.append(body["priority"])
        assert body["state"] == "ESCALATED"
        if body["priority"] == "MEDIUM":
            due = dt.datetime.fromisoformat(body["slaDueAt"])
            assert before + dt.timedelta(minutes=45) <= due <= timezone.now() + dt.timedelta(minutes=45)
    assert seen == ["MEDIUM", "HIGH", "HIGH"]
    assert ReviewItem.objects.get(pk=item.pk).escalations == 3
    entries = AuditEntry.objects.filter(action="review.escalated").order_by("id")
    assert [(e.before["priority"], e.after["priority"]) for e in entries] == [
        ("LOW", "MEDIUM"),
        ("MEDIUM", "HIGH"),
        ("HIGH", "HIGH"),
    ]
    assert all(e.reason == "gate agent asked twice" and e.actor == ANA for e in entries)
    assert OutboxEvent.objects.filter(event="review:escalated").count() == 3


def test_escalation_keeps_the_claim_and_the_claimer_resolves(ana, ben):
    item = item_with_subcases_in_review()
    claim(ana, item)
    escalated = escalate(ben, item).json()
    assert (escalated["state"], escalated["assignedTo"]) == ("ESCALATED", ANA)
    assert_problem(claim(ben, item), 409, "review-claimed")
    assert resolve(ana, item).status_code == 200


def test_an_idempotent_escalate_is_applied_once(ana):
    item = item_with_subcases_in_review(category="MIXED_TIER_GROUP", priority="LOW")
    path = f"/v1/booking/manual-review/{item.urn}/escalate"
    first = post(ana, path, {"reason": "x"}, HTTP_IDEMPOTENCY_KEY="esc-1")
    again = post(ana, path, {"reason": "x"}, HTTP_IDEMPOTENCY_KEY="esc-1")
    assert first.status_code == again.status_code == 200
    assert again["Idempotent-Replayed"] == "true" and again.content == first.content
    assert ReviewItem.objects.get(pk=item.pk).priority == "MEDIUM"


# --- assign -------------------------------------------------------------------------------------------------------


def test_assign_hands_the_item_to_an_active_supervisor_who_then_resolves(ana, ben):
    Operator.objects.create(airline="IB", operator_urn=BEN, role=Role.OPS_SUPERVISOR, display_name="Ben")
    item = item_with_subcases_in_review()
    claim(ana, item)
    response = post(ana, f"/v1/booking/manual-review/{item.urn}/assign", {"operatorUrn": BEN, "reason": "shift end"})
    assert response.status_code == 200, response.content
    assert (response.json()["state"], response.json()["assignedTo"]) == ("CLAIMED", BEN)
    entry = AuditEntry.objects.get(action="review.assigned")
    assert (entry.before["assignedTo"], entry.after["assignedTo"], entry.reason) == (ANA, BEN, "shift end")
    assert_problem(resolve(ana, item), 409, "review-claimed")
    assert resolve(ben, item).status_code == 200


@pytest.mark.parametrize(
    "profile",
    [
        None,  # no profile at all
        {"airline": "IB", "role": Role.OPS_SUPERVISOR, "active": False},
        {"airline": "IB", "role": Role.AIRPORT_OPERATOR, "active": True},
        {"airline": "LH", "role": Role.OPS_SUPERVISOR, "active": True},
    ],
    ids=["unknown", "deactivated", "below-supervisor", "other-airline"],
)
def test_assign_refuses_anyone_but_an_active_supervisor_of_the_airline_with_422(ana, profile):
    if profile is not None:
        Operator.objects.create(operator_urn=BEN, display_name="Ben", **profile)
    item = item_with_subcases_in_review()
    response = post(ana, f"/v1/booking/manual-review/{item.urn}/assign", {"operatorUrn": BEN, "reason": "x"})
    body = assert_problem(response, 422, "unprocessable")
    assert [error["field"] for error in body["errors"]] == ["operatorUrn"]
    assert ReviewItem.objects.get(pk=item.pk).state == ReviewState.OPEN


# --- lists ----------------------------------------------------------------------------------------------------------


def _due(minutes: int):
    return timezone.now() + dt.timedelta(minutes=minutes)


def test_lists_are_ordered_by_sla_due_time_and_filtered(ana):
    late = ReviewItemFactory(sla_due_at=_due(60), category="PAYMENT_FAILED", priority="MEDIUM")
    soon = ReviewItemFactory(sla_due_at=_due(5), category="BOOKING_FAILED", priority="HIGH")
    mid = ReviewItemFactory(
        sla_due_at=_due(30), category="POLICY_VIOLATION", priority="LOW", state="CLAIMED", assigned_to=BEN,
        claimed_until=_due(10),
    )  # fmt: skip
    done = ReviewItemFactory(sla_due_at=_due(1), state="RESOLVED", resolution="NO_ACTION")
    ReviewItemFactory(case__airline="LH", airline="LH", sla_due_at=_due(2))

    def urns(path):
        response = ana.get(path)
        assert response.status_code == 200, response.content
        return [item["urn"] for item in response.json()["items"]]

    assert urns("/v1/manual-review") == [done.urn, soon.urn, mid.urn, late.urn]
    assert urns("/v1/booking/manual-review") == [soon.urn, mid.urn, late.urn]
    assert urns("/v1/booking/manual-review?state=RESOLVED") == [done.urn]
    assert urns("/v1/manual-review?state=CLAIMED") == [mid.urn]
    assert urns("/v1/manual-review?category=PAYMENT_FAILED") == [late.urn]
    assert urns("/v1/manual-review?priority=HIGH") == [done.urn, soon.urn]
    assert urns(f"/v1/manual-review?caseUrn={soon.case.urn}") == [soon.urn]
    assert urns(f"/v1/manual-review?assignedTo={BEN}") == [mid.urn]
    assert urns("/v1/manual-review?state=&category=") == [done.urn, soon.urn, mid.urn, late.urn]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("state=DONE", "state"),
        ("category=LOST", "category"),
        ("priority=URGENT", "priority"),
        ("caseUrn=urn:nexa:subcase:019371a8-5e2c-7c3d-9a4b-2f6e8d1c0b7a", "caseUrn"),
        ("assignedTo=ana", "assignedTo"),
        ("limit=0", "limit"),
    ],
)
def test_bad_filters_are_400_naming_them(ana, query, field):
    problem = assert_problem(ana.get(f"/v1/manual-review?{query}"), 400, "validation-error")
    assert field in {error["field"] for error in problem["errors"]}


def test_pages_walk_every_item_once_in_due_order(ana):
    items = [ReviewItemFactory(sla_due_at=_due(minutes)) for minutes in (50, 10, 40, 20, 30)]
    expected = [item.urn for item in sorted(items, key=lambda item: item.sla_due_at)]
    seen, cursor = [], None
    for _ in range(5):
        response = ana.get("/v1/manual-review", {"limit": 2, **({"cursor": cursor} if cursor else {})})
        body = response.json()
        seen += [item["urn"] for item in body["items"]]
        cursor = body["nextCursor"]
        if not body["hasMore"]:
            break
    assert seen == expected and cursor is None


def test_detail_is_spec_001s_shape_plus_sla_lifecycle_and_links(ana):
    item = item_with_subcases_in_review(
        attempted_hotels=[{"hotelUrn": None, "reason": "hotel-full", "providerError": "no rooms"}],
        allocation_urn="urn:nexa:allocation:019371a8-5e2c-7c3d-9a4b-2f6e8d1c0b7a",
    )
    body = ana.get(f"/v1/manual-review/{item.urn}").json()
    assert {
        "urn", "caseUrn", "category", "priority", "attemptedHotels", "affectedGroups", "recommendations", "state",
        "assignedTo", "slaDueAt", "createdAt", "resolvedAt", "resolution", "links",
    } <= set(body)  # fmt: skip
    assert body["affectedGroups"] == item.affected_groups and body["recommendations"] == []
    assert body["links"]["caseUrn"] == item.case.urn
    assert body["links"]["allocationUrn"] == item.allocation_urn and body["links"]["demandUrn"] is None
    assert body["attemptedHotels"] == item.attempted_hotels
