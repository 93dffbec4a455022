"""Direct hotel contracts: one row per version of a contract (issue 11 § Contracts).

A contract's URN (``urn:nexa:contract:<contract_id>``) names every version; exactly one version is
``current``. An update never changes a row: it marks the current row superseded and inserts version + 1,
so every earlier version stays readable.

The hotel is referenced by its URN (``hotel_urn``), not by a foreign key: the hotel catalog is built in
parallel (docs/decisions.md, issue 11 — contracts). ``airport`` is stored with the contract (the hotel's
airport), so contracts can be listed and searched by airport without the catalog.

Non-overlap is the database's job: an exclusion constraint (``btree_gist``) refuses two current versions of
one airline's contracts for one hotel whose date ranges (both ends inclusive) overlap, whatever the
application checks first and however many writers race.
"""

from django.contrib.postgres.constraints import ExclusionConstraint
from django.contrib.postgres.fields import ArrayField, DateRangeField, RangeOperators
from django.db import models
from django.db.models import F, Func, Q, Value
from django.db.models.functions import Now

from nexa.platform.urns import format_urn, new_id


class Meal(models.TextChoices):
    BREAKFAST = "BREAKFAST"
    LUNCH = "LUNCH"
    DINNER = "DINNER"


class DateRange(Func):
    """``daterange(valid_from, valid_to, '[]')``: both ends inclusive."""

    function = "DATERANGE"
    output_field = DateRangeField()


NO_OVERLAP_CONSTRAINT = "contract_no_overlap_per_hotel"


class Contract(models.Model):
    id = models.UUIDField(primary_key=True, default=new_id, editable=False, help_text="this version's row")
    contract_id = models.UUIDField(default=new_id, help_text="the contract's id, shared by its versions")
    version = models.PositiveIntegerField(default=1)
    current = models.BooleanField(default=True)
    airline = models.CharField(max_length=3)
    hotel_urn = models.CharField(max_length=100)
    airport = models.CharField(max_length=3, help_text="IATA code of the hotel's airport")
    valid_from = models.DateField()
    valid_to = models.DateField(help_text="inclusive: the last night the contract covers")
    allotment = models.PositiveIntegerField(help_text="rooms per night")
    rate_amount = models.DecimalField(max_digits=10, decimal_places=2, help_text="per room per night")
    rate_currency = models.CharField(max_length=3)
    release_hours = models.PositiveIntegerField(
        help_text="rooms not called off this many hours before the night go back to the hotel"
    )
    meals_included = ArrayField(models.CharField(max_length=10, choices=Meal.choices), default=list, blank=True)
    cancellation_terms = models.TextField(blank=True, default="")
    created_by = models.CharField(max_length=255)
    created_at = models.DateTimeField(db_default=Now())
    superseded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["contract_id", "version"], name="contract_unique_version"),
            models.UniqueConstraint(
                fields=["contract_id"], condition=Q(current=True), name="contract_one_current_version"
            ),
            models.CheckConstraint(condition=Q(valid_to__gte=F("valid_from")), name="contract_valid_range"),
            models.CheckConstraint(condition=Q(allotment__gte=1), name="contract_allotment_positive"),
            ExclusionConstraint(
                name=NO_OVERLAP_CONSTRAINT,
                expressions=[
                    (F("airline"), RangeOperators.EQUAL),
                    (F("hotel_urn"), RangeOperators.EQUAL),
                    (DateRange("valid_from", "valid_to", Value("[]")), RangeOperators.OVERLAPS),
                ],
                condition=Q(current=True),
            ),
        ]
        indexes = [
            models.Index(fields=["airline", "airport", "valid_to"], name="contract_airline_airport_idx"),
            models.Index(fields=["airline", "valid_from", "id"], name="contract_airline_from_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.urn} v{self.version}"

    @property
    def urn(self) -> str:
        return format_urn("contract", self.contract_id)
