"""Wire shapes of the review routes: the item (spec 001 § Review item shape, plus its SLA, lifecycle and
links), the request bodies (closed: an unknown member is a 400 naming it) and the list filters."""

from rest_framework import serializers

from nexa.platform.filters import ChoiceFilter, QueryField, QueryFilters, UrnFilter
from nexa.platform.openapi import urn_schema, with_schema
from nexa.platform.strict_fields import ClosedSerializer
from nexa.platform.urns import OPAQUE_URN_MAX_LENGTH, OPAQUE_URN_PATTERN, is_opaque_urn
from review.models import ReviewCategory, ReviewItem, ReviewPriority, ReviewResolution, ReviewState

REASON_MAX_LENGTH = 2000
OPERATOR_URN_SCHEMA = {"type": "string", "pattern": OPAQUE_URN_PATTERN, "maxLength": OPAQUE_URN_MAX_LENGTH}


def _iso(value):
    return serializers.DateTimeField().to_representation(value) if value else None


# --- the item --------------------------------------------------------------------------------------------


class AttemptedHotelSerializer(serializers.Serializer):
    hotelUrn = serializers.CharField(allow_null=True, help_text="urn:nexa:hotel:… (null: a vendor-only hotel)")  # noqa: N815
    reason = serializers.CharField(allow_blank=True, help_text="e.g. hotel-full, payment-refused")
    providerError = serializers.CharField(required=False, help_text="The provider's own error, when it gave one.")  # noqa: N815


class ReviewLinksSerializer(serializers.Serializer):
    caseUrn = with_schema(serializers.CharField(), urn_schema("case"))  # noqa: N815
    demandUrn = with_schema(serializers.CharField(allow_null=True), {**urn_schema("demand"), "nullable": True})  # noqa: N815
    allocationUrn = with_schema(  # noqa: N815
        serializers.CharField(allow_null=True), {**urn_schema("allocation"), "nullable": True}
    )
    sagaUrn = with_schema(serializers.CharField(allow_null=True), {**urn_schema("saga"), "nullable": True})  # noqa: N815
    reservationUrns = serializers.ListField(child=with_schema(serializers.CharField(), urn_schema("reservation")))  # noqa: N815
    groupUrns = serializers.ListField(child=with_schema(serializers.CharField(), urn_schema("group")))  # noqa: N815


class ReviewActionSerializer(serializers.Serializer):
    action = serializers.CharField(help_text="rebook | relax | split | override")
    params = serializers.DictField(help_text="What the action was asked to do (e.g. {hotelUrn}).")
    reason = serializers.CharField(help_text="Why, as the operator said it.")
    by = serializers.CharField(help_text="Operator URN of the actor.")
    at = serializers.DateTimeField()
    agentActionUrn = serializers.CharField(  # noqa: N815
        allow_null=True, help_text="The agent action it executed (urn:nexa:agent-action:…), if any."
    )
    result = serializers.DictField(
        help_text="What it did: rebook {allocationUrn, hotelUrn, sagaUrns, runs, subCaseUrns}; override "
        "{hotelUrn, reservationUrns, subCaseUrns, nightlyRate, checkIn, nights}; relax {allocationUrn, outcome "
        "(whether everyone was placed)}; split {groups (the new groups)}."
    )


class ReviewItemSerializer(serializers.Serializer):
    urn = with_schema(serializers.CharField(), urn_schema("review"))
    caseUrn = with_schema(serializers.CharField(), urn_schema("case"))  # noqa: N815
    category = serializers.ChoiceField(choices=ReviewCategory.choices)
    priority = serializers.ChoiceField(choices=ReviewPriority.choices)
    state = serializers.ChoiceField(choices=ReviewState.choices)
    version = serializers.IntegerField(min_value=1, help_text="Bumped by every change of the item.")
    reason = serializers.CharField(allow_blank=True, help_text="What happened, as the failing domain said it.")
    attemptedHotels = AttemptedHotelSerializer(many=True)  # noqa: N815
    affectedGroups = serializers.ListField(child=serializers.CharField(), help_text='Group labels, e.g. "GRP-3".')  # noqa: N815
    affectedSubCaseUrns = serializers.ListField(child=with_schema(serializers.CharField(), urn_schema("subcase")))  # noqa: N815
    recommendations = serializers.ListField(
        child=serializers.DictField(),
        help_text="[{action, …, source}] ranked by viability; filled by the exception agent (empty until then).",
    )
    failure = serializers.DictField(help_text="The failing domain's own facts (a saga's failed step and attempts).")
    assignedTo = serializers.CharField(allow_null=True, help_text="Operator URN of the claimer (or assignee).")  # noqa: N815
    claimedUntil = serializers.DateTimeField(allow_null=True, help_text="The claim's lease ends then.")  # noqa: N815
    slaDueAt = serializers.DateTimeField(help_text="The SLA of the item's priority is breached then.")  # noqa: N815
    escalations = serializers.IntegerField(min_value=0)
    createdAt = serializers.DateTimeField()  # noqa: N815
    resolvedAt = serializers.DateTimeField(allow_null=True)  # noqa: N815
    resolvedBy = serializers.CharField(allow_null=True)  # noqa: N815
    resolution = serializers.ChoiceField(choices=ReviewResolution.choices, allow_null=True)
    resolutionReason = serializers.CharField(allow_null=True)  # noqa: N815
    actions = ReviewActionSerializer(many=True, help_text="The actions taken on the item, oldest first.")
    acceptedAgentActionUrn = with_schema(  # noqa: N815
        serializers.CharField(allow_null=True),
        {**urn_schema("agent-action"), "nullable": True, "description": "The agent action executed on the item."},
    )
    links = ReviewLinksSerializer()


def review_item_data(item: ReviewItem) -> dict:
    return {
        "urn": item.urn,
        "caseUrn": item.case.urn,
        "category": item.category,
        "priority": item.priority,
        "state": item.state,
        "version": item.version,
        "reason": item.reason,
        "attemptedHotels": item.attempted_hotels,
        "affectedGroups": item.affected_groups,
        "affectedSubCaseUrns": item.affected_subcase_urns,
        "recommendations": item.recommendations,
        "failure": item.failure,
        "assignedTo": item.assigned_to or None,
        "claimedUntil": _iso(item.claimed_until),
        "slaDueAt": _iso(item.sla_due_at),
        "escalations": item.escalations,
        "createdAt": _iso(item.created_at),
        "resolvedAt": _iso(item.resolved_at),
        "resolvedBy": item.resolved_by or None,
        "resolution": item.resolution or None,
        "resolutionReason": item.resolution_reason if item.resolution else None,
        "actions": item.actions,
        "acceptedAgentActionUrn": item.accepted_agent_action_urn or None,
        "links": {
            "caseUrn": item.case.urn,
            "demandUrn": item.demand_urn or None,
            "allocationUrn": item.allocation_urn or None,
            "sagaUrn": item.saga_urn or None,
            "reservationUrns": item.reservation_urns,
            "groupUrns": item.affected_group_urns,
        },
    }


# --- request bodies ----------------------------------------------------------------------------------------


def _reason_field(help_text: str) -> serializers.CharField:
    return serializers.CharField(max_length=REASON_MAX_LENGTH, help_text=help_text)


class ReviewResolveSerializer(ClosedSerializer):
    resolution = serializers.ChoiceField(choices=ReviewResolution.choices)
    reason = _reason_field("Why; kept in the audit log with the actor.")


class ReviewAssignSerializer(ClosedSerializer):
    operatorUrn = with_schema(  # noqa: N815
        serializers.CharField(trim_whitespace=False, help_text="An active OPS_SUPERVISOR or ADMIN of your airline."),
        OPERATOR_URN_SCHEMA,
    )
    reason = _reason_field("Why this operator; kept in the audit log.")

    def validate_operatorUrn(self, value):  # noqa: N802
        if not is_opaque_urn(value):
            raise serializers.ValidationError("An operator URN (urn:…, at most 255 characters).")
        return value


class ReviewEscalateSerializer(ClosedSerializer):
    reason = _reason_field("Why the item needs more attention; kept in the audit log.")


# --- filters -----------------------------------------------------------------------------------------------


class _OperatorUrnFilter(QueryField):
    def to_internal_value(self, data):
        if not is_opaque_urn(data):
            raise serializers.ValidationError("An operator URN (urn:…, at most 255 characters).")
        return data


class ReviewListFilters(QueryFilters):
    state = ChoiceFilter(ReviewState.values, empty_is_absent=True)
    category = ChoiceFilter(ReviewCategory.values, empty_is_absent=True)
    priority = ChoiceFilter(ReviewPriority.values, empty_is_absent=True)
    caseUrn = UrnFilter("case", empty_is_absent=True)  # noqa: N815
    assignedTo = _OperatorUrnFilter(empty_is_absent=True)  # noqa: N815
