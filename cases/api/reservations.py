"""HTTP routes of reservations and vouchers (spec 000 § Hotels & booking; docs/booking.md § Reservations and
vouchers). They live in ``cases`` because the list checks the case's tenant and the voucher needs the
passengers; the reservations themselves are booking's (read through ``booking.selectors``).

* ``GET /v1/booking/cases/{case_urn}/reservations`` — the case's reservations, paginated, by status/hotel;
* ``GET /v1/booking/reservations/{reservation_urn}`` — one reservation;
* ``GET /v1/booking/reservations/{reservation_urn}/voucher/html`` — its printable voucher;
* ``GET /v1/vouchers/{token}`` — one passenger's room page behind a signed link (no bearer token).
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from booking import selectors as booking_selectors
from booking.models import ReservationSource, ReservationStatus
from cases import selectors
from cases.saga.hotel import voucher_url
from nexa.platform.filters import ChoiceFilter, QueryFilters, UrnFilter
from nexa.platform.openapi import EMPTY_IS_ABSENT, problem, urn_schema, with_schema
from nexa.platform.pagination import extend_schema_paginated, paginate
from nexa.platform.renderers import passthrough_renderer, private_html_response
from nexa.platform.roles import MinRole, Role
from nexa.platform.urns import format_urn
from nexa.platform.views import NexaAPIView

OPERATOR = MinRole(Role.AIRPORT_OPERATOR)
HTML_CONTENT_TYPE = "text/html; charset=utf-8"

CASE_URN_PARAMETER = OpenApiParameter(
    "case_urn", OpenApiTypes.STR, OpenApiParameter.PATH, description="urn:nexa:case:<uuid>"
)
RESERVATION_URN_PARAMETER = OpenApiParameter(
    "reservation_urn", urn_schema("reservation"), OpenApiParameter.PATH, description="urn:nexa:reservation:<uuid>"
)
LANG_PARAMETER = OpenApiParameter(
    "lang",
    OpenApiTypes.STR,
    enum=list(booking_selectors.VOUCHER_LANGUAGES),
    description="Every page in this language; default: each room's page in its first occupant's language "
    "(English when that is neither en nor es).",
    extensions=EMPTY_IS_ABSENT,
)


# --- wire shapes ------------------------------------------------------------------------------------------


class ReservationHotelSerializer(serializers.Serializer):
    urn = with_schema(serializers.CharField(allow_null=True), {**urn_schema("hotel"), "nullable": True})
    name = serializers.CharField()
    address = serializers.CharField(allow_null=True)
    phone = serializers.CharField(allow_null=True)
    lat = serializers.FloatField(allow_null=True)
    lng = serializers.FloatField(allow_null=True)

    class Meta:
        ref_name = "ReservationHotel"


class ReservationRoomSerializer(serializers.Serializer):
    occupants = serializers.ListField(child=with_schema(serializers.CharField(), urn_schema("subcase")))
    accessible = serializers.BooleanField()

    class Meta:
        ref_name = "ReservationRoom"


class ReservationRateSerializer(serializers.Serializer):
    amount = with_schema(serializers.CharField(), {"type": "string", "pattern": r"^-?\d+\.\d{2}$", "example": "89.00"})
    currency = with_schema(serializers.CharField(), {"type": "string", "pattern": "^[A-Z]{3}$", "example": "EUR"})

    class Meta:
        ref_name = "ReservationRate"


class ReservationSerializer(serializers.Serializer):
    urn = with_schema(serializers.CharField(), urn_schema("reservation"))
    caseUrn = with_schema(serializers.CharField(), urn_schema("case"))  # noqa: N815
    hotel = ReservationHotelSerializer(help_text="A hotel outside the catalog has urn null and only its name.")
    checkIn = serializers.DateField()  # noqa: N815
    nights = serializers.IntegerField(min_value=1)
    rooms = ReservationRoomSerializer(many=True)
    status = serializers.ChoiceField(choices=ReservationStatus.choices)
    source = serializers.ChoiceField(choices=ReservationSource.choices)
    confirmationNumber = serializers.CharField(allow_blank=True)  # noqa: N815
    rate = ReservationRateSerializer(allow_null=True, help_text="Per room per night; null when not known.")
    voucherUrl = serializers.CharField(help_text="The printable voucher (needs a bearer token).")  # noqa: N815
    createdAt = serializers.DateTimeField()  # noqa: N815
    updatedAt = serializers.DateTimeField()  # noqa: N815

    class Meta:
        ref_name = "Reservation"


def reservation_data(reservation) -> dict:
    """The reservation in its wire shape (the detail, and every item of the list)."""
    hotel = reservation.hotel
    if hotel is not None:
        hotel_data = {
            "urn": hotel.urn,
            "name": hotel.name,
            "address": hotel.address,
            "phone": hotel.phone,
            "lat": hotel.lat,
            "lng": hotel.lng,
        }
    else:
        hotel_data = {
            "urn": None,
            "name": reservation.hotel_name,
            "address": None,
            "phone": None,
            "lat": None,
            "lng": None,
        }
    rate = None
    if reservation.nightly_rate is not None:
        rate = {"amount": f"{reservation.nightly_rate:.2f}", "currency": reservation.currency}
    datetime_field = serializers.DateTimeField()
    return {
        "urn": reservation.urn,
        "caseUrn": format_urn("case", reservation.case_id),
        "hotel": hotel_data,
        "checkIn": reservation.check_in.isoformat(),
        "nights": reservation.nights,
        "rooms": [
            {"occupants": list(room.get("occupants") or []), "accessible": bool(room.get("accessible"))}
            for room in reservation.rooms or []
        ],
        "status": reservation.status,
        "source": reservation.source,
        "confirmationNumber": reservation.confirmation_number,
        "rate": rate,
        "voucherUrl": voucher_url(reservation.urn),
        "createdAt": datetime_field.to_representation(reservation.created_at),
        "updatedAt": datetime_field.to_representation(reservation.updated_at),
    }


class ReservationFilters(QueryFilters):
    status = ChoiceFilter(ReservationStatus.values, empty_is_absent=True)
    hotelUrn = UrnFilter("hotel", empty_is_absent=True)  # noqa: N815


class VoucherLanguage(QueryFilters):
    lang = ChoiceFilter(booking_selectors.VOUCHER_LANGUAGES, empty_is_absent=True)


HTMLRenderer = passthrough_renderer("text/html", "html")


HTML_200 = {(200, "text/html"): OpenApiResponse(response=OpenApiTypes.STR, description="The voucher (HTML).")}


# --- routes -----------------------------------------------------------------------------------------------


class CaseReservationsView(NexaAPIView):
    permission_classes = [OPERATOR]

    @extend_schema_paginated(
        ReservationSerializer,
        operation_id="booking_case_reservations_list",
        summary="The case's reservations",
        description="Oldest first. Filters are validated: a bad value is a 400 naming it.",
        parameters=[
            CASE_URN_PARAMETER,
            OpenApiParameter(
                "status",
                OpenApiTypes.STR,
                enum=ReservationStatus.values,
                description="Reservation status.",
                extensions=EMPTY_IS_ABSENT,
            ),
            OpenApiParameter(
                "hotelUrn",
                urn_schema("hotel"),
                description="Only reservations at this catalog hotel.",
                extensions=EMPTY_IS_ABSENT,
            ),
        ],
    )
    def get(self, request, case_urn: str):
        case = selectors.case_get(principal=request.auth, case_urn=case_urn)
        filters = ReservationFilters.parse(request)
        reservations = booking_selectors.reservations_for_case(
            principal=request.auth, case_id=case.pk, status=filters["status"], hotel_urn=filters["hotelUrn"]
        )
        return paginate(request, reservations, ordering=("created_at", "id"), serialize=reservation_data)


class ReservationDetailView(NexaAPIView):
    permission_classes = [OPERATOR]

    @extend_schema(
        operation_id="booking_reservations_get",
        summary="One reservation",
        parameters=[RESERVATION_URN_PARAMETER],
        responses={200: ReservationSerializer},
    )
    def get(self, request, reservation_urn: str):
        reservation = booking_selectors.reservation_get(principal=request.auth, reservation_urn=reservation_urn)
        return Response(reservation_data(reservation))


class ReservationVoucherView(NexaAPIView):
    permission_classes = [OPERATOR]
    renderer_classes = [HTMLRenderer]

    @extend_schema(
        operation_id="booking_reservations_voucher_html",
        summary="The printable voucher of a reservation",
        description=(
            "HTML with a print stylesheet: one page per room, each in its first occupant's language (en, es; "
            "?lang= overrides): guests, hotel, address, phone, directions (distance from the airport, a maps "
            "link), check-in, nights, confirmation number, the meals and transport granted to the guests, and a "
            "QR code of the reservation URN and confirmation number. A cancelled or failed reservation's voucher "
            "says it is not valid."
        ),
        parameters=[RESERVATION_URN_PARAMETER, LANG_PARAMETER],
        responses=HTML_200,
    )
    def get(self, request, reservation_urn: str):
        language = VoucherLanguage.parse(request)["lang"]
        html = selectors.reservation_voucher_html(
            principal=request.auth, reservation_urn=reservation_urn, language=language
        )
        return private_html_response(html)


class PublicVoucherView(NexaAPIView):
    """The passenger's link (SMS, WhatsApp): public by design, the signed token is the credential."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    renderer_classes = [HTMLRenderer]

    @extend_schema(
        operation_id="vouchers_public_html",
        summary="A passenger's hotel voucher behind a signed link",
        description=(
            "No bearer token: the token (signed by the server, sent to the passenger) names one passenger's room "
            "of one reservation. It stops working the day after check-out + 1 day, when the reservation is "
            "released, or when it is altered: each is the same 404."
        ),
        auth=[],
        parameters=[
            OpenApiParameter("token", OpenApiTypes.STR, OpenApiParameter.PATH, description="From the link."),
            LANG_PARAMETER,
        ],
        responses={**HTML_200, (404, "application/problem+json"): problem("Unknown, altered or expired link.")},
    )
    def get(self, request, token: str):
        language = VoucherLanguage.parse(request)["lang"]
        return private_html_response(selectors.voucher_html_for_token(token=token, language=language))
