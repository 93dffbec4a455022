"""Cases, sub-cases (the saga unit) and passenger groups.

A case's ``status`` is derived from its sub-cases (see :func:`derive_case_status`) and stored
so lists can filter and paginate on it; every sub-case transition recomputes it.
"""

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models.functions import Now
from django_fsm import FSMField, transition

from nexa.platform.urns import format_urn, new_id


class Cause(models.TextChoices):
    CANCELLATION = "CANCELLATION"
    DELAY = "DELAY"
    DIVERSION = "DIVERSION"
    MISSED_CONNECTION = "MISSED_CONNECTION"


class CaseStatus(models.TextChoices):
    OPEN = "OPEN"
    IN_PROGRESS = "IN_PROGRESS"
    FULFILLED = "FULFILLED"
    PARTIALLY_FULFILLED = "PARTIALLY_FULFILLED"
    CLOSED = "CLOSED"


class SubCaseStatus(models.TextChoices):
    PENDING = "PENDING"
    GROUPED = "GROUPED"
    ALLOCATED = "ALLOCATED"
    BOOKING = "BOOKING"
    BOOKED = "BOOKED"
    NOTIFIED = "NOTIFIED"
    CLOSED = "CLOSED"
    MANUAL_REVIEW = "MANUAL_REVIEW"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


class Tier(models.TextChoices):
    ECONOMY = "ECONOMY"
    PREMIUM_ECONOMY = "PREMIUM_ECONOMY"
    BUSINESS = "BUSINESS"
    FIRST = "FIRST"


class SpecialNeed(models.TextChoices):
    WHEELCHAIR = "WHEELCHAIR"
    INFANT = "INFANT"
    UNACCOMPANIED_MINOR = "UNACCOMPANIED_MINOR"
    MEDICAL = "MEDICAL"
    SERVICE_ANIMAL = "SERVICE_ANIMAL"


FULFILLED_SUBCASE_STATUSES = frozenset({SubCaseStatus.BOOKED, SubCaseStatus.NOTIFIED, SubCaseStatus.CLOSED})
STUCK_SUBCASE_STATUSES = frozenset({SubCaseStatus.FAILED, SubCaseStatus.MANUAL_REVIEW})
# Passengers can be (re)grouped only before rooms are allocated.
GROUPABLE_SUBCASE_STATUSES = frozenset({SubCaseStatus.PENDING, SubCaseStatus.GROUPED})


def derive_case_status(counts: dict[str, int]) -> CaseStatus:
    """The case status from its sub-cases' status counts ("any sub-case transition fans up").

    - no sub-cases, or every sub-case still PENDING → OPEN
    - every sub-case CLOSED or CANCELLED → CLOSED
    - every sub-case that is not CANCELLED is BOOKED, NOTIFIED or CLOSED → FULFILLED
    - the rest are FAILED or in MANUAL_REVIEW, and at least one is fulfilled → PARTIALLY_FULFILLED
    - anything else (work under way) → IN_PROGRESS
    """
    total = sum(counts.values())
    if total == 0 or counts.get(SubCaseStatus.PENDING, 0) == total:
        return CaseStatus.OPEN
    cancelled = counts.get(SubCaseStatus.CANCELLED, 0)
    if counts.get(SubCaseStatus.CLOSED, 0) + cancelled == total:
        return CaseStatus.CLOSED
    active = total - cancelled
    fulfilled = sum(counts.get(s, 0) for s in FULFILLED_SUBCASE_STATUSES)
    stuck = sum(counts.get(s, 0) for s in STUCK_SUBCASE_STATUSES)
    if fulfilled == active:
        return CaseStatus.FULFILLED
    if fulfilled > 0 and fulfilled + stuck == active:
        return CaseStatus.PARTIALLY_FULFILLED
    return CaseStatus.IN_PROGRESS


class Case(models.Model):
    id = models.UUIDField(primary_key=True, default=new_id, editable=False)
    airline = models.CharField(max_length=3)
    airport = models.CharField(max_length=3, help_text="IATA code of the disrupted airport")
    flight_number = models.CharField(max_length=8)
    flight_date = models.DateField()
    scheduled_departure = models.DateTimeField()
    cause = models.CharField(max_length=20, choices=Cause.choices)
    note = models.TextField(blank=True, default="")
    declared_by = models.CharField(max_length=255, help_text="operator URN")
    status = models.CharField(max_length=20, choices=CaseStatus.choices, default=CaseStatus.OPEN)
    version = models.PositiveIntegerField(default=1)
    retention_until = models.DateField(help_text="personal data of its passengers is purged after this date")
    created_at = models.DateTimeField(db_default=Now())
    updated_at = models.DateTimeField(db_default=Now())
    # --- entitlement facts (issue 12, docs/booking.md "Entitlements"; cases/entitlements.py reads them) ---
    # db_default too: rows inserted by raw SQL (bench/pagination.py) must not need to know these columns.
    origin = models.CharField(
        max_length=3,
        blank=True,
        default="",
        db_default="",
        help_text="IATA code the flight departs from; blank: the airport",
    )
    destination = models.CharField(
        max_length=3,
        blank=True,
        default="",
        db_default="",
        help_text="IATA code of the flight's final destination (distance band)",
    )
    regulation = models.CharField(
        max_length=20,
        blank=True,
        default="",
        db_default="",
        help_text="EU261, UK261, APPR, DOT or AIRLINE_GOODWILL; blank: derived from the origin's country",
    )
    extraordinary_circumstances = models.BooleanField(
        default=False, db_default=False, help_text="EC 261/2004 Art. 5(3): no compensation is owed (care still is)"
    )
    arrival_delay_minutes = models.PositiveIntegerField(
        null=True, blank=True, help_text="the flight's delay (DELAY/DIVERSION cases); null: not known"
    )

    class Meta:
        constraints = [
            # One open case per flight, date and airport: a second declaration is a 409.
            models.UniqueConstraint(
                fields=["airline", "flight_number", "flight_date", "airport"],
                condition=~models.Q(status=CaseStatus.CLOSED),
                name="case_one_open_per_flight",
            )
        ]
        indexes = [
            models.Index(fields=["airline", "scheduled_departure", "id"], name="case_departure_keyset_idx"),
            models.Index(fields=["airline", "created_at", "id"], name="case_created_keyset_idx"),
            models.Index(fields=["airline", "status", "airport"], name="case_status_airport_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.flight_number} {self.flight_date} {self.airport} ({self.status})"

    @property
    def urn(self) -> str:
        return format_urn("case", self.id)


class PassengerGroup(models.Model):
    """The unit rooms are allocated to (a family, a PNR party, a PRM passenger and companions)."""

    id = models.UUIDField(primary_key=True, default=new_id, editable=False)
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="groups")
    airline = models.CharField(max_length=3)
    label = models.CharField(max_length=20, help_text="human label, e.g. GRP-3")
    mixed_tier = models.BooleanField(default=False)
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        constraints = [models.UniqueConstraint(fields=["case", "label"], name="group_label_unique_in_case")]

    def __str__(self) -> str:
        return self.label

    @property
    def urn(self) -> str:
        return format_urn("group", self.id)


class SubCase(models.Model):
    """One passenger of a case: the unit the compensation saga works on."""

    id = models.UUIDField(primary_key=True, default=new_id, editable=False)
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="subcases")
    airline = models.CharField(max_length=3)
    group = models.ForeignKey(PassengerGroup, null=True, blank=True, on_delete=models.SET_NULL, related_name="members")
    first_name = models.CharField(max_length=100)
    last_name = models.CharField(max_length=100)
    pnr = models.CharField(max_length=6)
    tier = models.CharField(max_length=20, choices=Tier.choices, default=Tier.ECONOMY)
    loyalty_tier = models.CharField(max_length=30, blank=True, default="")
    special_needs = ArrayField(models.CharField(max_length=30, choices=SpecialNeed.choices), default=list, blank=True)
    email = models.CharField(max_length=254, blank=True, default="")
    phone = models.CharField(max_length=20, blank=True, default="", help_text="E.164")
    language = models.CharField(max_length=8, default="en")
    onward_flight = models.CharField(max_length=8, blank=True, default="")
    status = FSMField(max_length=20, choices=SubCaseStatus.choices, default=SubCaseStatus.PENDING, protected=False)
    version = models.PositiveIntegerField(default=1)
    anonymised_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(db_default=Now())
    updated_at = models.DateTimeField(db_default=Now())
    # EC 261/2004 Art. 7(2) and 5(1)(c)(iii): how late the re-routed passenger reaches the final
    # destination decides whether compensation is reduced by half (or not owed); null: not re-routed yet.
    rerouted_arrival_delay_minutes = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        constraints = [
            # The same passenger twice on one manifest is a data error, not two passengers. Anonymised
            # rows are exempt: their names are all "REDACTED".
            models.UniqueConstraint(
                fields=["case", "pnr", "last_name", "first_name"],
                condition=models.Q(anonymised_at__isnull=True),
                name="subcase_passenger_unique_in_case",
            )
        ]
        indexes = [
            models.Index(fields=["case", "created_at", "id"], name="subcase_manifest_keyset_idx"),
            models.Index(fields=["case", "status"], name="subcase_case_status_idx"),
            models.Index(fields=["airline", "pnr"], name="subcase_airline_pnr_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.last_name}/{self.first_name} {self.pnr} ({self.status})"

    @property
    def urn(self) -> str:
        return format_urn("subcase", self.id)

    # --- the state machine (ARCHITECTURE §5); services apply these with an OCC version check ---

    @transition(field=status, source=[SubCaseStatus.PENDING, SubCaseStatus.GROUPED], target=SubCaseStatus.GROUPED)
    def mark_grouped(self):
        pass

    @transition(field=status, source=SubCaseStatus.GROUPED, target=SubCaseStatus.ALLOCATED)
    def mark_allocated(self):
        pass

    @transition(field=status, source=SubCaseStatus.ALLOCATED, target=SubCaseStatus.BOOKING)
    def start_booking(self):
        pass

    @transition(field=status, source=SubCaseStatus.BOOKING, target=SubCaseStatus.BOOKED)
    def mark_booked(self):
        pass

    @transition(field=status, source=SubCaseStatus.BOOKED, target=SubCaseStatus.NOTIFIED)
    def mark_notified(self):
        pass

    @transition(field=status, source=[SubCaseStatus.BOOKED, SubCaseStatus.NOTIFIED], target=SubCaseStatus.CLOSED)
    def close(self):
        pass

    @transition(
        field=status,
        source=[
            SubCaseStatus.PENDING,
            SubCaseStatus.GROUPED,
            SubCaseStatus.ALLOCATED,
            SubCaseStatus.BOOKING,
            SubCaseStatus.BOOKED,
            SubCaseStatus.NOTIFIED,
        ],
        target=SubCaseStatus.MANUAL_REVIEW,
    )
    def send_to_review(self):
        pass

    @transition(
        field=status,
        source=SubCaseStatus.MANUAL_REVIEW,
        target=SubCaseStatus.GROUPED,
    )
    def return_to_grouped(self):
        pass

    @transition(field=status, source=SubCaseStatus.MANUAL_REVIEW, target=SubCaseStatus.BOOKED)
    def resolve_as_booked(self):
        pass

    # Manual review's rebook: the passengers are allocated again at the hotel an operator chose (a new
    # allocation, then its room sagas). Applied only by cases.services.rebook, never requested by name
    # (not in SUBCASE_TRANSITIONS): an ALLOCATED sub-case without an allocation would never be booked.
    @transition(field=status, source=SubCaseStatus.MANUAL_REVIEW, target=SubCaseStatus.ALLOCATED)
    def reallocate(self):
        pass

    @transition(
        field=status,
        source=[SubCaseStatus.ALLOCATED, SubCaseStatus.BOOKING, SubCaseStatus.MANUAL_REVIEW],
        target=SubCaseStatus.FAILED,
    )
    def mark_failed(self):
        pass

    @transition(
        field=status,
        source=[
            SubCaseStatus.PENDING,
            SubCaseStatus.GROUPED,
            SubCaseStatus.ALLOCATED,
            SubCaseStatus.MANUAL_REVIEW,
            SubCaseStatus.FAILED,
        ],
        target=SubCaseStatus.CANCELLED,
    )
    def cancel(self):
        pass


# Transition names the API and admin may request, in the order the flow usually runs.
SUBCASE_TRANSITIONS = (
    "mark_grouped",
    "mark_allocated",
    "start_booking",
    "mark_booked",
    "mark_notified",
    "close",
    "send_to_review",
    "return_to_grouped",
    "resolve_as_booked",
    "mark_failed",
    "cancel",
)


# --- compensation sagas (ARCHITECTURE §6; saga state lives here, in PostgreSQL) ----------------------


class SagaRunStatus(models.TextChoices):
    PENDING = "PENDING"  # accepted, waiting for a worker
    RUNNING = "RUNNING"  # a worker is executing steps (or waiting to retry a transient failure)
    COMPLETED = "COMPLETED"
    COMPENSATING = "COMPENSATING"  # a step failed for good: undoing the completed steps in reverse
    FAILED = "FAILED"  # failed and compensated; the sub-case went to MANUAL_REVIEW
    CANCELLING = "CANCELLING"  # an operator cancelled: undoing what was done
    CANCELLED = "CANCELLED"


class SagaStepStatus(models.TextChoices):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    COMPENSATED = "COMPENSATED"
    COMPENSATION_FAILED = "COMPENSATION_FAILED"
    SKIPPED = "SKIPPED"  # never started: the run failed or was cancelled before it


class SagaRun(models.Model):
    """One compensation request for one sub-case: its ordered steps run on the ``saga`` queue."""

    id = models.UUIDField(primary_key=True, default=new_id, editable=False)
    airline = models.CharField(max_length=3)
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="saga_runs")
    sub_case = models.ForeignKey(SubCase, on_delete=models.CASCADE, related_name="saga_runs")
    status = models.CharField(max_length=20, choices=SagaRunStatus.choices, default=SagaRunStatus.PENDING)
    payload = models.JSONField(help_text="the validated request: {items, reason}")
    payload_hash = models.CharField(max_length=64, help_text="sha256 of the canonical request (dedupe)")
    correlation_urn = models.CharField(max_length=80)
    requested_by = models.CharField(max_length=255, help_text="operator URN")
    reason = models.TextField(blank=True, default="")
    failure_category = models.CharField(max_length=40, blank=True, default="")
    failure = models.JSONField(null=True, blank=True, help_text="{step, provider, code, message, at} of the failure")
    retries = models.PositiveIntegerField(default=0, help_text="operator retries of this run")
    lease_expires_at = models.DateTimeField(null=True, blank=True, help_text="a worker holds the run until then")
    fx = models.JSONField(
        null=True,
        blank=True,
        help_text="{settlementCurrency, rates: {USD: '0.92'}}: the conversion the run's limits were checked with",
    )
    lease_owner = models.UUIDField(
        null=True, blank=True, help_text="the token of the worker holding the lease; every write checks it"
    )
    created_at = models.DateTimeField(db_default=Now())
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(db_default=Now())

    class Meta:
        constraints = [
            # The same request (payload hash includes the sub-case version it was made against) is one run.
            models.UniqueConstraint(fields=["sub_case", "payload_hash"], name="saga_run_unique_payload"),
        ]
        indexes = [
            models.Index(fields=["case", "created_at", "id"], name="saga_run_case_idx"),
            models.Index(fields=["status", "lease_expires_at"], name="saga_run_status_lease_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.urn} ({self.status})"

    @property
    def urn(self) -> str:
        return format_urn("saga", self.id)


class SagaStep(models.Model):
    """One step of a run. Its URN (plus ``/retry-<n>`` after an operator retry re-runs an undone
    step) is the provider's idempotency key, so a re-delivered step never has a second effect."""

    id = models.UUIDField(primary_key=True, default=new_id, editable=False)
    run = models.ForeignKey(SagaRun, on_delete=models.CASCADE, related_name="steps")
    airline = models.CharField(max_length=3)
    position = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=40, help_text="e.g. meal.issue_card, cash.payout, transport.request_ride")
    kind = models.CharField(max_length=20, help_text="MEAL, CASH, TRANSPORT or NOTIFY")
    item = models.JSONField(help_text="the request item this step delivers")
    status = models.CharField(max_length=20, choices=SagaStepStatus.choices, default=SagaStepStatus.PENDING)
    generation = models.PositiveIntegerField(default=0, help_text="bumped when a retry re-runs an undone step")
    attempts = models.PositiveIntegerField(default=0)
    settled_amount = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="the item's amount in the airline's settlement currency (counts against the passenger's limit)",
    )
    outcome_unknown = models.BooleanField(
        default=False,
        help_text="in doubt: the last attempt ended in a timeout, 5xx or crash; resolved with the provider "
        "under the original key before the step is compensated or retried",
    )
    attempt_log = models.JSONField(default=list, help_text="[{at, outcome, provider, code, message}]")
    result = models.JSONField(null=True, blank=True)
    error = models.JSONField(null=True, blank=True)
    compensation = models.JSONField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    compensated_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(db_default=Now())

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "position"], name="saga_step_position_unique")]
        ordering = ["position"]

    def __str__(self) -> str:
        return f"{self.name} ({self.status})"

    @property
    def urn(self) -> str:
        return format_urn("step", self.id)

    @property
    def idempotency_key(self) -> str:
        return self.urn if self.generation == 0 else f"{self.urn}/retry-{self.generation}"

    @property
    def compensation_key(self) -> str:
        return f"{self.idempotency_key}/compensate"


# --- demand waves and allocations (issue 12; ARCHITECTURE §5: PENDING_APPROVAL → APPROVED | REJECTED → ALLOCATED) ---


class DemandKind(models.TextChoices):
    INITIAL = "INITIAL"
    INCREMENTAL = "INCREMENTAL"


class DemandStatus(models.TextChoices):
    PENDING_APPROVAL = "PENDING_APPROVAL"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"
    ALLOCATED = "ALLOCATED"
    # Stored once a pending wave is found past ``expires_at`` (expiry is lazy: a wave reads as EXPIRED
    # from that instant whether or not the row has been rewritten yet).
    EXPIRED = "EXPIRED"


# A passenger in a wave of one of these statuses may not be asked for again (422 naming them).
OPEN_DEMAND_STATUSES = frozenset({DemandStatus.PENDING_APPROVAL, DemandStatus.APPROVED, DemandStatus.ALLOCATED})


class DemandWave(models.Model):
    """A request for rooms for some of a case's passengers, approved by a supervisor before allocation."""

    id = models.UUIDField(primary_key=True, default=new_id, editable=False)
    airline = models.CharField(max_length=3)
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="demand_waves")
    kind = models.CharField(max_length=12, choices=DemandKind.choices)
    status = models.CharField(max_length=20, choices=DemandStatus.choices, default=DemandStatus.PENDING_APPROVAL)
    check_in = models.DateField()
    nights = models.PositiveSmallIntegerField()
    rooms = models.PositiveIntegerField(help_text="rooms the wave is estimated to need (one per group room)")
    people = models.PositiveIntegerField()
    reason = models.TextField(blank=True, default="")
    requested_by = models.CharField(max_length=255, help_text="operator URN")
    expires_at = models.DateTimeField(help_text="a wave still pending at this instant is EXPIRED")
    resolved_by = models.CharField(max_length=255, blank=True, default="")
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution_reason = models.TextField(blank=True, default="")
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(db_default=Now())
    updated_at = models.DateTimeField(db_default=Now())

    class Meta:
        constraints = [
            # One INITIAL wave per case (a second is a 409); a rejected or expired one may be asked again.
            models.UniqueConstraint(
                fields=["case"],
                condition=models.Q(kind="INITIAL") & ~models.Q(status__in=["REJECTED", "EXPIRED"]),
                name="demand_one_initial_per_case",
            )
        ]
        indexes = [
            models.Index(fields=["airline", "status", "created_at", "id"], name="demand_pending_queue_idx"),
            models.Index(fields=["case", "created_at"], name="demand_case_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} wave of {self.case_id} ({self.status})"

    def status_at(self, now) -> str:
        """The status as read at ``now``: a wave still pending past ``expires_at`` is EXPIRED (lazy expiry,
        spec 003) whether or not the row has been rewritten yet."""
        if self.status == DemandStatus.PENDING_APPROVAL and now >= self.expires_at:
            return DemandStatus.EXPIRED
        return self.status

    @property
    def urn(self) -> str:
        return format_urn("demand", self.id)


class DemandWaveMember(models.Model):
    """A passenger of a wave (the wave's groups are read through the members' groups)."""

    id = models.UUIDField(primary_key=True, default=new_id, editable=False)
    airline = models.CharField(max_length=3)
    wave = models.ForeignKey(DemandWave, on_delete=models.CASCADE, related_name="members")
    sub_case = models.ForeignKey(SubCase, on_delete=models.CASCADE, related_name="demand_memberships")
    group = models.ForeignKey(PassengerGroup, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["wave", "sub_case"], name="demand_member_unique")]
        indexes = [models.Index(fields=["sub_case"], name="demand_member_subcase_idx")]

    def __str__(self) -> str:
        return f"{self.sub_case_id} in {self.wave_id}"


class AllocationStatus(models.TextChoices):
    PLANNED = "PLANNED"  # the plan is stored; sub-cases placed are ALLOCATED
    BOOKING = "BOOKING"  # book-rooms accepted it
    SUPERSEDED = "SUPERSEDED"  # a later allocation of the same wave replaced it (e.g. after a review relax)


class Allocation(models.Model):
    """The allocation engine's plan for one approved wave, as answered by the allocate routes."""

    id = models.UUIDField(primary_key=True, default=new_id, editable=False)
    airline = models.CharField(max_length=3)
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="allocations")
    demand = models.ForeignKey(DemandWave, on_delete=models.CASCADE, related_name="allocations")
    status = models.CharField(max_length=20, choices=AllocationStatus.choices, default=AllocationStatus.PLANNED)
    plan = models.JSONField(help_text="{assignments: […], unallocated: […], partialFailures: […]}, the API shape")
    created_by = models.CharField(max_length=255, help_text="operator URN")
    created_at = models.DateTimeField(db_default=Now())
    updated_at = models.DateTimeField(db_default=Now())

    class Meta:
        indexes = [models.Index(fields=["case", "created_at"], name="allocation_case_idx")]

    def __str__(self) -> str:
        return f"allocation of {self.demand_id} ({self.status})"

    @property
    def urn(self) -> str:
        return format_urn("allocation", self.id)


# --- entitlements (issue 12; cases/entitlements.py computes them, docs/booking.md "Entitlements") -------


class Regulation(models.TextChoices):
    EU261 = "EU261"
    UK261 = "UK261"
    APPR = "APPR"
    DOT = "DOT"
    AIRLINE_GOODWILL = "AIRLINE_GOODWILL"


class Entitlement(models.Model):
    """The stored snapshot of one sub-case's entitlements, written by ``manage.py entitlements_backfill``.

    The route always answers the live computation; the snapshot is what finance reconciles against
    and what the route compares with (``snapshot.current``). ``data`` is the computation without its
    ``computedAt``; ``computed_at`` is when that content was stored (an unchanged re-run keeps it)."""

    id = models.UUIDField(primary_key=True, default=new_id, editable=False)
    airline = models.CharField(max_length=3)
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="entitlements")
    sub_case = models.OneToOneField(SubCase, on_delete=models.CASCADE, related_name="entitlement")
    data = models.JSONField(help_text="the route's body without computedAt")
    computed_at = models.DateTimeField()
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        indexes = [models.Index(fields=["case"], name="entitlement_case_idx")]

    def __str__(self) -> str:
        return f"entitlements of {self.sub_case_id} at {self.computed_at}"
