"""Tables owned by the agent domain: the exception agent's proposals and the record of each triage.

An :class:`AgentAction` is one proposal the agent made for one review item (rebook, relax, split,
override). It does nothing by itself: an operator approves it quoting the ``plan_hash`` they saw, and the
same operator executes it, which calls the review service a human would call (docs/agent.md). Its state
machine: PROPOSED → APPROVED | REJECTED | EXPIRED; APPROVED → EXECUTED | FAILED (or EXPIRED).
Proposals expire lazily: a read or a command past ``expires_at`` finds it EXPIRED.

An :class:`AgentRun` is the audit-only record of one triage: the planner, the classification, every tool
call made, every tool call refused, and (for the hosted model) the prompts and answers exchanged.
"""

from django.db import models
from django.db.models.functions import Now
from django_fsm import FSMField, transition

from nexa.platform.urns import format_urn, new_id


class FailureCause(models.TextChoices):
    """What the agent's classifier (agent.tools.classify) names as a review item's failure cause."""

    NO_AVAILABILITY = "no-availability"
    POLICY_TOO_STRICT = "policy-too-strict"
    PROVIDER_ERROR = "provider-error"
    PAYMENT_REFUSED = "payment-refused"
    NO_POLICY = "no-policy"
    MIXED_TIER = "mixed-tier-group"
    DATA_INCOMPLETE = "data-incomplete"
    UNKNOWN = "unknown"


class AgentActionKind(models.TextChoices):
    REBOOK = "rebook"
    RELAX = "relax"
    SPLIT = "split"
    OVERRIDE = "override"


class AgentActionState(models.TextChoices):
    PROPOSED = "PROPOSED"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"
    EXECUTED = "EXECUTED"
    FAILED = "FAILED"


class AgentAction(models.Model):
    id = models.UUIDField(primary_key=True, default=new_id, editable=False)
    airline = models.CharField(max_length=3)
    item = models.ForeignKey("review.ReviewItem", on_delete=models.CASCADE, related_name="agent_actions")
    run = models.ForeignKey("agent.AgentRun", on_delete=models.SET_NULL, null=True, related_name="actions")
    rank = models.PositiveSmallIntegerField(help_text="1 = the most viable of the run's proposals")
    action = models.CharField(max_length=10, choices=AgentActionKind.choices)
    params = models.JSONField(default=dict, help_text="the review service's arguments (hotelUrn, fields, into …)")
    rationale = models.TextField()
    estimated_cost = models.JSONField(null=True, blank=True, help_text="{amount, currency} of the stay, or null")
    plan_hash = models.CharField(max_length=64, help_text="sha256 of the plan and the item's facts it rests on")
    item_version = models.PositiveIntegerField(help_text="the review item's version the plan was made against")
    expires_at = models.DateTimeField()
    state = FSMField(max_length=10, choices=AgentActionState.choices, default=AgentActionState.PROPOSED)
    version = models.PositiveIntegerField(default=1)
    approved_by = models.CharField(max_length=255, blank=True, default="")
    approved_at = models.DateTimeField(null=True, blank=True)
    rejected_by = models.CharField(max_length=255, blank=True, default="")
    decision_reason = models.TextField(blank=True, default="")
    executed_by = models.CharField(max_length=255, blank=True, default="")
    executed_at = models.DateTimeField(null=True, blank=True)
    result = models.JSONField(null=True, blank=True, help_text="the review item after execution, or the problem")
    created_at = models.DateTimeField(db_default=Now())
    updated_at = models.DateTimeField(db_default=Now())

    class Meta:
        indexes = [models.Index(fields=["item", "state"], name="agent_action_item_state_idx")]

    def __str__(self) -> str:
        return f"{self.urn} {self.action} ({self.state})"

    @property
    def urn(self) -> str:
        return format_urn("agent-action", self.id)

    # --- the state machine; agent.services applies it under a row lock with a version check ---

    @transition(field=state, source=AgentActionState.PROPOSED, target=AgentActionState.APPROVED)
    def approve(self):
        pass

    @transition(field=state, source=AgentActionState.PROPOSED, target=AgentActionState.REJECTED)
    def reject(self):
        pass

    @transition(
        field=state, source=[AgentActionState.PROPOSED, AgentActionState.APPROVED], target=AgentActionState.EXPIRED
    )
    def expire(self):
        pass

    @transition(field=state, source=AgentActionState.APPROVED, target=AgentActionState.EXECUTED)
    def execute(self):
        pass

    @transition(field=state, source=AgentActionState.APPROVED, target=AgentActionState.FAILED)
    def fail(self):
        pass


class AgentTrigger(models.TextChoices):
    ITEM_CREATED = "ITEM_CREATED"  # the review:created consumer (TenantSettings.agent_enabled)
    OPERATOR = "OPERATOR"  # POST /v1/agent/triage


class AgentRun(models.Model):
    """One triage of one review item (audit only: nothing reads it to decide anything)."""

    id = models.UUIDField(primary_key=True, default=new_id, editable=False)
    airline = models.CharField(max_length=3)
    item = models.ForeignKey("review.ReviewItem", on_delete=models.CASCADE, related_name="agent_runs")
    item_version = models.PositiveIntegerField()
    trigger = models.CharField(max_length=14, choices=AgentTrigger.choices)
    source_event_urn = models.CharField(
        max_length=80, blank=True, default="", help_text="the review:created event of an automatic run"
    )
    actor = models.CharField(max_length=255)
    planner = models.CharField(max_length=40, help_text="deterministic, or hosted:<model>")
    cause = models.CharField(max_length=40, blank=True, default="")
    confidence = models.FloatField(null=True, blank=True)
    tool_calls = models.JSONField(default=list, help_text="[{tool, arguments, ok, summary}] in call order")
    refusals = models.JSONField(default=list, help_text="[{tool, arguments}] the planner asked for and was refused")
    transcript = models.JSONField(default=list, help_text="the hosted model's prompts and answers")
    recommendations = models.JSONField(default=list)
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        constraints = [
            # One automatic run per review:created occurrence (the outbox delivers at least once).
            models.UniqueConstraint(
                fields=["source_event_urn"],
                condition=~models.Q(source_event_urn=""),
                name="agent_run_one_per_event",
            ),
        ]

    def __str__(self) -> str:
        return f"agent run {self.id} on {self.item_id}"
