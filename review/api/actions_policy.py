"""HTTP routes of the review actions that change the case's rules or groups: ``relax`` and ``split`` (spec 001
§ Operator workflow, step 3). Parse → call one service → render the item (docs/review.md § Relax, § Split)."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from nexa.platform.openapi import problem, urn_schema, with_schema
from nexa.platform.strict_fields import ClosedSerializer
from nexa.platform.views import NexaAPIView
from policies.selectors import RULE_SCHEMAS
from review import services
from review.api.serializers import REASON_MAX_LENGTH, ReviewItemSerializer, review_item_data
from review.api.views import REVIEW_URN_PARAMETER, SUPERVISOR
from review.relaxation import RELAXABLE_RULES

SPLIT_MAX_GROUPS = 50
SPLIT_MAX_PASSENGERS = 500

RELAX_FIELDS_SCHEMA = {
    "type": "object",
    "properties": {name: RULE_SCHEMAS[name] for name in RELAXABLE_RULES},
    "additionalProperties": False,
    "minProperties": 1,
    "description": "The rules to relax and their new values, each looser than the policy resolving for the "
    "item's passengers (a larger distance, fewer stars, a higher rate in the policy's currency, more people per "
    "room). An unknown or non-relaxable rule, a bad value or a tightening is a 422 naming it.",
    "example": {"maxDistanceKm": 40},
}
SPLIT_INTO_SCHEMA = {
    "type": "array",
    "minItems": 2,
    "maxItems": SPLIT_MAX_GROUPS,
    "items": {"type": "array", "minItems": 1, "items": urn_schema("subcase")},
    "description": "The new groups: every passenger of the item's group exactly once (sub-case URNs; a passenger "
    "missing, listed twice or of another group is a 422 naming them).",
}


class ReviewRelaxSerializer(ClosedSerializer):
    """The rules to relax for the item's case only, and why."""

    fields = with_schema(serializers.DictField(), RELAX_FIELDS_SCHEMA)
    reason = serializers.CharField(max_length=REASON_MAX_LENGTH, help_text="Why; kept in the audit log.")


class ReviewSplitSerializer(ClosedSerializer):
    """The new groups the item's passenger group is split into, and why."""

    into = with_schema(
        serializers.ListField(
            child=serializers.ListField(child=serializers.CharField(trim_whitespace=False), allow_empty=True),
            max_length=SPLIT_MAX_GROUPS,
        ),
        SPLIT_INTO_SCHEMA,
    )
    reason = serializers.CharField(max_length=REASON_MAX_LENGTH, help_text="Why; kept in the audit log.")

    def validate_into(self, value):
        if sum(len(group) for group in value) > SPLIT_MAX_PASSENGERS:
            raise serializers.ValidationError(f"At most {SPLIT_MAX_PASSENGERS} passengers.")
        return value


ACTION_CONFLICT = problem(
    "review-claimed: another operator holds a live claim (assignedTo); illegal-transition: the item is RESOLVED; "
    "relax-not-applicable (relax: the category), nothing-to-reallocate, no-demand-wave, nothing-to-split, "
    "regroup-not-allowed; a sub-case moved or locked meanwhile (its own 409)."
)


class ManualReviewRelaxView(NexaAPIView):
    permission_classes = [SUPERVISOR]

    @extend_schema(
        operation_id="manual_review_relax",
        summary="Relax the policy for this case only, and allocate the item's passengers again",
        description=(
            "Only on an unresolved item you hold (anyone else's live claim: 409 with assignedTo; an item nobody "
            "holds is claimed for you). Each rule becomes a relaxation of this case's policy only (GET "
            "/v1/policies/resolve?caseUrn=… lists it; other cases are unaffected), audited; then the item's "
            "passengers in MANUAL_REVIEW are allocated again in their demand wave: the placed ones become "
            "ALLOCATED in a new allocation (book it with book-rooms), the rest stay in MANUAL_REVIEW. The item "
            "stays open with an actions entry whose result gives outcome (ALLOCATED, PARTIALLY_ALLOCATED, "
            "STILL_UNPLACEABLE) and allocationUrn; resolve it RELAXED after. review:relaxed."
        ),
        parameters=[REVIEW_URN_PARAMETER],
        request=ReviewRelaxSerializer,
        responses={
            200: ReviewItemSerializer,
            409: ACTION_CONFLICT,
            422: problem("fields: an unknown or non-relaxable rule, a bad value, or a value that does not relax."),
        },
    )
    def post(self, request, review_urn: str):
        body = ReviewRelaxSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        item = services.review_item_relax(
            principal=request.auth,
            review_urn=review_urn,
            fields=body.validated_data["fields"],
            reason=body.validated_data["reason"],
        )
        return Response(review_item_data(item))


class ManualReviewSplitView(NexaAPIView):
    permission_classes = [SUPERVISOR]

    @extend_schema(
        operation_id="manual_review_split",
        summary="Split the item's passenger group into new groups",
        description=(
            "Only on an unresolved item you hold (as relax). The item's group is replaced by one new group per "
            "entry of into; every passenger keeps their status (audited, subcase:state-changed). Typical for a "
            "MIXED_TIER_GROUP: one group per tier. The item stays open with an actions entry naming the new "
            "groups; resolve it SPLIT after, and the passengers go back to GROUPED for a new demand. review:split."
        ),
        parameters=[REVIEW_URN_PARAMETER],
        request=ReviewSplitSerializer,
        responses={
            200: ReviewItemSerializer,
            409: ACTION_CONFLICT,
            422: problem("into: a passenger missing, listed twice, or not of the item's group; fewer than two groups."),
        },
    )
    def post(self, request, review_urn: str):
        body = ReviewSplitSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        item = services.review_item_split(
            principal=request.auth,
            review_urn=review_urn,
            into=body.validated_data["into"],
            reason=body.validated_data["reason"],
        )
        return Response(review_item_data(item))
