"""Django admin of the platform's per-airline settings (issue 9 §2: compensation limits are edited here).

Kept minimal and additive: money policy is a superuser's (``createsuperuser``) to change, so every
other staff user sees nothing here; opening it to an airline's own ADMIN is for the platform's admin
scoping (issue 9 §3), which knows operators — ``nexa.platform`` may not import them.
"""

from django.contrib import admin

from nexa.platform.models import TenantSettings


@admin.register(TenantSettings)
class TenantSettingsAdmin(admin.ModelAdmin):
    list_display = ("airline", "settlement_currency", "meal_limit", "cash_limit", "transport_limit", "updated_at")
    fieldsets = (
        (None, {"fields": ("airline", "idempotency_key_required")}),
        (
            "Compensation limits (per passenger per disruption, every run summed; empty = environment default)",
            {"fields": ("settlement_currency", "meal_limit", "cash_limit", "transport_limit", "currency_rates")},
        ),
    )

    def _superuser(self, request) -> bool:
        return bool(request.user.is_active and request.user.is_superuser)

    def has_module_permission(self, request) -> bool:
        return self._superuser(request)

    def has_view_permission(self, request, obj=None) -> bool:
        return self._superuser(request)

    def has_change_permission(self, request, obj=None) -> bool:
        return self._superuser(request)

    def has_add_permission(self, request) -> bool:
        return self._superuser(request)

    def has_delete_permission(self, request, obj=None) -> bool:
        return self._superuser(request)
