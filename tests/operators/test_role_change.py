"""``operators.services.operator_role_change``: only an ADMIN of the airline changes a role, never their
own, never the airline's last active ADMIN's; audited; the user's admin group follows."""

import pytest

from audit.models import AuditEntry
from nexa.platform.problems import Problem
from nexa.platform.roles import Role
from operators import services
from operators.models import Operator
from tests.admin_users import staff_operator
from tests.operators.test_sessions import principal

pytestmark = pytest.mark.django_db

BOSS = "urn:nexa:user:ib-boss"


def change(operator_urn: str, role, *, by: str = BOSS, by_role: Role = Role.ADMIN, airline: str = "IB"):
    return services.operator_role_change(
        principal=principal(by, by_role, airline), operator_urn=operator_urn, role=role, reason="reorganisation"
    )


def refused(status: int, call) -> Problem:
    with pytest.raises(Problem) as caught:
        call()
    assert caught.value.status_code == status, caught.value.detail_text
    return caught.value


def test_an_admin_changes_a_role_audited_and_the_group_follows():
    staff_operator("IB", Role.ADMIN, name="ib-boss")
    user, operator = staff_operator("IB", Role.OPS_SUPERVISOR, name="ib-sup")

    changed = change(operator.operator_urn, "ADMIN")

    assert changed.role == "ADMIN" and Operator.objects.get(pk=operator.pk).role == "ADMIN"
    entry = AuditEntry.objects.get(action="operator.role_changed")
    assert (entry.actor, entry.entity_urn, entry.reason) == (BOSS, operator.operator_urn, "reorganisation")
    assert (entry.before, entry.after) == ({"role": "OPS_SUPERVISOR"}, {"role": "ADMIN"})
    assert list(user.groups.values_list("name", flat=True)) == ["ADMIN"]

    change(operator.operator_urn, Role.ADMIN)  # already ADMIN: nothing to do
    assert AuditEntry.objects.filter(action="operator.role_changed").count() == 1


def test_who_may_not_change_roles():
    staff_operator("IB", Role.ADMIN, name="ib-boss")
    _, operator = staff_operator("IB", Role.AIRPORT_OPERATOR, name="ib-op")
    _, theirs = staff_operator("LH", Role.AIRPORT_OPERATOR, name="lh-op")

    refused(403, lambda: change(operator.operator_urn, "ADMIN", by="urn:nexa:user:ib-sup", by_role=Role.OPS_SUPERVISOR))
    refused(403, lambda: change(BOSS, "AIRPORT_OPERATOR"))  # their own role
    refused(404, lambda: change(theirs.operator_urn, "ADMIN"))  # another airline's operator
    refused(404, lambda: change("urn:nexa:user:nobody", "ADMIN"))
    refused(400, lambda: change(operator.operator_urn, "SUPERUSER"))
    refused(
        400,
        lambda: services.operator_role_change(
            principal=principal(BOSS, Role.ADMIN), operator_urn=operator.operator_urn, role="ADMIN", reason=" "
        ),
    )

    assert Operator.objects.get(pk=operator.pk).role == "AIRPORT_OPERATOR"
    assert Operator.objects.get(pk=theirs.pk).role == "AIRPORT_OPERATOR"
    assert not AuditEntry.objects.filter(action="operator.role_changed").exists()


def test_the_airlines_last_active_admin_is_not_demoted():
    _, boss = staff_operator("IB", Role.ADMIN, name="ib-boss")
    _, other = staff_operator("IB", Role.ADMIN, name="ib-other", active=False)

    problem = refused(409, lambda: change(boss.operator_urn, "AIRPORT_OPERATOR", by="urn:nexa:system:root"))
    assert "last active ADMIN" in problem.detail_text
    assert Operator.objects.get(pk=boss.pk).role == "ADMIN"

    Operator.objects.filter(pk=other.pk).update(active=True)
    change(boss.operator_urn, "AIRPORT_OPERATOR", by="urn:nexa:system:root")
    assert Operator.objects.get(pk=boss.pk).role == "AIRPORT_OPERATOR"
