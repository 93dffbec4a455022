"""Django admin for supervisors: operators, their live sessions and entity locks.

Locks and sessions are read-only here (they change through the services only, so every change is
audited and published); the actions call the same services as the API, acting as the operator linked
to the admin user (a superuser without one acts as a system principal of the object's airline).
"""

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from nexa.platform.auth import Principal
from nexa.platform.problems import Problem
from nexa.platform.roles import Role
from operators import services
from operators.models import EntityLock, Operator, OperatorSession


def _linked_operator(request: HttpRequest) -> Operator | None:
    user = request.user
    if not getattr(user, "is_authenticated", False):
        return None
    return Operator.objects.filter(user_id=user.pk, active=True).first()


def admin_principal(request: HttpRequest, *, airline: str) -> Principal:
    """Who an admin action runs as, for an object of ``airline``."""
    operator = _linked_operator(request)
    username = request.user.get_username()
    if operator is not None:
        try:
            role = Role(operator.role)
        except ValueError:
            role = Role.AIRPORT_OPERATOR
        return Principal(
            airline=operator.airline,
            role=role,
            operator_urn=operator.operator_urn,
            subject=f"django-admin:{username}",
        )
    return Principal(
        airline=airline,
        role=Role.ADMIN,
        operator_urn=f"urn:nexa:system:django-admin:{request.user.pk}",
        subject=f"django-admin:{username}",
    )


class _TenantScoped:
    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        operator = _linked_operator(request)
        if operator is not None and not request.user.is_superuser:
            queryset = queryset.filter(airline=operator.airline)
        return queryset


class _ReadOnly(_TenantScoped):
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        # Actions need change permission on the changelist; the forms themselves stay read-only.
        return obj is None and super().has_change_permission(request)


def _report(modeladmin, request, done: int, what: str, failed: list[str]) -> None:
    if done:
        modeladmin.message_user(request, f"{what}: {done}.", messages.SUCCESS)
    for message in failed[:20]:
        modeladmin.message_user(request, message, messages.ERROR)


@admin.register(Operator)
class OperatorAdmin(_TenantScoped, admin.ModelAdmin):
    list_display = ["operator_urn", "display_name", "airline", "role", "active", "last_seen_at", "created_at"]
    list_filter = ["airline", "role", "active"]
    search_fields = ["operator_urn", "display_name", "user__username"]
    raw_id_fields = ["user"]
    readonly_fields = ["created_at", "last_seen_at", "active"]
    actions = ["deactivate"]

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
class EntityLockAdmin(_ReadOnly, admin.ModelAdmin):
    list_display = ["entity_urn", "holder", "fencing_token", "expires_at", "granted_at", "airline"]
    list_filter = ["airline"]
    search_fields = ["entity_urn", "case_urn", "holder"]
    ordering = ["-granted_at"]
    actions = ["force_unlock"]

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

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
class OperatorSessionAdmin(_ReadOnly, admin.ModelAdmin):
    list_display = ["session_id", "operator_urn", "airline", "role", "server_instance", "connected_at", "last_seen_at"]
    list_filter = ["airline", "server_instance"]
    search_fields = ["operator_urn", "session_id"]
    ordering = ["-last_seen_at"]

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]
