"""Django admin users for the admin tests: a staff user linked to an operator of an airline and role,
in that role's group (``sync_role_permissions``), as seed_demo makes them."""

from io import StringIO

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management import call_command

from nexa.platform.roles import Role
from operators.models import Operator


def sync_role_permissions() -> str:
    out = StringIO()
    call_command("sync_role_permissions", stdout=out)
    return out.getvalue()


def staff_operator(
    airline: str, role: Role, *, name: str | None = None, active: bool = True, all_permissions: bool = False
):
    """A staff (never superuser) user with an operator profile; returns (user, operator)."""
    name = name or f"{airline.lower()}-{role.value.lower().replace('_', '-')}"
    user = get_user_model().objects.create_user(name, password="pw", is_staff=True, is_superuser=False)
    operator = Operator.objects.create(
        operator_urn=f"urn:nexa:user:{name}",
        airline=airline,
        role=role.value,
        display_name=name,
        user=user,
        active=active,
    )
    sync_role_permissions()
    if all_permissions:
        user.user_permissions.add(*Permission.objects.all())
    return get_user_model().objects.get(pk=user.pk), operator


def staff_without_operator(name: str = "staff-nobody"):
    """A staff user holding every model permission by hand, but no operator: the old admin's blind spot."""
    user = get_user_model().objects.create_user(name, password="pw", is_staff=True, is_superuser=False)
    user.user_permissions.add(*Permission.objects.all())
    return get_user_model().objects.get(pk=user.pk)
