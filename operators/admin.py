from django.contrib import admin

from operators.models import Operator


@admin.register(Operator)
class OperatorAdmin(admin.ModelAdmin):
    list_display = ["operator_urn", "display_name", "airline", "role", "active", "created_at"]
    list_filter = ["airline", "role", "active"]
    search_fields = ["operator_urn", "display_name", "user__username"]
    raw_id_fields = ["user"]
    readonly_fields = ["created_at"]
