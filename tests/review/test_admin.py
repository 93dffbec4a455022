"""Review items in Django admin: filters and search, and claim / escalate / resolve as actions that go through
review.services as the admin user's operator (audited, published); refusals are messages, not 500s."""

import pytest
from django.urls import reverse

from audit.models import AuditEntry
from nexa.platform.models import OutboxEvent
from nexa.platform.roles import Role
from review.models import ReviewItem
from tests.admin_users import staff_operator
from tests.cases.factories import CaseFactory
from tests.review.factories import ReviewItemFactory, item_with_subcases_in_review

pytestmark = pytest.mark.django_db

ITEMS = reverse("admin:review_reviewitem_changelist")


@pytest.fixture
def supervisor(client):
    user, operator = staff_operator("IB", Role.OPS_SUPERVISOR)
    client.force_login(user)
    return operator


def _act(client, action, *items):
    return client.post(ITEMS, {"action": action, "_selected_action": [item.pk for item in items]}, follow=True)


def test_filters_and_search_within_the_airline(client, supervisor):
    madrid = ReviewItemFactory(case=CaseFactory(airport="MAD", flight_number="IB3166"), category="BOOKING_FAILED")
    bilbao = ReviewItemFactory(
        case=CaseFactory(airport="BIO", flight_number="IB0427"), category="PAYMENT_FAILED", priority="LOW"
    )
    lufthansa = ReviewItemFactory(case=CaseFactory(airline="LH", airport="MAD", flight_number="LH1234"))

    def shows(params):
        response = client.get(ITEMS, params)
        assert response.status_code == 200
        listed = {row.pk for row in response.context["cl"].result_list}
        return {name for item, name in ((madrid, "madrid"), (bilbao, "bilbao"), (lufthansa, "lh")) if item.pk in listed}

    assert shows({}) == {"madrid", "bilbao"}
    assert shows({"category": "PAYMENT_FAILED"}) == {"bilbao"}
    assert shows({"priority": "LOW"}) == {"bilbao"}
    assert shows({"state": "OPEN"}) == {"madrid", "bilbao"}
    assert shows({"case__airport": "MAD"}) == {"madrid"}
    assert shows({"q": "IB3166"}) == {"madrid"}
    assert shows({"q": "LH1234"}) == set()
    assert shows({"q": bilbao.urn}) == {"bilbao"}
    assert shows({"q": lufthansa.urn}) == set()
    assert shows({"q": "urn:nexa:review:not-a-uuid"}) == set()


def test_claim_goes_through_the_service_as_the_operator_and_never_crosses_the_wall(client, supervisor):
    mine = ReviewItemFactory()
    theirs = ReviewItemFactory(case=CaseFactory(airline="LH"))
    response = _act(client, "claim", mine, theirs)
    assert response.status_code == 200 and "Claimed: 1 review item(s)" in response.text
    mine.refresh_from_db()
    assert (mine.state, mine.assigned_to) == ("CLAIMED", supervisor.operator_urn)
    entry = AuditEntry.objects.get(entity_urn=mine.urn)
    assert (entry.action, entry.actor, entry.airline) == ("review.claimed", supervisor.operator_urn, "IB")
    assert OutboxEvent.objects.filter(event="review:claimed").count() == 1
    theirs.refresh_from_db()
    assert (theirs.state, theirs.assigned_to) == ("OPEN", "")
    assert not AuditEntry.objects.filter(entity_urn=theirs.urn).exists()


def test_a_refused_action_is_an_error_message_not_a_500(client, supervisor):
    item = ReviewItemFactory(state="CLAIMED", assigned_to="urn:nexa:user:someone-else")
    item.claimed_until = item.sla_due_at
    item.save(update_fields=["claimed_until"])
    for action in ("claim", "resolve_no_action"):
        response = _act(client, action, item)
        assert response.status_code == 200
        assert 'class="error"' in response.text and item.urn in response.text
    item.refresh_from_db()
    assert (item.state, item.assigned_to) == ("CLAIMED", "urn:nexa:user:someone-else")
    assert not AuditEntry.objects.exists()


def test_claim_then_resolve_moves_the_subcases_through_the_cases_services(client, supervisor):
    item = item_with_subcases_in_review()
    _act(client, "claim", item)
    response = _act(client, "resolve_cancelled", item)
    assert "Resolved CANCELLED: 1 review item(s)" in response.text
    item.refresh_from_db()
    assert (item.state, item.resolution, item.resolved_by) == ("RESOLVED", "CANCELLED", supervisor.operator_urn)
    resolved = AuditEntry.objects.get(action="review.resolved")
    assert resolved.actor == supervisor.operator_urn and resolved.reason == "Django admin action"
    assert AuditEntry.objects.filter(action__startswith="subcase.").count() == len(item.affected_subcase_urns)
    again = _act(client, "resolve_cancelled", item)
    assert 'class="error"' in again.text


def test_escalate_raises_the_priority(client, supervisor):
    item = ReviewItemFactory(priority="LOW")
    response = _act(client, "escalate", item)
    assert "Escalated: 1 review item(s)" in response.text
    item.refresh_from_db()
    assert (item.state, item.priority) == ("ESCALATED", "MEDIUM")
    assert AuditEntry.objects.get(entity_urn=item.urn).action == "review.escalated"


def test_an_airport_operator_gets_no_review_admin_and_no_action(client):
    user, _ = staff_operator("IB", Role.AIRPORT_OPERATOR)
    client.force_login(user)
    item = ReviewItemFactory()
    assert client.get(ITEMS).status_code == 403
    client.post(ITEMS, {"action": "claim", "_selected_action": [item.pk]})
    item.refresh_from_db()
    assert item.state == "OPEN" and not AuditEntry.objects.exists()
    assert ReviewItem.objects.count() == 1
