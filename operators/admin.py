"""Django admin for supervisors: operators, their live sessions and entity locks.

Every admin here is a :class:`nexa.platform.admin.NexaModelAdmin`: rows of the signed-in operator's
airline only, within what their role may do (docs/admin.md). Locks and sessions are read-only (they
change through the services only, so every change is audited and published); the actions call the same
services as the API, as :func:`nexa.platform.admin.admin_principal`.

Operators: nobody but a superuser edits an operator's ``operator_urn``, ``airline`` or ``user``; only an
ADMIN of the airline changes a role, never their own, and the change goes through
:func:`operators.services.operator_role_change` (audited; the user's admin group follows).
"""

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpResponseRedirect

from nexa.platform.admin import NexaModelAdmin, admin_action_report, admin_actor, admin_principal
from nexa.platform.problems import Problem
from nexa.platform.roles import Role
from operators import services
from operators.models import EntityLock, Operator, OperatorSession
from operators.permissions import user_role_groups_sync


def _report(modeladmin, request, done: int, what: str, failed: list[str]) -> None:
    admin_action_report(modeladmin, request, done=done, success=f"{what}: {done}.", failed=failed)


@admin.register(Operator)
class OperatorAdmin(NexaModelAdmin):
    list_display = ["operator_urn", "display_name", "airline", "role", "active", "last_seen_at", "created_at"]
    list_filter = ["airline", "role", "active"]
    search_fields = ["operator_urn", "display_name", "user__username"]
    raw_id_fields = ["user"]
    actions = ["deactivate"]
    superuser_add = True

    def get_readonly_fields(self, request, obj=None):
        readonly = ["created_at", "last_seen_at", "active"]
        if request.user.is_superuser:
            return readonly
        readonly += ["operator_urn", "airline", "user"]
        if not self._may_change_role(request, obj):
            readonly.append("role")
        return readonly

    @staticmethod
    def _may_change_role(request, obj) -> bool:
        actor = admin_actor(request)
        return (
            obj is not None
            and actor is not None
            and actor.role is Role.ADMIN
            and actor.airline == obj.airline
            and actor.operator_urn != obj.operator_urn
        )

    def save_model(self, request, obj, form, change):
        role_changed = change and "role" in form.changed_data
        new_role = obj.role
        with transaction.atomic():
            if role_changed:
                obj.role = form.initial["role"]  # the role changes through the service only
            super().save_model(request, obj, form, change)
            if role_changed:
                try:
                    services.operator_role_change(
                        principal=admin_principal(request, airline=obj.airline),
                        operator_urn=obj.operator_urn,
                        role=new_role,
                        reason=f"Role changed in Django admin by {request.user.get_username()}",
                    )
                except Problem as problem:
                    request._nexa_role_change_refused = True
                    self.message_user(request, f"Role not changed: {problem.detail_text}", messages.ERROR)
                else:
                    obj.role = new_role
            if not change or "user" in form.changed_data:
                # A superuser linked a user to the operator: that user (and the one unlinked) joins the
                # right role group now, not at the next sync_role_permissions.
                previous = form.initial.get("user") if change else None
                user_role_groups_sync(user_ids=[pk for pk in (previous, obj.user_id) if pk is not None])

    def response_change(self, request, obj):
        if getattr(request, "_nexa_role_change_refused", False):
            return HttpResponseRedirect(request.path)  # back to the form, without "changed successfully"
        return super().response_change(request, obj)

    @admin.action(description="Deactivate (close sockets, release locks)", permissions=["change"])
    def deactivate(self, request, queryset: QuerySet[Operator]):
        done, failed = 0, []
        for operator in queryset:
            try:
                services.operator_deactivate(
                    principal=admin_principal(request, airline=operator.airline),
                    operator_urn=operator.operator_urn,
                    reason=f"Deactivated in Django admin by {request.user.get_username()}",
                )
                done += 1
            except Problem as problem:
                failed.append(f"{operator.operator_urn}: {problem.detail_text}")
        _report(self, request, done, "operators deactivated", failed)


@admin.register(EntityLock)
class EntityLockAdmin(NexaModelAdmin):
    list_display = ["entity_urn", "holder", "fencing_token", "expires_at", "granted_at", "airline"]
    list_filter = ["airline"]
    search_fields = ["entity_urn", "case_urn", "holder"]
    ordering = ["-granted_at"]
    actions = ["force_unlock"]
    read_only = True

    @admin.action(description="Force-unlock", permissions=["change"])
    def force_unlock(self, request, queryset: QuerySet[EntityLock]):
        done, failed = 0, []
        for lock in queryset.exclude(holder=None):
            try:
                services.subcase_force_unlock(
                    principal=admin_principal(request, airline=lock.airline),
                    sub_case_urn=lock.entity_urn,
                    reason=f"Force-unlocked in Django admin by {request.user.get_username()}",
                )
                done += 1
            except Problem as problem:
                failed.append(f"{lock.entity_urn}: {problem.detail_text}")
        _report(self, request, done, "locks released", failed)


@admin.register(OperatorSession)
class OperatorSessionAdmin(NexaModelAdmin):
    list_display = ["session_id", "operator_urn", "airline", "role", "server_instance", "connected_at", "last_seen_at"]
    list_filter = ["airline", "server_instance"]
    search_fields = ["operator_urn", "session_id"]
    ordering = ["-last_seen_at"]
    read_only = True
