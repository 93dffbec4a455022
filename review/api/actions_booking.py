"""The review actions that book (spec 001 § Operator workflow step 3): ``rebook`` and ``override``.

Parse → call one service → render the item (docs/review.md § Rebook, § Override). OPS_SUPERVISOR+,
idempotent POSTs; the item is answered with the action recorded in its ``actions``.
"""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework import status as http_status
from rest_framework.response import Response

from nexa.platform.openapi import NON_BLANK, problem, urn_schema, with_schema
from nexa.platform.strict_fields import ClosedSerializer
from nexa.platform.urns import InvalidUrn, parse_urn
from nexa.platform.views import NexaAPIView
from review import services
from review.api.serializers import REASON_MAX_LENGTH, ReviewItemSerializer, review_item_data
from review.api.views import REVIEW_URN_PARAMETER, SUPERVISOR

OFFER_ID_MAX_LENGTH = 300
_REASON = {"type": "string", "pattern": NON_BLANK, "maxLength": REASON_MAX_LENGTH}


def _reason_field() -> serializers.CharField:
    return with_schema(
        serializers.CharField(max_length=REASON_MAX_LENGTH, help_text="Why; kept on the item and in the audit log."),
        _REASON,
    )


def _hotel_urn_field() -> serializers.CharField:
    return with_schema(
        serializers.CharField(trim_whitespace=False, help_text="A hotel of your airline's catalog."),
        urn_schema("hotel"),
    )


def _valid_hotel_urn(value: str) -> str:
    try:
        parse_urn(value, "hotel")
    except InvalidUrn as error:
        raise serializers.ValidationError(error.message) from None
    return value


class ReviewRebookSerializer(ClosedSerializer):
    """The hotel to book the item's passengers at, and why (unknown members are refused)."""

    hotelUrn = _hotel_urn_field()  # noqa: N815
    reason = _reason_field()

    def validate_hotelUrn(self, value):  # noqa: N802
        return _valid_hotel_urn(value)


class ReviewOverrideSerializer(ClosedSerializer):
    """The hotel and the offer its front desk confirmed, and why (unknown members are refused)."""

    hotelUrn = _hotel_urn_field()  # noqa: N815
    providerOfferId = with_schema(  # noqa: N815
        serializers.CharField(
            max_length=OFFER_ID_MAX_LENGTH,
            help_text="The offer the front desk confirmed: an offerId of the hotel search (or of the item's "
            "allocation), e.g. stayhub~… or contract~urn:nexa:contract:…",
        ),
        {"type": "string", "pattern": NON_BLANK, "maxLength": OFFER_ID_MAX_LENGTH},
    )
    reason = _reason_field()

    def validate_hotelUrn(self, value):  # noqa: N802
        return _valid_hotel_urn(value)


ACTOR_CONFLICT = problem(
    "review-claimed: another operator holds a live claim (assignedTo); illegal-transition: the item is RESOLVED; "
    "nothing-to-book: no passenger of the item is still in MANUAL_REVIEW; a passenger moved or is locked "
    "meanwhile (its own 409)."
)


class ManualReviewRebookView(NexaAPIView):
    permission_classes = [SUPERVISOR]

    @extend_schema(
        operation_id="manual_review_rebook",
        summary="Rebook the item's passengers at a hotel (through the booking saga)",
        description=(
            "The item's passengers still in MANUAL_REVIEW are planned at that hotel by the allocation engine (its "
            "contract rooms or its vendor offers from the hotel search, compliant with the case's policy for their "
            "tier, case relaxations included; unrelated passengers never share a room, families stay together, "
            "minors with a guardian, PRM passengers in accessible rooms) and booked there by one room saga per group, "
            "as book-rooms does: MANUAL_REVIEW → ALLOCATED → BOOKING, then BOOKED and NOTIFIED as the sagas run. "
            "202 with the item: its new actions entry holds the allocationUrn and the sagaUrns started (progress at "
            "GET /v1/orchestration/cases/{case_urn}/progress). An item nobody holds is claimed for you; someone "
            "else's live claim is a 409. 422 when the hotel cannot take them, saying why (nothing written). The "
            "item stays open: resolve it REBOOKED when done."
        ),
        parameters=[REVIEW_URN_PARAMETER],
        request=ReviewRebookSerializer,
        responses={
            202: ReviewItemSerializer,
            409: ACTOR_CONFLICT,
            422: problem(
                "The hotel cannot take them: not a hotel of your airline's catalog, at another airport, nothing on "
                "offer for the stay, not compliant with the policy, not enough (accessible) rooms, a group without "
                "a policy or of mixed tiers; or the passengers' stay is unknown."
            ),
            503: problem("The policies could not be read, or no hotel vendor answered (failedDomain)."),
        },
    )
    def post(self, request, review_urn: str):
        body = ReviewRebookSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        item = services.review_item_rebook(
            principal=request.auth,
            review_urn=review_urn,
            hotel_urn=body.validated_data["hotelUrn"],
            reason=body.validated_data["reason"],
        )
        return Response(
            review_item_data(item),
            status=http_status.HTTP_202_ACCEPTED,
            headers={"Location": f"/v1/orchestration/cases/{item.case.urn}/progress"},
        )


class ManualReviewOverrideView(NexaAPIView):
    permission_classes = [SUPERVISOR]

    @extend_schema(
        operation_id="manual_review_override",
        summary="Override with a manual booking (front-desk confirmation)",
        description=(
            "Records the booking you confirmed with the hotel: a manual reservation (CONFIRMED, source MANUAL, no "
            "vendor call, the offer's nightly rate, providerOfferId as its confirmation reference) per PNR party of "
            "the item's passengers still in MANUAL_REVIEW, for their demand's stay. They become BOOKED, get their "
            "hotel voucher and become NOTIFIED. 200 with the item: its new actions entry holds the reservationUrns. "
            "The offer is one the item's allocation stored, else found again at the vendor (a contract offer from "
            "the contract); no policy check — this is the operator's override. An item nobody holds is claimed for "
            "you; someone else's live claim is a 409. The item stays open: resolve it OVERRIDDEN when done."
        ),
        parameters=[REVIEW_URN_PARAMETER],
        request=ReviewOverrideSerializer,
        responses={
            200: ReviewItemSerializer,
            409: problem(
                "As for rebook; room-night-taken: a passenger already has a room one of those nights "
                "(reservationUrn); subcase-not-bookable: a passenger moved meanwhile."
            ),
            422: problem(
                "Not a hotel of your airline's catalog; providerOfferId is not an offer known for that hotel and "
                "stay, or is another hotel's; or the passengers' stay is unknown."
            ),
        },
    )
    def post(self, request, review_urn: str):
        body = ReviewOverrideSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        item = services.review_item_override(
            principal=request.auth,
            review_urn=review_urn,
            hotel_urn=body.validated_data["hotelUrn"],
            provider_offer_id=body.validated_data["providerOfferId"],
            reason=body.validated_data["reason"],
        )
        return Response(review_item_data(item))
