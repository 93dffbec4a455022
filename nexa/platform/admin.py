"""Django admin's tenant wall: one base class every registered admin uses (ARCHITECTURE §3.3).

Who the signed-in user is
-------------------------
Django admin has no token, so the platform asks a registered resolver (the ``operators`` app registers
one in its ``AppConfig.ready``; ``nexa.platform`` imports no domain app) for the user's **active**
operator: their airline, role and operator URN, and the model permissions that role may hold in admin.

* A **staff user with an active operator** sees and acts on rows of that operator's airline only, and
  only as far as both their Django permissions (the role's group, kept in line by
  ``manage.py sync_role_permissions``) **and** the operator's current role allow: a stale group or a
  permission granted by hand never reaches past the role. Actions run as that operator's principal.
* A **staff user without an active operator** (none linked, or deactivated) sees nothing and can do
  nothing: every changelist is empty and every view answers 403.
* A **superuser** (created only by ``createsuperuser``) is the platform's own operator: every airline,
  every permission, and actions run as the system principal
  ``urn:nexa:system:django-admin:<user id>`` with role ADMIN in the object's airline (the services
  still check the tenant against it). A linked operator does not change that.

Nobody deletes rows here (deactivate, cancel, … go through the services and the audit log); adding
rows is for superusers only, and only where an admin opts in (``superuser_add``).
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.filters import AllValuesFieldListFilter
from django.contrib.admin.utils import get_fields_from_path
from django.contrib.auth import get_permission_codename, get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import HttpRequest

from nexa.platform.auth import Principal
from nexa.platform.models import TenantSettings
from nexa.platform.problems import Problem
from nexa.platform.roles import Role, role_satisfies


@dataclass(frozen=True, slots=True)
class AdminActor:
    """The active operator behind an admin user, and what their role may do in admin."""

    airline: str
    role: Role
    operator_urn: str
    permissions: frozenset[str]  # "app_label.codename"

    def may(self, perm: str) -> bool:
        return perm in self.permissions


# Given a user id, the user's active operator (None: no operator, or deactivated).
AdminActorResolver = Callable[[int], AdminActor | None]

_resolver: AdminActorResolver | None = None


def admin_actor_resolver_register(resolver: AdminActorResolver) -> AdminActorResolver:
    """Register the resolver (the operators app does, in ``ready()``); a later one replaces it."""
    global _resolver  # one process-wide hook, like the sub-case write guards
    _resolver = resolver
    return resolver


_NO_ACTOR = object()


def admin_actor(request: HttpRequest) -> AdminActor | None:
    """The request user's active operator, resolved once per request. None without a resolver."""
    cached = getattr(request, "_nexa_admin_actor", _NO_ACTOR)
    if cached is not _NO_ACTOR:
        return cached
    user = getattr(request, "user", None)
    actor = None
    if _resolver is not None and user is not None and getattr(user, "is_authenticated", False):
        actor = _resolver(user.pk)
    request._nexa_admin_actor = actor
    return actor


def _is_superuser(request: HttpRequest) -> bool:
    user = request.user
    return bool(user.is_active and user.is_staff and user.is_superuser)


def admin_principal(request: HttpRequest, *, airline: str) -> Principal:
    """Who an admin action runs as, for an object of ``airline`` (see the module docstring)."""
    username = request.user.get_username()
    if _is_superuser(request):
        return Principal(
            airline=airline,
            role=Role.ADMIN,
            operator_urn=f"urn:nexa:system:django-admin:{request.user.pk}",
            subject=f"django-admin:{username}",
        )
    actor = admin_actor(request)
    if actor is None or actor.airline != airline:
        # The querysets never show such an object; refuse rather than act across the wall.
        raise PermissionDenied("No active operator of this airline.")
    return Principal(
        airline=actor.airline,
        role=actor.role,
        operator_urn=actor.operator_urn,
        subject=f"django-admin:{username}",
    )


def admin_action_report(modeladmin, request: HttpRequest, *, done: int, success: str, failed: list[str]) -> None:
    """What an action that called a service per row tells the user: ``success`` when ``done`` rows moved, then
    one error message per refused row (the problem's detail; at most 20, a bulk refusal must stay readable)."""
    if done:
        modeladmin.message_user(request, success, messages.SUCCESS)
    for message in failed[:20]:
        modeladmin.message_user(request, message, messages.ERROR)


def admin_action_each(
    modeladmin,
    request: HttpRequest,
    rows: Iterable[Any],
    *,
    call: Callable[[Principal, Any], object],
    min_role: Role | None = None,
    label: str,
    success: Callable[[int], str],
) -> int:
    """Run ``call(principal, row)`` (a service) for each row as :func:`admin_principal`, and report.

    ``min_role``: the role the API asks for that action; a lower one is refused per row with a message (a
    group granted by hand or a superuser's linked operator never gets past it). A :class:`Problem` from the
    service is that row's error message, never a 500. Returns how many rows the service accepted."""
    done, failed = 0, []
    for row in rows:
        principal = admin_principal(request, airline=row.airline)
        if min_role is not None and not role_satisfies(principal.role, min_role):
            failed.append(f"{row.urn}: {label} needs the {min_role} role or higher; yours is {principal.role}.")
            continue
        try:
            call(principal, row)
            done += 1
        except Problem as problem:
            failed.append(f"{row.urn}: {problem.detail_text}")
    admin_action_report(modeladmin, request, done=done, success=success(done), failed=failed)
    return done


class _TenantAllValuesFieldListFilter(AllValuesFieldListFilter):
    """Django's all-values filter on a related path (``case__airport``) offers the values of every row of
    the related table, whatever the admin's queryset: this one offers those of the scoped rows only."""

    def __init__(self, field, request, params, model, model_admin, field_path):
        super().__init__(field, request, params, model, model_admin, field_path)
        self.lookup_choices = (
            model_admin.get_queryset(request).order_by(field_path).values_list(field_path, flat=True).distinct()
        )


class TenantScopedAdminMixin:
    """The wall; mix into a ``ModelAdmin`` (or use :class:`NexaModelAdmin`).

    ``tenant_field``: the lookup path to the row's airline; ``None`` for models without a tenant
    (superusers only). ``read_only``: records change only through actions (the services), never through
    the form. ``superuser_add`` / ``superuser_delete``: superusers may add / delete rows here.
    """

    tenant_field: str | None = "airline"
    read_only: bool = False
    superuser_add: bool = False
    superuser_delete: bool = False

    # --- what the user sees ------------------------------------------------------------------------

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if _is_superuser(request):
            return queryset
        actor = admin_actor(request)
        if actor is None or self.tenant_field is None or not request.user.is_staff:
            return queryset.none()
        return queryset.filter(**{self.tenant_field: actor.airline})

    def get_list_filter(self, request):
        filters = list(super().get_list_filter(request))
        if _is_superuser(request):
            return filters
        scoped = []
        for item in filters:
            if item == self.tenant_field:
                continue  # one airline: nothing to filter
            if isinstance(item, str) and "__" in item and _is_all_values_field(self.model, item):
                item = (item, _TenantAllValuesFieldListFilter)
            scoped.append(item)
        return scoped

    def get_readonly_fields(self, request, obj=None):
        if self.read_only:
            return [field.name for field in self.model._meta.fields]
        return super().get_readonly_fields(request, obj)

    # --- what the user may do ----------------------------------------------------------------------

    def _allowed(self, request, action: str, obj=None) -> bool:
        if _is_superuser(request):
            return True
        user = request.user
        if not (user.is_active and user.is_staff) or self.tenant_field is None:
            return False
        actor = admin_actor(request)
        if actor is None:
            return False
        perm = f"{self.opts.app_label}.{get_permission_codename(action, self.opts)}"
        if not actor.may(perm) or not user.has_perm(perm):
            return False
        return obj is None or _airline_of(obj, self.tenant_field) == actor.airline

    def has_module_permission(self, request) -> bool:
        if _is_superuser(request):
            return True
        actor = admin_actor(request)
        if actor is None or self.tenant_field is None:
            return False
        return any(self._allowed(request, action) for action in ("view", "change"))

    def has_view_permission(self, request, obj=None) -> bool:
        return self._allowed(request, "view", obj) or self._allowed(request, "change", obj)

    def has_change_permission(self, request, obj=None) -> bool:
        if self.read_only and obj is not None:
            # Actions need change permission on the changelist; the forms stay read-only.
            return False
        return self._allowed(request, "change", obj)

    def has_add_permission(self, request, *args) -> bool:
        return self.superuser_add and not self.read_only and _is_superuser(request)

    def has_delete_permission(self, request, obj=None) -> bool:
        return self.superuser_delete and _is_superuser(request)


class NexaModelAdmin(TenantScopedAdminMixin, admin.ModelAdmin):
    """The base of every Nexa admin."""


def _airline_of(obj: models.Model, path: str) -> str | None:
    value = obj
    for part in path.split("__"):
        value = getattr(value, part, None)
        if value is None:
            return None
    return value


def _is_all_values_field(model, path: str) -> bool:
    field = get_fields_from_path(model, path)[-1]
    return not (field.is_relation or field.choices or isinstance(field, models.DateField | models.BooleanField))


# --- models the platform owns, and Django's own --------------------------------------------------------


class TenantSettingsForm(forms.ModelForm):
    """The webhook secret is never shown back (a supervisor may view this page): the field is a password input
    that keeps the stored secret when left empty."""

    alert_webhook_secret = forms.CharField(
        required=False,
        max_length=255,
        widget=forms.PasswordInput(render_value=False),
        help_text="Shared secret of the HMAC-SHA256 signature of each page; leave empty to keep the current one.",
    )

    class Meta:
        model = TenantSettings
        fields = ("alert_webhook_secret",)  # the admin's fieldsets name the rest

    def clean_alert_webhook_secret(self) -> str:
        return self.cleaned_data.get("alert_webhook_secret") or (self.instance.alert_webhook_secret or "")


@admin.register(TenantSettings)
class TenantSettingsAdmin(NexaModelAdmin):
    """An airline's settings: ADMINs of the airline change them; a new airline is a superuser's job."""

    list_display = ["airline", "settlement_currency", "meal_limit", "cash_limit", "transport_limit", "updated_at"]
    fieldsets = (
        (None, {"fields": ("airline", "idempotency_key_required", "updated_at")}),
        (
            "Compensation limits (per passenger per disruption, every run summed; empty = environment default)",
            {"fields": ("settlement_currency", "meal_limit", "cash_limit", "transport_limit", "currency_rates")},
        ),
        ("Demand waves", {"fields": ("demand_approval_ttl_minutes",)}),
        (
            "Manual review (SLA minutes per priority, empty = environment default; on-call paging; exception agent)",
            {
                "fields": (
                    "sla_high_minutes",
                    "sla_medium_minutes",
                    "sla_low_minutes",
                    "alert_webhook_url",
                    "alert_webhook_secret",
                    "agent_enabled",
                )
            },
        ),
    )
    superuser_add = True
    form = TenantSettingsForm

    def get_readonly_fields(self, request, obj=None):
        readonly = ["updated_at"]
        if obj is not None or not _is_superuser(request):
            readonly.append("airline")
        return readonly


# Users and groups carry no airline: superusers only (a staff user must not grant themselves a group).
admin.site.unregister(get_user_model())
admin.site.unregister(Group)


@admin.register(get_user_model())
class NexaUserAdmin(TenantScopedAdminMixin, UserAdmin):
    tenant_field = None
    superuser_add = True
    superuser_delete = True


@admin.register(Group)
class NexaGroupAdmin(TenantScopedAdminMixin, GroupAdmin):
    tenant_field = None
    superuser_add = True
    superuser_delete = True
