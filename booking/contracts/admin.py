"""Contracts in Django admin: read-only (every change goes through the services, audited and published).

Supervisors browse the airline's contracts and every version; the tenant wall is
:class:`nexa.platform.admin.NexaModelAdmin`'s.
"""

from django.contrib import admin

from booking.contracts.models import Contract
from nexa.platform.admin import NexaModelAdmin


@admin.register(Contract)
class ContractAdmin(NexaModelAdmin):
    read_only = True
    list_display = [
        "urn",
        "version",
        "current",
        "airline",
        "airport",
        "hotel_urn",
        "valid_from",
        "valid_to",
        "allotment",
        "rate_amount",
        "rate_currency",
        "created_at",
    ]
    list_filter = ["airline", "airport", "current", "rate_currency"]
    search_fields = ["hotel_urn", "contract_id"]
    ordering = ["-created_at"]
