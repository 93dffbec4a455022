"""Django admin: locks and sessions are read-only; force-unlock and deactivate are actions that go
through the services (audited, published)."""

import pytest
from django.urls import reverse

from audit.models import AuditEntry
from operators import services
from operators.models import EntityLock, Operator
from tests.cases.factories import SubCaseFactory
from tests.operators.helpers import lock_events
from tests.operators.test_sessions import principal

pytestmark = pytest.mark.django_db

ALICE = "urn:nexa:user:ib-alice"


def test_lock_and_session_lists_render(admin_client):
    sub_case = SubCaseFactory()
    services.operator_session_open(principal=principal(ALICE), session_id="sid-a", server_instance="web-1:1")
    services.subcase_lock(principal=principal(ALICE), sub_case_urn=sub_case.urn)

    locks = admin_client.get(reverse("admin:operators_entitylock_changelist"))
    sessions = admin_client.get(reverse("admin:operators_operatorsession_changelist"))

    assert locks.status_code == 200 and sub_case.urn in locks.text
    assert sessions.status_code == 200 and "web-1:1" in sessions.text


def test_force_unlock_action_goes_through_the_service(admin_client, admin_user):
    sub_case = SubCaseFactory()
    services.subcase_lock(principal=principal(ALICE), sub_case_urn=sub_case.urn)
    row = EntityLock.objects.get(entity_urn=sub_case.urn)

    response = admin_client.post(
        reverse("admin:operators_entitylock_changelist"),
        {"action": "force_unlock", "_selected_action": [row.pk]},
        follow=True,
    )

    assert response.status_code == 200 and "Locks released: 1." in response.text
    entry = AuditEntry.objects.get(entity_urn=sub_case.urn, action="subcase.lock_force_released")
    assert entry.actor == f"urn:nexa:system:django-admin:{admin_user.pk}" and "Django admin" in entry.reason
    assert lock_events(sub_case.urn)[-1]["lockedBy"] is None


def test_deactivate_action_goes_through_the_service(admin_client):
    operator = Operator.objects.create(operator_urn=ALICE, airline="IB", role="AIRPORT_OPERATOR", display_name="A")

    response = admin_client.post(
        reverse("admin:operators_operator_changelist"),
        {"action": "deactivate", "_selected_action": [operator.pk]},
        follow=True,
    )

    assert response.status_code == 200 and "Operators deactivated: 1." in response.text
    operator.refresh_from_db()
    assert operator.active is False
    assert AuditEntry.objects.filter(action="operator.deactivated", entity_urn=ALICE).count() == 1


def test_locks_cannot_be_edited_or_added_in_admin(admin_client):
    assert admin_client.get(reverse("admin:operators_entitylock_add")).status_code == 403
