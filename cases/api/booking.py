"""HTTP routes of booking that need cases (docs/booking.md § Booking): parse → call one service → render.

* ``POST /v1/cases/{case_urn}/book-rooms`` — book a PLANNED allocation: one room saga per assignment (202;
  progress at ``GET /v1/orchestration/cases/{case_urn}/progress``).
* ``POST /v1/booking/manual-reservations`` — a reservation a supervisor made out of band (201, CONFIRMED,
  source MANUAL), in the reservation detail shape.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework import status as http_status
from rest_framework.response import Response

from cases import selectors, services
from cases.api.reservations import ReservationSerializer, reservation_data
from cases.api.views import CASE_URN_PARAMETER, SUPERVISOR
from cases.compensation import ISO_4217
from nexa.platform.openapi import NON_BLANK, problem, urn_schema, with_schema
from nexa.platform.problems import validation_problem
from nexa.platform.urns import InvalidUrn, parse_urn
from nexa.platform.views import NexaAPIView

MANUAL_MAX_OCCUPANTS = 20
MAX_NIGHTS = 30
REASON_MAX = 2000
CONFIRMATION_MAX = 80
AMOUNT_PATTERN = r"^[0-9]{1,8}(\.[0-9]{1,2})?$"


def _closed(body: Any, fields: tuple[str, ...], errors: list[dict[str, str]]) -> dict[str, Any]:
    """The body as an object; every member it should not have is named (strict input)."""
    if not isinstance(body, dict):
        errors.append({"field": "body", "message": "must be a JSON object"})
        return {}
    errors += [{"field": name, "message": "Unknown member."} for name in sorted(set(body) - set(fields))[:20]]
    return body


def _urn_id(raw: Any, *, field: str, kind: str, errors: list[dict[str, str]]):
    if raw is None:
        errors.append({"field": field, "message": "is required"})
        return None
    try:
        return parse_urn(raw, kind).id
    except InvalidUrn as error:
        errors.append({"field": field, "message": error.message})
        return None


# --- book-rooms -------------------------------------------------------------------------------------------


class BookRoomsRequestSerializer(serializers.Serializer):
    allocationUrn = with_schema(serializers.CharField(), urn_schema("allocation"))  # noqa: N815

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        errors: list[dict[str, str]] = []
        body = _closed(data, ("allocationUrn",), errors)
        allocation_id = _urn_id(body.get("allocationUrn"), field="allocationUrn", kind="allocation", errors=errors)
        if errors:
            raise validation_problem(errors)
        return {"allocation_id": allocation_id}


class BookRoomsRunSerializer(serializers.Serializer):
    sagaUrn = serializers.CharField()  # noqa: N815
    groupUrn = serializers.CharField()  # noqa: N815
    subCaseUrns = serializers.ListField(child=serializers.CharField())  # noqa: N815


class BookRoomsLeftOutSerializer(serializers.Serializer):
    groupUrn = serializers.CharField()  # noqa: N815
    subCaseUrn = serializers.CharField()  # noqa: N815
    status = serializers.CharField()
    detail = serializers.CharField()


class BookRoomsAcceptedSerializer(serializers.Serializer):
    allocationUrn = serializers.CharField()  # noqa: N815
    caseUrn = serializers.CharField()  # noqa: N815
    runs = BookRoomsRunSerializer(many=True, help_text="one room saga per assignment (a group at one hotel)")
    partialFailures = BookRoomsLeftOutSerializer(  # noqa: N815
        many=True, help_text="occupants no longer ALLOCATED, left out of the booking"
    )


class BookRoomsView(NexaAPIView):
    permission_classes = [SUPERVISOR]

    @extend_schema(
        operation_id="cases_book_rooms",
        summary="Book a planned allocation's rooms (one saga per group)",
        description=(
            "202 at once: one room saga per assignment (HOLD → PAY → CONFIRM → VOUCHER → NOTIFY; a refused "
            "hold tries the assignment's alternatives), its sub-cases ALLOCATED → BOOKING and the allocation → "
            "BOOKING. Progress at GET /v1/orchestration/cases/{case_urn}/progress (Location). The same request "
            "with its Idempotency-Key again returns the same answer; a second book-rooms of the allocation is a "
            "409 (allocation-not-planned), as is one of an allocation that is not PLANNED. 404: no such "
            "allocation of this case."
        ),
        parameters=[CASE_URN_PARAMETER],
        request=BookRoomsRequestSerializer,
        responses={
            202: BookRoomsAcceptedSerializer,
            400: problem("Malformed body or URN."),
            404: problem("No such case or allocation (or another airline's)."),
            409: problem("The allocation is not PLANNED, or a sub-case changed meanwhile."),
        },
    )
    def post(self, request, case_urn: str):
        case = selectors.case_get(principal=request.auth, case_urn=case_urn)
        body = BookRoomsRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        answer = services.case_book_rooms(principal=request.auth, case=case, **body.validated_data)
        return Response(
            BookRoomsAcceptedSerializer(answer).data,
            status=http_status.HTTP_202_ACCEPTED,
            headers={"Location": f"/v1/orchestration/cases/{case.urn}/progress"},
        )


# --- manual reservations ------------------------------------------------------------------------------------


class ManualReservationRateSerializer(serializers.Serializer):
    """The rate a supervisor booked at (request side: a positive amount, at most two decimals)."""

    amount = with_schema(serializers.CharField(), {"type": "string", "pattern": AMOUNT_PATTERN, "example": "95.00"})
    currency = with_schema(serializers.CharField(), {"type": "string", "pattern": r"^[A-Z]{3}$", "example": "EUR"})


class ManualReservationRequestSerializer(serializers.Serializer):
    """The body; validation names every invalid field at once and hands the service typed values."""

    caseUrn = with_schema(serializers.CharField(), urn_schema("case"))  # noqa: N815
    hotelUrn = with_schema(serializers.CharField(), urn_schema("hotel"))  # noqa: N815
    subCaseUrns = serializers.ListField(  # noqa: N815
        child=with_schema(serializers.CharField(), urn_schema("subcase")), min_length=1, max_length=MANUAL_MAX_OCCUPANTS
    )
    checkIn = serializers.DateField()  # noqa: N815
    nights = serializers.IntegerField(min_value=1, max_value=MAX_NIGHTS)
    confirmationNumber = with_schema(  # noqa: N815
        serializers.CharField(), {"type": "string", "pattern": NON_BLANK, "maxLength": CONFIRMATION_MAX}
    )
    rate = ManualReservationRateSerializer(help_text="per room per night")
    reason = with_schema(serializers.CharField(), {"type": "string", "pattern": NON_BLANK, "maxLength": REASON_MAX})

    FIELDS = ("caseUrn", "hotelUrn", "subCaseUrns", "checkIn", "nights", "confirmationNumber", "rate", "reason")

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        errors: list[dict[str, str]] = []
        body = _closed(data, self.FIELDS, errors)
        case_urn = body.get("caseUrn")
        _urn_id(case_urn, field="caseUrn", kind="case", errors=errors)
        hotel_id = _urn_id(body.get("hotelUrn"), field="hotelUrn", kind="hotel", errors=errors)
        raw = body.get("subCaseUrns")
        subcase_ids = []
        if not isinstance(raw, list) or not raw:
            errors.append({"field": "subCaseUrns", "message": "must be a non-empty list of sub-case URNs"})
        elif len(raw) > MANUAL_MAX_OCCUPANTS:
            errors.append({"field": "subCaseUrns", "message": f"at most {MANUAL_MAX_OCCUPANTS} passengers"})
        else:
            for index, value in enumerate(raw):
                id_ = _urn_id(value, field=f"subCaseUrns[{index}]", kind="subcase", errors=errors)
                if id_ is not None and id_ in subcase_ids:
                    errors.append({"field": f"subCaseUrns[{index}]", "message": "appears twice"})
                elif id_ is not None:
                    subcase_ids.append(id_)
        check_in = None
        try:
            check_in = dt.date.fromisoformat(body["checkIn"]) if isinstance(body.get("checkIn"), str) else None
        except ValueError:
            check_in = None
        if check_in is None:
            errors.append({"field": "checkIn", "message": "must be a date YYYY-MM-DD"})
        elif check_in < timezone.now().date() - dt.timedelta(days=1):
            errors.append({"field": "checkIn", "message": "must not be in the past"})
        nights = body.get("nights")
        if isinstance(nights, bool) or not isinstance(nights, int) or not 1 <= nights <= MAX_NIGHTS:
            errors.append({"field": "nights", "message": f"must be an integer from 1 to {MAX_NIGHTS}"})
        number = body.get("confirmationNumber")
        if not isinstance(number, str) or not number.strip() or len(number) > CONFIRMATION_MAX:
            errors.append(
                {"field": "confirmationNumber", "message": f"a non-blank string of at most {CONFIRMATION_MAX}"}
            )
        reason = body.get("reason")
        if not isinstance(reason, str) or not reason.strip() or len(reason) > REASON_MAX:
            errors.append({"field": "reason", "message": f"a non-blank string of at most {REASON_MAX} characters"})
        amount, currency = self._rate(body.get("rate"), errors)
        if errors:
            raise validation_problem(errors)
        return {
            "case_urn": case_urn,
            "hotel_id": hotel_id,
            "subcase_ids": subcase_ids,
            "check_in": check_in,
            "nights": nights,
            "confirmation_number": number.strip(),
            "amount": amount,
            "currency": currency,
            "reason": reason.strip(),
        }

    @staticmethod
    def _rate(raw: Any, errors: list[dict[str, str]]) -> tuple[Decimal | None, str | None]:
        if not isinstance(raw, dict):
            errors.append({"field": "rate", "message": "must be an object {amount, currency}"})
            return None, None
        errors += [
            {"field": f"rate.{k}", "message": "Unknown member."} for k in sorted(set(raw) - {"amount", "currency"})
        ]
        amount = None
        value = raw.get("amount")
        try:
            amount = Decimal(value) if isinstance(value, str) else None
        except InvalidOperation:
            amount = None
        if amount is None or not amount.is_finite() or amount <= 0 or amount.as_tuple().exponent < -2:
            errors.append({"field": "rate.amount", "message": 'a positive decimal string such as "89.00"'})
            amount = None
        elif amount >= Decimal("100000000"):
            errors.append({"field": "rate.amount", "message": "too large"})
            amount = None
        currency = raw.get("currency")
        if not isinstance(currency, str) or currency not in ISO_4217:
            errors.append({"field": "rate.currency", "message": "an ISO 4217 currency code"})
            currency = None
        return amount, currency


class ManualReservationsView(NexaAPIView):
    permission_classes = [SUPERVISOR]

    @extend_schema(
        operation_id="booking_manual_reservations_create",
        summary="Record a reservation booked out of band (CONFIRMED, source MANUAL)",
        description=(
            "No vendor call. The passengers move to BOOKED (from GROUPED, ALLOCATED or MANUAL_REVIEW) and get "
            "the hotel voucher notice, then NOTIFIED. 404: the case is not the caller's. 400 names every invalid "
            "field, also a hotel not in the airline's catalog or a sub-case not of the case. 409 room-night-taken "
            "names the reservation already holding one of their nights; 409 subcase-not-bookable names "
            "passengers in another status (e.g. BOOKING: a room saga is booking them)."
        ),
        request=ManualReservationRequestSerializer,
        responses={
            201: ReservationSerializer,
            400: problem("Invalid body, hotel or sub-case."),
            404: problem("No such case (or another airline's)."),
            409: problem("A passenger already has a room one of these nights, or cannot be booked now."),
        },
    )
    def post(self, request):
        body = ManualReservationRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        values = dict(body.validated_data)
        case = selectors.case_get(principal=request.auth, case_urn=values.pop("case_urn"))
        reservation = services.reservation_manual_book(principal=request.auth, case=case, **values)
        reservation.hotel  # noqa: B018 - loaded for the detail
        return Response(
            ReservationSerializer(reservation_data(reservation)).data,
            status=http_status.HTTP_201_CREATED,
            headers={"Location": f"/v1/booking/reservations/{reservation.urn}"},
        )
