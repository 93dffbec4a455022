"""Tables owned by the review domain: the manual-review item (spec 001 § Review item shape).

An item is born from one failure occurrence (an outbox event: ``saga:failed``, ``allocation:failed``,
``booking:failed``) and is unique by that event's URN, so a redelivered event never makes a second item.
Its state machine is OPEN → CLAIMED → RESOLVED, with ESCALATED beside CLAIMED (a raised priority);
services apply it under a row lock and a ``version`` check (docs/review.md).
"""

from django.db import models
from django.db.models.functions import Now
from django_fsm import FSMField, transition

from nexa.platform.urns import format_urn, new_id


class ReviewCategory(models.TextChoices):
    ALLOCATION_FAILED = "ALLOCATION_FAILED"
    BOOKING_FAILED = "BOOKING_FAILED"
    PAYMENT_FAILED = "PAYMENT_FAILED"
    PARTIAL_FULFILLMENT = "PARTIAL_FULFILLMENT"
    POLICY_VIOLATION = "POLICY_VIOLATION"
    MIXED_TIER_GROUP = "MIXED_TIER_GROUP"
    DATA_INCOMPLETE = "DATA_INCOMPLETE"


class ReviewPriority(models.TextChoices):
    HIGH = "HIGH"
    MEDIUM = "MEDIUM"
    LOW = "LOW"


# Spec 001's table: the priority an item of each category is born with.
CATEGORY_PRIORITY: dict[str, str] = {
    ReviewCategory.ALLOCATION_FAILED: ReviewPriority.HIGH,
    ReviewCategory.BOOKING_FAILED: ReviewPriority.HIGH,
    ReviewCategory.PAYMENT_FAILED: ReviewPriority.MEDIUM,
    ReviewCategory.PARTIAL_FULFILLMENT: ReviewPriority.MEDIUM,
    ReviewCategory.POLICY_VIOLATION: ReviewPriority.LOW,
    ReviewCategory.MIXED_TIER_GROUP: ReviewPriority.LOW,
    ReviewCategory.DATA_INCOMPLETE: ReviewPriority.LOW,
}

# One level up; HIGH is the top and stays HIGH (an escalated HIGH item still pages and is audited).
ESCALATED_PRIORITY: dict[str, str] = {
    ReviewPriority.LOW: ReviewPriority.MEDIUM,
    ReviewPriority.MEDIUM: ReviewPriority.HIGH,
    ReviewPriority.HIGH: ReviewPriority.HIGH,
}


class ReviewState(models.TextChoices):
    OPEN = "OPEN"
    CLAIMED = "CLAIMED"
    ESCALATED = "ESCALATED"
    RESOLVED = "RESOLVED"


class ReviewResolution(models.TextChoices):
    REBOOKED = "REBOOKED"
    RELAXED = "RELAXED"
    SPLIT = "SPLIT"
    OVERRIDDEN = "OVERRIDDEN"
    NO_ACTION = "NO_ACTION"
    CANCELLED = "CANCELLED"


UNRESOLVED_STATES = (ReviewState.OPEN, ReviewState.CLAIMED, ReviewState.ESCALATED)


class ReviewItem(models.Model):
    id = models.UUIDField(primary_key=True, default=new_id, editable=False)
    airline = models.CharField(max_length=3)
    case = models.ForeignKey("cases.Case", on_delete=models.CASCADE, related_name="review_items")
    category = models.CharField(max_length=24, choices=ReviewCategory.choices)
    priority = models.CharField(max_length=8, choices=ReviewPriority.choices)
    state = FSMField(max_length=12, choices=ReviewState.choices, default=ReviewState.OPEN, protected=False)
    version = models.PositiveIntegerField(default=1)
    reason = models.TextField(blank=True, default="", help_text="what happened, as the failing domain said it")
    attempted_hotels = models.JSONField(default=list, blank=True, help_text="[{hotelUrn, reason, providerError}]")
    affected_groups = models.JSONField(default=list, blank=True, help_text='group labels, e.g. ["GRP-3"]')
    affected_group_urns = models.JSONField(default=list, blank=True)
    affected_subcase_urns = models.JSONField(default=list, blank=True)
    recommendations = models.JSONField(default=list, blank=True, help_text="filled by the exception agent")
    failure = models.JSONField(
        default=dict, blank=True, help_text="the failing domain's own facts (a saga's failed step, attempts …)"
    )
    assigned_to = models.CharField(max_length=255, blank=True, default="", help_text="operator URN")
    claimed_until = models.DateTimeField(null=True, blank=True, help_text="the claim's lease ends then")
    sla_due_at = models.DateTimeField()
    escalations = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(db_default=Now())
    updated_at = models.DateTimeField(db_default=Now())
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.CharField(max_length=255, blank=True, default="")
    resolution = models.CharField(max_length=12, choices=ReviewResolution.choices, blank=True, default="")
    resolution_reason = models.TextField(blank=True, default="")
    demand_urn = models.CharField(max_length=80, blank=True, default="")
    allocation_urn = models.CharField(max_length=80, blank=True, default="")
    saga_urn = models.CharField(max_length=80, blank=True, default="")
    reservation_urns = models.JSONField(default=list, blank=True)
    actions = models.JSONField(
        default=list,
        blank=True,
        help_text="actions taken before resolving: [{action, params, reason, by, at, agentActionUrn, result}]",
    )
    accepted_agent_action_urn = models.CharField(
        max_length=80,
        blank=True,
        default="",
        help_text="the executed agent action (urn:nexa:agent-action:…) that acted on the item (reports)",
    )
    source_event = models.CharField(max_length=100, help_text="the outbox event that created the item")
    source_event_urn = models.CharField(max_length=80, help_text="urn:nexa:event:… (one item per occurrence)")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["source_event_urn"], name="review_item_one_per_event"),
        ]
        indexes = [
            # The SLA sweep: unresolved items by due time. Partial, so resolved items (the vast
            # majority over time) cost the sweep nothing.
            models.Index(
                fields=["sla_due_at"],
                name="review_item_sla_open_idx",
                condition=~models.Q(state="RESOLVED"),
            ),
            # The queues: an airline's items by due time (keyset pagination).
            models.Index(fields=["airline", "sla_due_at", "id"], name="review_item_queue_idx"),
            models.Index(fields=["case", "state"], name="review_item_case_state_idx"),
            # The weekly report: an airline's items created in one ISO week.
            models.Index(fields=["airline", "created_at"], name="review_item_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.urn} {self.category} ({self.state})"

    @property
    def urn(self) -> str:
        return format_urn("review", self.id)

    # --- the state machine; review.services applies it with a row lock and a version check ---

    @transition(field=state, source=list(UNRESOLVED_STATES), target=ReviewState.CLAIMED)
    def claim(self):
        pass

    @transition(field=state, source=list(UNRESOLVED_STATES), target=ReviewState.ESCALATED)
    def escalate(self):
        pass

    @transition(field=state, source=[ReviewState.CLAIMED, ReviewState.ESCALATED], target=ReviewState.RESOLVED)
    def resolve(self):
        pass


class PageStatus(models.TextChoices):
    PENDING = "PENDING"
    DELIVERED = "DELIVERED"
    FAILED = "FAILED"  # every attempt failed
    SKIPPED = "SKIPPED"  # the airline has no alerting webhook configured


class PageTrigger(models.TextChoices):
    SLA_BREACH = "SLA_BREACH"
    MANUAL = "MANUAL"  # an operator escalated the item


class ReviewPage(models.Model):
    """One page of the on-call for one escalation of one item, and the log of every delivery attempt.

    Written in the transaction that escalates the item (the SLA sweep's, or an operator's); one per
    escalation (item, the version it wrote). An escalation restarts the SLA clock, so a breach is escalated,
    and pages, exactly once however often the sweep runs."""

    id = models.UUIDField(primary_key=True, default=new_id, editable=False)
    airline = models.CharField(max_length=3)
    item = models.ForeignKey(ReviewItem, on_delete=models.CASCADE, related_name="pages")
    item_version = models.PositiveIntegerField(help_text="the item's version the escalation wrote")
    trigger = models.CharField(max_length=12, choices=PageTrigger.choices)
    sla_due_at_before = models.DateTimeField(help_text="the item's sla_due_at the escalation replaced (breached)")
    priority_before = models.CharField(max_length=8, choices=ReviewPriority.choices)
    priority_after = models.CharField(max_length=8, choices=ReviewPriority.choices)
    status = models.CharField(max_length=10, choices=PageStatus.choices, default=PageStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    log = models.JSONField(default=list, blank=True, help_text="[{at, url, status, error, ms}] per attempt")
    created_at = models.DateTimeField(db_default=Now())
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["item", "item_version"], name="review_page_one_per_escalation"),
        ]

    def __str__(self) -> str:
        return f"page {self.id} for {self.item_id} ({self.status})"


class PolicyRelaxation(models.Model):
    """One rule of the policy relaxed for one case by a review item's ``relax`` action (spec 001: "Relax policy
    for this case only"). Rows are only ever inserted; ``review/apps.py`` registers the source that hands them
    to policy resolution (``policies.selectors.relaxation_register``), so the case's ``effectiveRules`` carry
    them and every other case of the airline is unaffected. A row never tightens a policy: the source applies
    it only where it is looser than the resolving policy's own rule (docs/review.md § Relax)."""

    id = models.UUIDField(primary_key=True, default=new_id, editable=False)
    airline = models.CharField(max_length=3)
    case = models.ForeignKey("cases.Case", on_delete=models.CASCADE, related_name="policy_relaxations")
    item = models.ForeignKey(ReviewItem, on_delete=models.CASCADE, related_name="relaxations")
    rule = models.CharField(max_length=40, help_text="a policy rule name, e.g. maxDistanceKm")
    value = models.JSONField(help_text="the relaxed value, in the rule's own shape")
    reason = models.TextField()
    created_by = models.CharField(max_length=255, help_text="operator URN")
    agent_action_urn = models.CharField(max_length=80, blank=True, default="")
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        indexes = [models.Index(fields=["case", "rule", "created_at"], name="review_relaxation_case_idx")]

    def __str__(self) -> str:
        return f"{self.rule}={self.value} for {self.case_id}"
