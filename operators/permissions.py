"""What each operator role may do in Django admin (ARCHITECTURE §3.2; docs/admin.md).

The admin permissions of a role match what the role may do through the API:

* AIRPORT_OPERATOR: view cases, sub-cases, groups, operators, locks, notifications and opt-ins; change
  cases and sub-cases (the admin's actions: automatic grouping, FSM transitions — the API lets them).
  Airport operators are not staff (seed_demo), so this only matters once someone makes them staff.
* OPS_SUPERVISOR: the above, plus force-unlock (change locks), operator sessions, the audit log,
  the airline's tenant settings (view), and review items (claim, escalate, resolve as actions).
* ADMIN: the above, plus deactivating operators and changing roles (change operators), changing the
  airline's tenant settings, and everything FINANCE_AUDIT may.
* FINANCE_AUDIT: view the audit log.

No role adds or deletes anything in admin (rows change through the services; see nexa/platform/admin.py).

One Django group per role, named after it, holds exactly these permissions; every user linked to an
active operator is in exactly their role's group and in no other role group
(:func:`role_permissions_sync`; ``manage.py sync_role_permissions``). The admin base class also caps a
user's permissions by their operator's current role, so a group that is briefly stale never reaches
past the role.
"""

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db import transaction

from nexa.platform.roles import Role
from operators.models import Operator

if TYPE_CHECKING:
    from nexa.platform.admin import AdminActor

_AIRPORT_OPERATOR = frozenset(
    {
        "cases.view_case",
        "cases.change_case",
        "cases.view_subcase",
        "cases.change_subcase",
        "cases.view_passengergroup",
        "operators.view_operator",
        "operators.view_entitylock",
        "notifications.view_notification",
        "notifications.view_whatsappoptin",
        "policies.view_policy",
        "policies.view_policyversion",
        "booking.view_reservation",  # GET /v1/booking/reservations/{urn} is AIRPORT_OPERATOR+ (read-only in admin)
    }
)
_OPS_SUPERVISOR = _AIRPORT_OPERATOR | {
    "operators.change_entitylock",
    "operators.view_operatorsession",
    "audit.view_auditentry",
    "platform.view_tenantsettings",
    "booking.view_contract",  # GET /v1/contracts is OPS_SUPERVISOR+ (read-only in admin)
    # The review routes are OPS_SUPERVISOR+: browse items, claim / escalate / resolve as admin actions.
    "review.view_reviewitem",
    "review.change_reviewitem",
    "review.view_reviewpage",
    "review.view_policyrelaxation",
}
_FINANCE_AUDIT = frozenset({"audit.view_auditentry"})
_ADMIN = (
    _OPS_SUPERVISOR
    | _FINANCE_AUDIT
    | {
        "operators.change_operator",
        "platform.change_tenantsettings",
        "policies.change_policy",  # activate / deactivate actions (ADMIN, spec 000)
    }
)

ROLE_ADMIN_PERMISSIONS: dict[Role, frozenset[str]] = {
    Role.AIRPORT_OPERATOR: _AIRPORT_OPERATOR,
    Role.OPS_SUPERVISOR: frozenset(_OPS_SUPERVISOR),
    Role.ADMIN: frozenset(_ADMIN),
    Role.FINANCE_AUDIT: _FINANCE_AUDIT,
}

ROLE_GROUPS: dict[Role, str] = {role: role.value for role in Role}


def admin_actor_for_user(user_id: int) -> "AdminActor | None":
    """The user's active operator as Django admin sees it (registered with nexa.platform.admin)."""
    # Imported here: nexa.platform.admin registers admins, which must wait for admin's autodiscovery.
    from nexa.platform.admin import AdminActor  # noqa: PLC0415 - nexa.platform.admin registers admins at import, which needs the app registry ready; this module is imported while models load

    row = Operator.objects.filter(user_id=user_id, active=True).values_list("airline", "role", "operator_urn").first()
    if row is None:
        return None
    airline, role, operator_urn = row
    try:
        role = Role(role)
    except ValueError:
        return None
    return AdminActor(airline=airline, role=role, operator_urn=operator_urn, permissions=ROLE_ADMIN_PERMISSIONS[role])


@dataclass
class SyncReport:
    changes: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.changes)


class MissingPermissions(Exception):
    pass


def _permissions(names: frozenset[str]) -> list[Permission]:
    wanted = {tuple(name.split(".", 1)) for name in names}
    found = {
        (p.content_type.app_label, p.codename): p
        for p in Permission.objects.select_related("content_type").filter(codename__in={c for _, c in wanted})
        if (p.content_type.app_label, p.codename) in wanted
    }
    missing = sorted(f"{app}.{codename}" for app, codename in wanted - set(found))
    if missing:
        raise MissingPermissions(f"permissions not found (run migrate first): {', '.join(missing)}")
    return [found[key] for key in sorted(found)]


def role_groups_sync(*, dry_run: bool = False) -> SyncReport:
    """Make one group per role hold exactly that role's admin permissions."""
    report = SyncReport()
    for role, name in ROLE_GROUPS.items():
        wanted = _permissions(ROLE_ADMIN_PERMISSIONS[role])
        group = Group.objects.filter(name=name).first()
        if group is None:
            report.changes.append(f"create group {name} with {len(wanted)} permissions")
            if not dry_run:
                Group.objects.create(name=name).permissions.set(wanted)
            continue
        current = set(group.permissions.all())
        for permission in sorted(set(wanted) - current, key=str):
            report.changes.append(f"group {name}: grant {_label(permission)}")
        for permission in sorted(current - set(wanted), key=str):
            report.changes.append(f"group {name}: revoke {_label(permission)}")
        if not dry_run and current != set(wanted):
            group.permissions.set(wanted)
    return report


def user_role_groups_sync(*, dry_run: bool = False, user_ids: list[int] | None = None) -> SyncReport:
    """Put every user (or those of ``user_ids``) in exactly the group of their active operator's role;
    a user without an active operator is in no role group. Other groups are left alone."""
    report = SyncReport()
    groups = {group.name: group for group in Group.objects.filter(name__in=ROLE_GROUPS.values())}
    wanted_by_user: dict[int, str] = {}
    for user_id, role in Operator.objects.filter(active=True, user__isnull=False).values_list("user_id", "role"):
        if role in ROLE_GROUPS.values():
            wanted_by_user[user_id] = role
    users = get_user_model().objects.order_by("pk")
    if user_ids is not None:
        users = users.filter(pk__in=user_ids)
    else:
        # Users in a role group or with an operator: nobody else can be out of line.
        users = users.filter(pk__in=set(wanted_by_user)) | users.filter(groups__name__in=ROLE_GROUPS.values())
    members = {
        (user_id, name)
        for user_id, name in Group.user_set.through.objects.filter(group__name__in=ROLE_GROUPS.values()).values_list(
            "user_id", "group__name"
        )
    }
    for user in users.distinct():
        wanted = wanted_by_user.get(user.pk)
        current = {name for user_id, name in members if user_id == user.pk}
        for name in sorted(current - {wanted}):
            report.changes.append(f"user {user.get_username()}: leave group {name}")
            if not dry_run:
                user.groups.remove(groups[name])
        if wanted is not None and wanted not in current:
            report.changes.append(f"user {user.get_username()}: join group {wanted}")
            if not dry_run:
                if wanted not in groups:
                    raise MissingPermissions(f"group {wanted} does not exist (run sync_role_permissions)")
                user.groups.add(groups[wanted])
    return report


def role_permissions_sync(*, dry_run: bool = False) -> SyncReport:
    """Both of the above, in one transaction (``manage.py sync_role_permissions``). Idempotent."""
    with transaction.atomic():
        report = role_groups_sync(dry_run=dry_run)
        users = user_role_groups_sync(dry_run=dry_run)
        report.changes.extend(users.changes)
        return report


def _label(permission: Permission) -> str:
    return f"{permission.content_type.app_label}.{permission.codename}"
