"""Django admin of the booking domain (each part registers its own models)."""

from django.contrib import admin

from booking.contracts import admin as contracts_admin  # noqa: F401
from booking.models import Reservation
from nexa.platform.admin import NexaModelAdmin


@admin.register(Reservation)
class ReservationAdmin(NexaModelAdmin):
    """Reservations, read-only: they change through the booking saga, manual reservations and the release
    sweep (audited services), never through a form. Supervisors find one by its confirmation number."""

    read_only = True
    list_display = [
        "urn",
        "airline",
        "hotel_name",
        "source",
        "vendor",
        "check_in",
        "nights",
        "status",
        "confirmation_number",
        "created_at",
    ]
    list_filter = ["airline", "status", "source", "case__airport", "check_in"]
    search_fields = [
        "confirmation_number",
        "hotel_name",
        "hold_id",
        "case__flight_number",
        "room_nights__sub_case__pnr",
    ]
    ordering = ["-created_at"]
    list_select_related = ["hotel", "case"]
