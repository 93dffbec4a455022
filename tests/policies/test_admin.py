"""Django admin: policies listed per airline with filters and search; activation as an action through the service."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.urls import reverse

from audit.models import AuditEntry
from nexa.platform.models import OutboxEvent
from operators.models import Operator
from policies.models import Policy
from tests.policies.factories import PolicyFactory, active_policy

pytestmark = pytest.mark.django_db

POLICIES = reverse("admin:policies_policy_changelist")


def test_activate_action_goes_through_the_service(admin_client):
    old = active_policy(scope_airport="MAD")
    new = PolicyFactory(scope_airport="MAD")
    response = admin_client.post(POLICIES, {"action": "activate", "_selected_action": [new.pk]}, follow=True)
    assert "Activated: 1 policy(ies)." in response.text
    assert Policy.objects.get(pk=new.pk).status == "ACTIVE" and Policy.objects.get(pk=old.pk).status == "ARCHIVED"
    assert AuditEntry.objects.get(action="policy.activated").reason == "Django admin action"
    assert OutboxEvent.objects.filter(event="policy:activated").count() == 1


def test_search_and_filters(admin_client):
    PolicyFactory(name="Madrid winter", scope_airport="MAD")
    PolicyFactory(name="Frankfurt", scope_airport="FRA", airline="LH")
    assert "Madrid winter" in admin_client.get(POLICIES + "?q=winter").text
    listing = admin_client.get(POLICIES + "?scope_airport=FRA").text
    assert "Frankfurt" in listing and "Madrid winter" not in listing


def _staff(client, role):
    user = get_user_model().objects.create_user(f"ib-{role}", password="pw", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="policies"))
    Operator.objects.create(
        operator_urn=f"urn:nexa:user:ib-{role}", airline="IB", role=role, display_name=role, user=user
    )
    client.force_login(user)


def test_a_supervisor_sees_their_airline_only_and_cannot_activate(client):
    _staff(client, "OPS_SUPERVISOR")
    mine = PolicyFactory(name="Iberia policy")
    PolicyFactory(name="Lufthansa policy", airline="LH")
    listing = client.get(POLICIES).text
    assert "Iberia policy" in listing and "Lufthansa policy" not in listing
    assert 'value="activate"' not in listing  # no change permission: no actions
    client.post(POLICIES, {"action": "activate", "_selected_action": [mine.pk]}, follow=True)
    assert Policy.objects.get(pk=mine.pk).status == "DRAFT" and not AuditEntry.objects.exists()


def test_an_airline_admin_activates_as_their_operator(client):
    _staff(client, "ADMIN")
    mine = PolicyFactory(name="Iberia policy")
    theirs = PolicyFactory(name="Lufthansa policy", airline="LH")
    client.post(POLICIES, {"action": "activate", "_selected_action": [mine.pk, theirs.pk]}, follow=True)
    assert Policy.objects.get(pk=mine.pk).status == "ACTIVE"
    assert Policy.objects.get(pk=theirs.pk).status == "DRAFT"
    assert AuditEntry.objects.get(action="policy.activated").actor == "urn:nexa:user:ib-ADMIN"
