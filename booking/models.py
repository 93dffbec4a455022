"""Tables owned by the booking domain.

Sub-cases belong to ``cases``, a layer above (docs/architecture.md): the foreign key names them as a
string and this module imports nothing of that app."""

from django.db import models
from django.db.models.functions import Now

from nexa.platform.urns import format_urn, new_id


class WalletEntryKind(models.TextChoices):
    CREDIT = "CREDIT"  # cash compensation paid into the passenger's wallet (PSP payout)
    PAYOUT = "PAYOUT"  # money paid out of the wallet to the passenger
    REVERSAL = "REVERSAL"  # a credit undone (PSP payout reversed)


class WalletEntry(models.Model):
    """The passenger wallet's ledger, one row per movement; the balance is the signed sum and always
    equals the PSP's view of the wallet. ``reference`` (the saga step's idempotency key) makes
    recording a movement idempotent."""

    id = models.UUIDField(primary_key=True, default=new_id, editable=False)
    airline = models.CharField(max_length=3)
    sub_case = models.ForeignKey("cases.SubCase", on_delete=models.PROTECT, related_name="wallet_entries")
    kind = models.CharField(max_length=10, choices=WalletEntryKind.choices)
    amount = models.DecimalField(max_digits=12, decimal_places=2, help_text="signed: credits +, payouts/reversals -")
    currency = models.CharField(max_length=3)
    reference = models.CharField(max_length=200, help_text="idempotency key of the movement (saga step)")
    provider_ref = models.CharField(max_length=100, blank=True, default="", help_text="PSP payout id")
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["reference", "kind"], name="wallet_entry_unique_reference"),
        ]
        indexes = [models.Index(fields=["sub_case", "created_at"], name="wallet_entry_subcase_idx")]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount} {self.currency}"


class Hotel(models.Model):
    """A hotel of an airline's curated catalog, near one airport. ``vendor_ids`` maps a vendor's code to
    the vendor's id for this hotel (how vendor offers are matched to the catalog)."""

    id = models.UUIDField(primary_key=True, default=new_id, editable=False)
    airline = models.CharField(max_length=3)
    airport = models.CharField(max_length=3, help_text="IATA code of the airport it serves")
    name = models.CharField(max_length=200)
    lat = models.FloatField()
    lng = models.FloatField()
    distance_km = models.FloatField(help_text="great-circle distance from the airport")
    stars = models.PositiveSmallIntegerField()
    accessible_rooms = models.PositiveIntegerField(default=0)
    address = models.CharField(max_length=300, blank=True, default="")
    phone = models.CharField(max_length=40, blank=True, default="")
    vendor_ids = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["airline", "airport", "name"], name="hotel_unique_name_per_airport"),
        ]
        indexes = [models.Index(fields=["airline", "airport", "distance_km", "id"], name="hotel_airport_distance_idx")]

    def __str__(self) -> str:
        return f"{self.name} ({self.airport})"

    @property
    def urn(self) -> str:
        return format_urn("hotel", self.id)


class HotelSearch(models.Model):
    """One answered hotel search (``POST /v1/hotels/search``): what was asked, which vendors answered and
    how many offers came back. The offers themselves are quotes that expire and are not kept."""

    id = models.UUIDField(primary_key=True, default=new_id, editable=False)
    airline = models.CharField(max_length=3)
    airport = models.CharField(max_length=3)
    case_urn = models.CharField(max_length=80, blank=True, default="")
    request = models.JSONField(default=dict)
    vendors = models.JSONField(default=list)
    offer_count = models.PositiveIntegerField(default=0)
    actor = models.CharField(max_length=255)
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        indexes = [models.Index(fields=["airline", "created_at"], name="hotel_search_created_idx")]

    def __str__(self) -> str:
        return f"search {self.airport} ({self.offer_count} offers)"

    @property
    def urn(self) -> str:
        return format_urn("search", self.id)


class ReservationStatus(models.TextChoices):
    HELD = "HELD"
    CONFIRMED = "CONFIRMED"
    CANCELLED = "CANCELLED"
    FAILED = "FAILED"


# A reservation in one of these statuses holds its passengers' room-nights.
ACTIVE_RESERVATION_STATUSES = frozenset({ReservationStatus.HELD, ReservationStatus.CONFIRMED})


class ReservationSource(models.TextChoices):
    CONTRACT = "CONTRACT"  # called off a direct contract's allotment
    VENDOR = "VENDOR"  # held and confirmed through a hotel vendor (``vendor`` names it)
    MANUAL = "MANUAL"  # booked out of band by a supervisor (``POST /v1/booking/manual-reservations``)


class Reservation(models.Model):
    """Rooms at one hotel for some passengers of a case, for ``nights`` nights from ``check_in``.

    ``rooms`` is ``[{"occupants": [subcase URN…], "accessible": bool}]``; every occupant's nights are
    also rows of :class:`RoomNight` while the reservation is active (the duplicate-voucher guard)."""

    id = models.UUIDField(primary_key=True, default=new_id, editable=False)
    airline = models.CharField(max_length=3)
    case = models.ForeignKey("cases.Case", on_delete=models.CASCADE, related_name="reservations")
    hotel = models.ForeignKey(Hotel, null=True, blank=True, on_delete=models.PROTECT, related_name="reservations")
    hotel_name = models.CharField(max_length=200, help_text="as booked (a vendor hotel may be outside the catalog)")
    source = models.CharField(max_length=10, choices=ReservationSource.choices)
    vendor = models.CharField(max_length=40, blank=True, default="", help_text="vendor code (source VENDOR)")
    contract = models.ForeignKey(
        "booking.Contract", null=True, blank=True, on_delete=models.PROTECT, related_name="reservations"
    )
    offer_ref = models.CharField(max_length=200, blank=True, default="", help_text="the offer id that was held")
    check_in = models.DateField()
    nights = models.PositiveSmallIntegerField()
    rooms = models.JSONField(default=list)
    status = models.CharField(max_length=10, choices=ReservationStatus.choices, default=ReservationStatus.HELD)
    confirmation_number = models.CharField(max_length=80, blank=True, default="")
    hold_id = models.CharField(max_length=120, blank=True, default="", help_text="vendor hold / booking id")
    hold_expires_at = models.DateTimeField(
        null=True, blank=True, help_text="a HELD room not confirmed by then is released"
    )
    nightly_rate = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True, default="")
    direct_billed = models.BooleanField(default=False, help_text="the hotel bills the airline: no virtual card")
    card_id = models.CharField(max_length=120, blank=True, default="", help_text="PSP virtual card paying the hotel")
    allocation_urn = models.CharField(max_length=80, blank=True, default="")
    group_urn = models.CharField(max_length=80, blank=True, default="")
    saga_urn = models.CharField(max_length=80, blank=True, default="")
    created_by = models.CharField(max_length=255, help_text="operator URN, or the saga's system actor")
    reason = models.TextField(blank=True, default="")
    release_reason = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(db_default=Now())
    updated_at = models.DateTimeField(db_default=Now())
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["case", "created_at", "id"], name="reservation_case_keyset_idx"),
            models.Index(fields=["status", "hold_expires_at"], name="reservation_hold_expiry_idx"),
            models.Index(fields=["airline", "hotel", "status"], name="reservation_hotel_status_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.hotel_name} {self.check_in} x{self.nights} ({self.status})"

    @property
    def urn(self) -> str:
        return format_urn("reservation", self.id)


class RoomNight(models.Model):
    """One passenger's night in a reservation. At most one ACTIVE row per passenger and night: a second
    active reservation covering the same passenger and night is refused by the database (409 naming the
    first reservation)."""

    id = models.UUIDField(primary_key=True, default=new_id, editable=False)
    airline = models.CharField(max_length=3)
    reservation = models.ForeignKey(Reservation, on_delete=models.CASCADE, related_name="room_nights")
    sub_case = models.ForeignKey("cases.SubCase", on_delete=models.CASCADE, related_name="room_nights")
    night = models.DateField()
    active = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["sub_case", "night"], condition=models.Q(active=True), name="room_night_one_per_passenger"
            )
        ]
        indexes = [models.Index(fields=["reservation"], name="room_night_reservation_idx")]

    def __str__(self) -> str:
        return f"{self.sub_case_id} {self.night} ({'active' if self.active else 'released'})"


# Contracts live in their own module (built beside the hotel catalog; docs/decisions.md, issue 11).
from booking.contracts.models import Contract  # noqa: E402,F401
