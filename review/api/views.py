"""HTTP routes of manual review: parse → call one service or selector → render the item.

Spec 001's routes under ``/v1/manual-review`` and spec 000's queue under ``/v1/booking/manual-review`` work
on the same items (docs/review.md). Every route is OPS_SUPERVISOR+; every POST answers the item.
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response

from nexa.platform.openapi import EMPTY_IS_ABSENT, OPAQUE_URN_PATTERN, problem, urn_schema
from nexa.platform.pagination import extend_schema_paginated, paginate
from nexa.platform.roles import MinRole, Role
from nexa.platform.urns import OPAQUE_URN_MAX_LENGTH
from nexa.platform.views import NexaAPIView
from review import selectors, services
from review.api.serializers import (
    REASON_MAX_LENGTH,
    ReviewAssignSerializer,
    ReviewEscalateSerializer,
    ReviewItemSerializer,
    ReviewListFilters,
    ReviewResolveSerializer,
    review_item_data,
)
from review.models import ReviewCategory, ReviewPriority, ReviewResolution, ReviewState

SUPERVISOR = MinRole(Role.OPS_SUPERVISOR)

REVIEW_URN_PARAMETER = OpenApiParameter(
    "review_urn", urn_schema("review"), OpenApiParameter.PATH, description="urn:nexa:review:<uuid>"
)
LIST_PARAMETERS = [
    OpenApiParameter(
        "state", OpenApiTypes.STR, enum=ReviewState.values, description="Item state.", extensions=EMPTY_IS_ABSENT
    ),
    OpenApiParameter(
        "category", OpenApiTypes.STR, enum=ReviewCategory.values, description="Category.", extensions=EMPTY_IS_ABSENT
    ),
    OpenApiParameter(
        "priority", OpenApiTypes.STR, enum=ReviewPriority.values, description="Priority.", extensions=EMPTY_IS_ABSENT
    ),
    OpenApiParameter("caseUrn", urn_schema("case"), description="Only items of this case.", extensions=EMPTY_IS_ABSENT),
    OpenApiParameter(
        "assignedTo",
        {"type": "string", "pattern": OPAQUE_URN_PATTERN, "maxLength": OPAQUE_URN_MAX_LENGTH},
        description="Only items claimed by (or assigned to) this operator URN.",
        extensions=EMPTY_IS_ABSENT,
    ),
]

_REASON_SCHEMA = {"type": "string", "minLength": 1, "maxLength": REASON_MAX_LENGTH, "pattern": r"[^\s\x1c-\x1f]"}


def _closed_body(properties: dict, description: str) -> dict:
    """A request body whose validator refuses unknown members, stated so (additionalProperties: false)."""
    return {
        "application/json": {
            "type": "object",
            "description": description,
            "properties": properties,
            "required": list(properties),
            "additionalProperties": False,
        }
    }


RESOLVE_BODY = _closed_body(
    {"resolution": {"type": "string", "enum": ReviewResolution.values}, "reason": _REASON_SCHEMA},
    "How the item was resolved, and why (audited).",
)
ASSIGN_BODY = _closed_body(
    {
        "operatorUrn": {"type": "string", "pattern": OPAQUE_URN_PATTERN, "maxLength": OPAQUE_URN_MAX_LENGTH},
        "reason": _REASON_SCHEMA,
    },
    "The operator (an active OPS_SUPERVISOR or ADMIN of your airline) and why.",
)
ESCALATE_BODY = _closed_body({"reason": _REASON_SCHEMA}, "Why the item needs more attention (audited).")

CLAIM_CONFLICT = problem(
    "review-claimed: another operator holds a live claim (assignedTo, claimedUntil); illegal-transition: the "
    "item is RESOLVED."
)
ACTOR_CONFLICT = problem(
    "review-claimed: another operator holds the item (assignedTo); review-not-claimed: claim it first; "
    "illegal-transition: already RESOLVED (currentState); a sub-case moved or locked meanwhile (its own 409)."
)


def _list(request, *, unresolved_only: bool):
    filters = ReviewListFilters.parse(request)
    items = selectors.review_items_list(
        principal=request.auth,
        state=filters["state"],
        category=filters["category"],
        priority=filters["priority"],
        case_urn=filters["caseUrn"],
        assigned_to=filters["assignedTo"],
        unresolved_only=unresolved_only,
    )
    return paginate(request, items, ordering=("sla_due_at", "id"), serialize=review_item_data)


def _resolve(request, review_urn: str) -> Response:
    body = ReviewResolveSerializer(data=request.data)
    body.is_valid(raise_exception=True)
    item = services.review_item_resolve(
        principal=request.auth,
        review_urn=review_urn,
        resolution=body.validated_data["resolution"],
        reason=body.validated_data["reason"],
    )
    return Response(review_item_data(item))


RESOLVE_DESCRIPTION = (
    "Only the claimer (anyone else: 409). The item becomes RESOLVED with the resolution, the reason and the "
    "actor (audited, review:resolved). Its sub-cases still in MANUAL_REVIEW go back into the flow: NO_ACTION, "
    "RELAXED and SPLIT return them to GROUPED (demand and allocation take them again), CANCELLED cancels them, "
    "REBOOKED and OVERRIDDEN leave them as the booking left them."
)


# --- spec 001: /v1/manual-review ---------------------------------------------------------------------------


class ManualReviewListView(NexaAPIView):
    permission_classes = [SUPERVISOR]

    @extend_schema_paginated(
        ReviewItemSerializer,
        operation_id="manual_review_list",
        summary="Review items",
        description="Every state unless filtered, soonest SLA due time first. A bad filter is a 400 naming it.",
        parameters=LIST_PARAMETERS,
    )
    def get(self, request):
        return _list(request, unresolved_only=False)


class ManualReviewDetailView(NexaAPIView):
    permission_classes = [SUPERVISOR]

    @extend_schema(
        operation_id="manual_review_get",
        summary="One review item",
        description="What was attempted, why it failed, the recommendations and the links to case, wave, "
        "allocation and reservations.",
        parameters=[REVIEW_URN_PARAMETER],
        responses={200: ReviewItemSerializer},
    )
    def get(self, request, review_urn: str):
        return Response(review_item_data(selectors.review_item_get(principal=request.auth, review_urn=review_urn)))


class ManualReviewClaimView(NexaAPIView):
    permission_classes = [SUPERVISOR]

    @extend_schema(
        operation_id="manual_review_claim",
        summary="Claim a review item (a lease)",
        description=(
            "The item becomes CLAIMED by you for a lease (15 minutes by default); claiming again extends it. "
            "While the lease runs, anyone else's claim is a 409 naming assignedTo; after it lapses anyone may claim."
        ),
        parameters=[REVIEW_URN_PARAMETER],
        request=None,
        responses={200: ReviewItemSerializer, 409: CLAIM_CONFLICT},
    )
    def post(self, request, review_urn: str):
        item = services.review_item_claim(principal=request.auth, review_urn=review_urn)
        return Response(review_item_data(item))


class ManualReviewResolveView(NexaAPIView):
    permission_classes = [SUPERVISOR]

    @extend_schema(
        operation_id="manual_review_resolve",
        summary="Resolve a review item",
        description=RESOLVE_DESCRIPTION,
        parameters=[REVIEW_URN_PARAMETER],
        request=RESOLVE_BODY,
        responses={200: ReviewItemSerializer, 409: ACTOR_CONFLICT},
    )
    def post(self, request, review_urn: str):
        return _resolve(request, review_urn)


# --- spec 000: /v1/booking/manual-review ------------------------------------------------------------------


class BookingReviewQueueView(NexaAPIView):
    permission_classes = [SUPERVISOR]

    @extend_schema_paginated(
        ReviewItemSerializer,
        operation_id="booking_manual_review_queue",
        summary="The review queue",
        description="Items still to work (OPEN, CLAIMED, ESCALATED) unless state is given, soonest SLA due time "
        "first; the same items and filters as GET /v1/manual-review.",
        parameters=LIST_PARAMETERS,
    )
    def get(self, request):
        return _list(request, unresolved_only=True)


class BookingReviewAssignView(NexaAPIView):
    permission_classes = [SUPERVISOR]

    @extend_schema(
        operation_id="booking_manual_review_assign",
        summary="Assign a review item to an operator",
        description=(
            "A claim on the operator's behalf (a fresh lease), replacing anyone's claim; audited with the reason, "
            "review:claimed. The operator must be an active OPS_SUPERVISOR or ADMIN of your airline (else 422 "
            "naming operatorUrn). A RESOLVED item is a 409."
        ),
        parameters=[REVIEW_URN_PARAMETER],
        request=ASSIGN_BODY,
        responses={
            200: ReviewItemSerializer,
            409: problem("illegal-transition: the item is RESOLVED."),
            422: problem("operatorUrn is not an active OPS_SUPERVISOR or ADMIN of your airline."),
        },
    )
    def post(self, request, review_urn: str):
        body = ReviewAssignSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        item = services.review_item_assign(
            principal=request.auth,
            review_urn=review_urn,
            operator_urn=body.validated_data["operatorUrn"],
            reason=body.validated_data["reason"],
        )
        return Response(review_item_data(item))


class BookingReviewResolveView(NexaAPIView):
    permission_classes = [SUPERVISOR]

    @extend_schema(
        operation_id="booking_manual_review_resolve",
        summary="Resolve a review item",
        description=RESOLVE_DESCRIPTION,
        parameters=[REVIEW_URN_PARAMETER],
        request=RESOLVE_BODY,
        responses={200: ReviewItemSerializer, 409: ACTOR_CONFLICT},
    )
    def post(self, request, review_urn: str):
        return _resolve(request, review_urn)


class BookingReviewEscalateView(NexaAPIView):
    permission_classes = [SUPERVISOR]

    @extend_schema(
        operation_id="booking_manual_review_escalate",
        summary="Escalate a review item",
        description=(
            "Priority one level up (LOW → MEDIUM → HIGH; HIGH stays HIGH), state ESCALATED, the SLA clock restarts "
            "at the new priority's SLA; a claim is kept. Audited with the reason, review:escalated. A RESOLVED item "
            "is a 409."
        ),
        parameters=[REVIEW_URN_PARAMETER],
        request=ESCALATE_BODY,
        responses={200: ReviewItemSerializer, 409: problem("illegal-transition: the item is RESOLVED.")},
    )
    def post(self, request, review_urn: str):
        body = ReviewEscalateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        item = services.review_item_escalate(
            principal=request.auth, review_urn=review_urn, reason=body.validated_data["reason"]
        )
        return Response(review_item_data(item))
