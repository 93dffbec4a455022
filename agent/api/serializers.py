"""Wire shapes of the agent routes: the agent action, the triage answer, the request bodies (closed)."""

from rest_framework import serializers

from agent.models import AgentAction, AgentActionKind, AgentActionState, FailureCause
from agent.services import REASON_MAX_LENGTH, effective_state
from nexa.platform.openapi import urn_schema, with_schema
from nexa.platform.strict_fields import ClosedSerializer
from nexa.platform.urns import OPAQUE_URN_MAX_LENGTH, OPAQUE_URN_PATTERN

OPERATOR_URN_SCHEMA = {
    "type": "string",
    "pattern": OPAQUE_URN_PATTERN,
    "maxLength": OPAQUE_URN_MAX_LENGTH,
    "nullable": True,
}
PLAN_HASH_SCHEMA = {"type": "string", "pattern": "^[0-9a-f]{64}$", "minLength": 64, "maxLength": 64}


def _iso(value):
    return serializers.DateTimeField().to_representation(value) if value else None


class EstimatedCostSerializer(serializers.Serializer):
    amount = serializers.CharField(help_text="Decimal as a string, e.g. 240.00")
    currency = serializers.CharField(help_text="ISO 4217")


class AgentActionSerializer(serializers.Serializer):
    urn = with_schema(serializers.CharField(), urn_schema("agent-action"))
    reviewUrn = with_schema(serializers.CharField(), urn_schema("review"))  # noqa: N815
    rank = serializers.IntegerField(min_value=1, help_text="1 = the most viable proposal of its triage.")
    action = serializers.ChoiceField(choices=AgentActionKind.choices)
    params = serializers.DictField(
        help_text="The review service's arguments: rebook {hotelUrn}; override {hotelUrn, providerOfferId}; "
        "relax {fields: {maxDistanceKm: 40}}; split {into: [[subCaseUrn…], …]}."
    )
    rationale = serializers.CharField(help_text="The agent's reasoning, in words.")
    estimatedCost = EstimatedCostSerializer(allow_null=True, help_text="The stay's total at the proposed hotel.")  # noqa: N815
    planHash = with_schema(serializers.CharField(), PLAN_HASH_SCHEMA)  # noqa: N815
    expiresAt = serializers.DateTimeField(help_text="Not executed by then: EXPIRED.")  # noqa: N815
    state = serializers.ChoiceField(choices=AgentActionState.choices, help_text="As read now (lazy expiry).")
    version = serializers.IntegerField(min_value=1)
    approvedBy = with_schema(serializers.CharField(allow_null=True), OPERATOR_URN_SCHEMA)  # noqa: N815
    approvedAt = serializers.DateTimeField(allow_null=True)  # noqa: N815
    rejectedBy = with_schema(serializers.CharField(allow_null=True), OPERATOR_URN_SCHEMA)  # noqa: N815
    decisionReason = serializers.CharField(allow_null=True)  # noqa: N815
    executedBy = with_schema(serializers.CharField(allow_null=True), OPERATOR_URN_SCHEMA)  # noqa: N815
    executedAt = serializers.DateTimeField(allow_null=True)  # noqa: N815
    result = serializers.DictField(
        allow_null=True,
        help_text="After execute: the item's {reviewUrn, state, version, resolution}, or {problem} when FAILED.",
    )
    createdAt = serializers.DateTimeField()  # noqa: N815


def agent_action_data(action: AgentAction) -> dict:
    return {
        "urn": action.urn,
        "reviewUrn": action.item.urn,
        "rank": action.rank,
        "action": action.action,
        "params": action.params,
        "rationale": action.rationale,
        "estimatedCost": action.estimated_cost,
        "planHash": action.plan_hash,
        "expiresAt": _iso(action.expires_at),
        "state": effective_state(action),
        "version": action.version,
        "approvedBy": action.approved_by or None,
        "approvedAt": _iso(action.approved_at),
        "rejectedBy": action.rejected_by or None,
        "decisionReason": action.decision_reason or None,
        "executedBy": action.executed_by or None,
        "executedAt": _iso(action.executed_at),
        "result": action.result,
        "createdAt": _iso(action.created_at),
    }


class ClassificationSerializer(serializers.Serializer):
    cause = serializers.ChoiceField(choices=FailureCause.choices)
    confidence = serializers.FloatField(min_value=0, max_value=1)


class ItemTriageSerializer(serializers.Serializer):
    reviewUrn = with_schema(serializers.CharField(), urn_schema("review"))  # noqa: N815
    classification = ClassificationSerializer()
    recommendations = serializers.ListField(
        child=serializers.DictField(),
        help_text="The item's top 3, most viable first (spec 001: {action, hotelUrn?, fields?, value?, reason, "
        "source: agent}, plus rank, compliance, fresh, distanceKm, estimatedCost, agentActionUrn, planHash, "
        "expiresAt).",
    )
    proposals = AgentActionSerializer(many=True)


class TriageSerializer(ItemTriageSerializer):
    """The most urgent item's triage at the top level; ``items`` holds every triaged item's (one for a
    reviewUrn, each open item of the case for a caseUrn, soonest SLA due first)."""

    reviewUrn = with_schema(  # noqa: N815
        serializers.CharField(allow_null=True), {**urn_schema("review"), "nullable": True}
    )
    classification = ClassificationSerializer(allow_null=True)
    items = ItemTriageSerializer(many=True)


def triage_data(triage) -> dict:
    return {
        "reviewUrn": triage.item.urn,
        "classification": triage.classification,
        "recommendations": triage.recommendations,
        "proposals": [agent_action_data(action) for action in triage.proposals],
    }


def triages_data(triages: list) -> dict:
    items = [triage_data(triage) for triage in triages]
    first = items[0] if items else {"reviewUrn": None, "classification": None, "recommendations": [], "proposals": []}
    return {**first, "items": items}


# --- request bodies ----------------------------------------------------------------------------------------


class TriageRequestSerializer(ClosedSerializer):
    reviewUrn = serializers.CharField(required=False, trim_whitespace=False)  # noqa: N815
    caseUrn = serializers.CharField(required=False, trim_whitespace=False)  # noqa: N815

    def validate(self, attrs):
        if len(attrs) != 1:
            raise serializers.ValidationError({"reviewUrn": "Exactly one of reviewUrn and caseUrn."})
        return attrs


class ApproveRequestSerializer(ClosedSerializer):
    planHash = serializers.RegexField(r"^[0-9a-f]{64}\Z", help_text="The plan hash you were shown.")  # noqa: N815
    reason = serializers.CharField(required=False, max_length=REASON_MAX_LENGTH)


class RejectRequestSerializer(ClosedSerializer):
    reason = serializers.CharField(max_length=REASON_MAX_LENGTH)
