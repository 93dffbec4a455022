"""``manage.py sync_role_permissions``: one group per role with the admin permissions the role has
through the API; every operator's user in exactly their role's group; re-runs change nothing."""

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.urls import reverse

from cases.models import SubCase
from nexa.platform.roles import Role
from operators.models import Operator
from tests.admin_users import staff_operator, staff_without_operator
from tests.cases.factories import CaseFactory, SubCaseFactory

pytestmark = pytest.mark.django_db


def sync(*args) -> str:
    out = StringIO()
    call_command("sync_role_permissions", *args, stdout=out)
    return out.getvalue()


def perms(group: str) -> set[str]:
    return {
        f"{app}.{codename}"
        for app, codename in Group.objects.get(name=group).permissions.values_list(
            "content_type__app_label", "codename"
        )
    }


def memberships() -> list[tuple[str, str]]:
    return sorted(get_user_model().groups.through.objects.values_list("user__username", "group__name"))


def test_groups_per_role_hold_what_the_role_may_do_through_the_api():
    sync()
    supervisor = perms("OPS_SUPERVISOR")
    assert {
        "cases.view_case",
        "cases.view_subcase",
        "cases.change_subcase",  # the FSM actions
        "operators.view_operator",
        "operators.change_entitylock",  # force-unlock
        "audit.view_auditentry",
        "notifications.view_notification",
    } <= supervisor
    assert "operators.change_operator" not in supervisor  # deactivating and roles are ADMIN's
    assert perms("ADMIN") >= supervisor | {"operators.change_operator", "platform.change_tenantsettings"}
    assert perms("FINANCE_AUDIT") == {"audit.view_auditentry"}
    assert "audit.view_auditentry" not in perms("AIRPORT_OPERATOR")
    for group in Role:
        assert not {p for p in perms(group.value) if p.split(".")[1].startswith(("add_", "delete_"))}
        assert not {p for p in perms(group.value) if p.startswith("auth.")}


def test_a_dry_run_changes_nothing_and_a_rerun_is_a_no_op():
    user = get_user_model().objects.create_user("ib-sup", is_staff=True)
    Operator.objects.create(
        operator_urn="urn:nexa:user:ib-sup", airline="IB", role="OPS_SUPERVISOR", display_name="S", user=user
    )

    dry = sync("--dry-run")
    assert "would create group OPS_SUPERVISOR" in dry and "would user ib-sup: join group OPS_SUPERVISOR" in dry
    assert not Group.objects.exists()

    first = sync()
    assert "user ib-sup: join group OPS_SUPERVISOR" in first
    state = (memberships(), {role.value: perms(role.value) for role in Role})
    assert sync().strip() == "Role permissions: already in line, nothing to change."
    assert (memberships(), {role.value: perms(role.value) for role in Role}) == state


def test_a_stale_group_and_stale_memberships_are_put_back_in_line():
    user, _ = staff_operator("IB", Role.OPS_SUPERVISOR, name="ib-sup")  # syncs once
    _, gone = staff_operator("IB", Role.ADMIN, name="ib-gone")
    stale = Group.objects.get(name="OPS_SUPERVISOR")
    stale.permissions.add(Permission.objects.get(codename="delete_case"))
    stale.permissions.remove(Permission.objects.get(codename="view_auditentry"))
    user.groups.add(Group.objects.get(name="ADMIN"))  # granted by hand
    loner = staff_without_operator("no-operator")
    loner.groups.add(Group.objects.get(name="ADMIN"))
    Operator.objects.filter(pk=gone.pk).update(active=False)  # deactivated: no role group
    user.groups.add(Group.objects.create(name="night-shift"))  # not a role group: left alone

    output = sync()

    assert "revoke cases.delete_case" in output and "grant audit.view_auditentry" in output
    assert "delete_case" not in {p.split(".")[1] for p in perms("OPS_SUPERVISOR")}
    assert memberships() == sorted([("ib-sup", "OPS_SUPERVISOR"), ("ib-sup", "night-shift")])
    assert "nothing to change" in sync()


def test_a_supervisor_lists_filters_and_acts_on_their_airlines_cases_only(client):
    supervisor, _ = staff_operator("IB", Role.OPS_SUPERVISOR, name="ib-sup")
    mine = SubCaseFactory(case=CaseFactory(airport="BCN"), last_name="Iberia")
    theirs = SubCaseFactory(case=CaseFactory(airline="LH", airport="FRA"), airline="LH", last_name="Lufthansa")
    client.force_login(supervisor)

    index = client.get(reverse("admin:index"))
    for model in ("cases_case", "cases_subcase", "operators_operator", "audit_auditentry", "operators_entitylock"):
        assert reverse(f"admin:{model}_changelist") in index.text, model
    assert reverse("admin:auth_user_changelist") not in index.text

    cases = client.get(reverse("admin:cases_case_changelist"))
    assert cases.status_code == 200
    assert [c.airline for c in cases.context["cl"].result_list] == ["IB"]
    listing = client.get(reverse("admin:cases_subcase_changelist"), {"case__airport": "BCN"})
    assert "Iberia" in listing.text and "Lufthansa" not in listing.text
    assert "FRA" not in listing.text  # not even among the filter's choices
    assert "transition_cancel" in listing.text
    case_page = client.get(reverse("admin:cases_case_change", args=[mine.case.pk]))
    assert case_page.status_code == 200 and "Iberia" in case_page.text  # its passengers, inline
    assert 'name="_save"' not in case_page.text

    client.post(
        reverse("admin:cases_subcase_changelist"),
        {"action": "transition_cancel", "_selected_action": [mine.pk, theirs.pk]},
    )
    assert SubCase.objects.get(pk=mine.pk).status == "CANCELLED"
    assert SubCase.objects.get(pk=theirs.pk).status == "PENDING"
