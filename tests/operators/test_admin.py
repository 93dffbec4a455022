"""Django admin: locks and sessions are read-only; force-unlock and deactivate are actions that go
through the services (audited, published)."""

import pytest
from django.urls import reverse

from audit.models import AuditEntry
from nexa.platform.roles import Role
from operators import services
from operators.models import EntityLock, Operator
from tests.admin_users import staff_operator
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


# --- roles: who may change what on an operator (issue 9 §3) ----------------------------------------


def _change(client, operator, **fields):
    """POST the operator's change form with its current values overridden by ``fields``."""
    data = {
        "operator_urn": operator.operator_urn,
        "airline": operator.airline,
        "role": operator.role,
        "display_name": operator.display_name,
        "user": operator.user_id or "",
        **fields,
    }
    return client.post(reverse("admin:operators_operator_change", args=[operator.pk]), data)


def test_an_operator_cannot_edit_their_own_role_airline_or_user(client):
    me, my_operator = staff_operator("IB", Role.ADMIN, name="ib-me")
    someone, _ = staff_operator("IB", Role.AIRPORT_OPERATOR, name="ib-someone")
    client.force_login(me)

    response = _change(client, my_operator, role="AIRPORT_OPERATOR", airline="LH", user=someone.pk, display_name="Me")

    assert response.status_code == 302
    my_operator.refresh_from_db()
    assert (my_operator.role, my_operator.airline, my_operator.user_id) == ("ADMIN", "IB", me.pk)
    assert my_operator.display_name == "Me"  # the rest of the form still works
    assert not AuditEntry.objects.filter(action="operator.role_changed").exists()


def test_an_admin_of_the_airline_changes_a_role_through_the_service(client):
    boss, _ = staff_operator("IB", Role.ADMIN, name="ib-boss")
    user, operator = staff_operator("IB", Role.AIRPORT_OPERATOR, name="ib-promoted")
    client.force_login(boss)

    response = _change(client, operator, role="OPS_SUPERVISOR", airline="LH", user=boss.pk)

    assert response.status_code == 302
    operator.refresh_from_db()
    assert (operator.role, operator.airline, operator.user_id) == ("OPS_SUPERVISOR", "IB", user.pk)
    entry = AuditEntry.objects.get(action="operator.role_changed", entity_urn=operator.operator_urn)
    assert entry.actor == "urn:nexa:user:ib-boss" and entry.airline == "IB"
    assert (entry.before, entry.after) == ({"role": "AIRPORT_OPERATOR"}, {"role": "OPS_SUPERVISOR"})
    assert list(user.groups.values_list("name", flat=True)) == ["OPS_SUPERVISOR"]


def test_a_supervisor_cannot_change_anyones_role(client):
    supervisor, _ = staff_operator("IB", Role.OPS_SUPERVISOR, name="ib-sup")
    _, operator = staff_operator("IB", Role.AIRPORT_OPERATOR, name="ib-op")
    client.force_login(supervisor)

    assert client.get(reverse("admin:operators_operator_changelist")).status_code == 200  # may list them
    assert _change(client, operator, role="ADMIN").status_code == 403
    operator.refresh_from_db()
    assert operator.role == "AIRPORT_OPERATOR"


def test_an_admin_cannot_touch_another_airlines_operator(client):
    boss, _ = staff_operator("IB", Role.ADMIN, name="ib-boss")
    _, theirs = staff_operator("LH", Role.AIRPORT_OPERATOR, name="lh-op")
    client.force_login(boss)

    response = _change(client, theirs, role="ADMIN", airline="IB")

    assert response.status_code in (302, 403, 404)
    assert response.status_code != 302 or response["Location"] == reverse("admin:index")
    theirs.refresh_from_db()
    assert (theirs.role, theirs.airline) == ("AIRPORT_OPERATOR", "LH")


def test_demoting_the_airlines_last_admin_in_admin_is_refused(admin_client):
    _, last_admin = staff_operator("IB", Role.ADMIN, name="ib-last")

    response = _change(admin_client, last_admin, role="AIRPORT_OPERATOR")

    assert response.status_code == 302
    page = admin_client.get(response["Location"])
    assert "last active ADMIN" in page.text and "changed successfully" not in page.text
    last_admin.refresh_from_db()
    assert last_admin.role == "ADMIN"


def test_a_superuser_linking_a_user_to_an_operator_puts_them_in_the_roles_group(admin_client, django_user_model):
    staff_operator("IB", Role.ADMIN, name="ib-boss")  # the groups exist
    newcomer = django_user_model.objects.create_user("ib-newcomer", is_staff=True)

    response = admin_client.post(
        reverse("admin:operators_operator_add"),
        {
            "operator_urn": "urn:nexa:user:ib-newcomer",
            "airline": "IB",
            "role": "OPS_SUPERVISOR",
            "display_name": "Newcomer",
            "user": newcomer.pk,
        },
    )

    assert response.status_code == 302
    assert list(newcomer.groups.values_list("name", flat=True)) == ["OPS_SUPERVISOR"]
    operator = Operator.objects.get(operator_urn="urn:nexa:user:ib-newcomer")
    _change(admin_client, operator, user="")
    assert not newcomer.groups.exists()
