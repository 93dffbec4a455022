"""Reservation reads and vouchers (docs/booking.md § Reservations and vouchers): the list per case, the
detail, the printable voucher, the passenger's signed link and GET /v1/hotels/cases/{urn} counts."""

import datetime as dt
import hashlib
import re
from urllib.parse import urlsplit

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from booking.models import ReservationSource, ReservationStatus
from cases import selectors
from cases.models import SagaRun, SagaStep, SagaStepStatus
from nexa.platform.roles import Role
from nexa.platform.urns import new_urn
from tests.api_base import APIContractTests, RouteContract, assert_problem
from tests.booking.factories import HotelFactory, ReservationFactory
from tests.cases.factories import MEAL, TRANSPORT, CaseFactory, SubCaseFactory

pytestmark = pytest.mark.django_db

LIST = "/v1/booking/cases/{case}/reservations"
DETAIL = "/v1/booking/reservations/{reservation}"
VOUCHER = "/v1/booking/reservations/{reservation}/voucher/html"


def _lists_only_own(response, objects) -> bool:
    return [item["urn"] for item in response.json()["items"]] == [objects["reservation"].urn]


def _is_the_voucher(response, objects) -> bool:
    return response["Content-Type"] == "text/html; charset=utf-8" and objects["sub_case"].first_name in (
        response.content.decode()
    )


class TestReservationsAPIContract(APIContractTests):
    routes = (
        RouteContract("list", "GET", LIST, min_role=Role.AIRPORT_OPERATOR, check=_lists_only_own),
        RouteContract(
            "detail",
            "GET",
            DETAIL,
            min_role=Role.AIRPORT_OPERATOR,
            check=lambda response, objects: response.json()["urn"] == objects["reservation"].urn,
        ),
        RouteContract("voucher", "GET", VOUCHER, min_role=Role.AIRPORT_OPERATOR, check=_is_the_voucher),
    )

    def make_objects(self, airline):
        case = CaseFactory(airline=airline)
        sub_case = SubCaseFactory(case=case, first_name=f"Guest{airline}")
        reservation = ReservationFactory(case=case, rooms=[[sub_case]])
        return {"case": case, "sub_case": sub_case, "reservation": reservation}


# --- helpers --------------------------------------------------------------------------------------------


def grant(sub_case, item, *, status=SagaStepStatus.COMPLETED, result=None):
    """A saga run of ``sub_case`` with one step delivering ``item`` (MEAL / TRANSPORT)."""
    run = SagaRun.objects.create(
        airline=sub_case.airline,
        case=sub_case.case,
        sub_case=sub_case,
        status="COMPLETED",
        payload={"items": [item]},
        payload_hash=hashlib.sha256(repr((sub_case.pk, item, status)).encode()).hexdigest(),
        correlation_urn=new_urn("correlation"),
        requested_by="urn:nexa:user:ib-ops",
    )
    SagaStep.objects.create(
        run=run,
        airline=sub_case.airline,
        position=0,
        name=f"{item['type'].lower()}.step",
        kind=item["type"],
        item=item,
        status=status,
        result=result,
    )


def today():
    return timezone.now().date()


# --- list ------------------------------------------------------------------------------------------------


def test_list_filters_by_status_and_hotel_and_items_have_the_detail_shape(client_for):
    case = CaseFactory()
    a, b, c = SubCaseFactory(case=case), SubCaseFactory(case=case), SubCaseFactory(case=case)
    hotel = HotelFactory()
    first = ReservationFactory(case=case, hotel=hotel, rooms=[[a]])
    second = ReservationFactory(case=case, rooms=[[b]], status=ReservationStatus.CANCELLED)
    third = ReservationFactory(case=case, hotel=hotel, rooms=[[c]], status=ReservationStatus.HELD)
    ReservationFactory(rooms=[[SubCaseFactory()]])  # another case of the same airline
    client = client_for("IB")

    def urns(**params):
        response = client.get(LIST.format(case=case.urn), params)
        assert response.status_code == 200, response.content
        return [item["urn"] for item in response.json()["items"]]

    assert urns() == [first.urn, second.urn, third.urn]
    assert urns(status="CANCELLED") == [second.urn]
    assert urns(hotelUrn=hotel.urn) == [first.urn, third.urn]
    assert urns(hotelUrn=hotel.urn, status="HELD") == [third.urn]
    assert urns(status="") == [first.urn, second.urn, third.urn]  # empty is absent
    detail = client.get(DETAIL.format(reservation=first.urn)).json()
    assert client.get(LIST.format(case=case.urn)).json()["items"][0] == detail


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "BOOKED"}, "status"),
        ({"status": "held"}, "status"),
        ({"hotelUrn": "nope"}, "hotelUrn"),
        ({"hotelUrn": "urn:nexa:case:0193a0f0-0000-7000-8000-000000000001"}, "hotelUrn"),
        ({"limit": "0"}, "limit"),
    ],
)
def test_list_refuses_bad_filters(client_for, params, field):
    case = CaseFactory()
    body = assert_problem(client_for("IB").get(LIST.format(case=case.urn), params), 400, "validation-error")
    assert field in [error["field"] for error in body["errors"]]


def test_list_pages_with_a_stable_cursor(client_for):
    case = CaseFactory()
    made = [ReservationFactory(case=case, rooms=[[SubCaseFactory(case=case)]]) for _ in range(3)]
    client = client_for("IB")
    page = client.get(LIST.format(case=case.urn), {"limit": 2}).json()
    assert [item["urn"] for item in page["items"]] == [r.urn for r in made[:2]]
    assert page["hasMore"] is True
    ReservationFactory(case=case, rooms=[[SubCaseFactory(case=case)]])  # after the snapshot
    rest = client.get(LIST.format(case=case.urn), {"limit": 2, "cursor": page["nextCursor"]}).json()
    assert [item["urn"] for item in rest["items"]] == [made[2].urn]
    assert rest["hasMore"] is False and rest["nextCursor"] is None


def test_list_of_another_airlines_case_is_404_even_with_filters(client_for):
    other = CaseFactory(airline="LH")
    ReservationFactory(case=other, rooms=[[SubCaseFactory(case=other)]])
    assert_problem(client_for("IB").get(LIST.format(case=other.urn), {"status": "CONFIRMED"}), 404, "not-found")


# --- detail ------------------------------------------------------------------------------------------------


def test_detail_shape(client_for):
    sub_case = SubCaseFactory()
    hotel = HotelFactory(name="Hotel Barajas T4")
    reservation = ReservationFactory(
        case=sub_case.case,
        hotel=hotel,
        rooms=[{"occupants": [sub_case], "accessible": True}],
        nights=2,
        confirmation_number="HB-1",
    )
    body = client_for("IB").get(DETAIL.format(reservation=reservation.urn)).json()
    assert set(body) == {
        "urn",
        "caseUrn",
        "hotel",
        "checkIn",
        "nights",
        "rooms",
        "status",
        "source",
        "confirmationNumber",
        "rate",
        "voucherUrl",
        "createdAt",
        "updatedAt",
    }
    assert body["caseUrn"] == sub_case.case.urn
    assert body["hotel"] == {
        "urn": hotel.urn,
        "name": "Hotel Barajas T4",
        "address": hotel.address,
        "phone": hotel.phone,
        "lat": hotel.lat,
        "lng": hotel.lng,
    }
    assert body["checkIn"] == reservation.check_in.isoformat()
    assert body["nights"] == 2
    assert body["rooms"] == [{"occupants": [sub_case.urn], "accessible": True}]
    assert (body["status"], body["source"], body["confirmationNumber"]) == ("CONFIRMED", "CONTRACT", "HB-1")
    assert body["rate"] == {"amount": "89.00", "currency": "EUR"}
    assert body["voucherUrl"] == f"/v1/booking/reservations/{reservation.urn}/voucher/html"


def test_detail_of_a_hotel_outside_the_catalog(client_for):
    sub_case = SubCaseFactory()
    reservation = ReservationFactory(
        case=sub_case.case,
        hotel=None,
        hotel_name="StayHub Airport Inn",
        source=ReservationSource.VENDOR,
        vendor="stayhub",
        rooms=[[sub_case]],
        nightly_rate=None,
        currency="",
    )
    body = client_for("IB").get(DETAIL.format(reservation=reservation.urn)).json()
    assert body["hotel"] == {
        "urn": None,
        "name": "StayHub Airport Inn",
        "address": None,
        "phone": None,
        "lat": None,
        "lng": None,
    }
    assert body["source"] == "VENDOR" and body["rate"] is None
    voucher = client_for("IB").get(VOUCHER.format(reservation=reservation.urn))
    assert "StayHub Airport Inn" in voucher.content.decode()
    assert "Ask at the airline" in voucher.content.decode()  # no coordinates, no maps link


# --- the operator's voucher -----------------------------------------------------------------------------


def test_voucher_pages_languages_grants_and_lang_override(client_for):
    case = CaseFactory()
    ana = SubCaseFactory(case=case, first_name="Ana", last_name="Garcia", language="es")
    luis = SubCaseFactory(case=case, first_name="Luis", last_name="Garcia", language="es")
    john = SubCaseFactory(case=case, first_name="John", last_name="<b>Smith</b>", language="en-GB")
    grant(ana, MEAL)
    grant(john, TRANSPORT, result={"rideId": "r1", "etaMinutes": 9})
    grant(luis, {**MEAL, "amount": "99.00"}, status=SagaStepStatus.COMPENSATED)  # undone: not granted
    reservation = ReservationFactory(case=case, rooms=[[ana, luis], [john]], confirmation_number="HB-77")
    client = client_for("IB")

    response = client.get(VOUCHER.format(reservation=reservation.urn))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/html; charset=utf-8"
    html = response.content.decode()
    pages = re.findall(r'<section class="voucher-page" lang="(\w+)">(.*?)</section>', html, re.S)
    assert [language for language, _ in pages] == ["es", "en"]
    assert "Ana Garcia: bono de comida 25.00 EUR" in pages[0][1]
    assert "99.00" not in html
    assert "John &lt;b&gt;Smith&lt;/b&gt;: transport (UBER), pick-up in about 9 min" in pages[1][1]
    assert "<b>Smith</b>" not in html
    assert f"{reservation.urn}|HB-77" in html and "<svg" in html

    spanish = client.get(VOUCHER.format(reservation=reservation.urn), {"lang": "es"}).content.decode()
    assert re.findall(r'<section class="voucher-page" lang="(\w+)">', spanish) == ["es", "es"]
    body = assert_problem(
        client.get(VOUCHER.format(reservation=reservation.urn), {"lang": "fr"}), 400, "validation-error"
    )
    assert body["errors"][0]["field"] == "lang"


def test_voucher_of_another_airlines_reservation_is_404(client_for):
    other = ReservationFactory(case=CaseFactory(airline="LH"), rooms=[])
    assert_problem(client_for("IB").get(VOUCHER.format(reservation=other.urn)), 404, "not-found")


def test_openapi_documents_the_voucher_as_html(client_for):
    schema = APIClient().get("/v1/openapi.json").json()
    operation = schema["paths"]["/v1/booking/reservations/{reservation_urn}/voucher/html"]["get"]
    assert "text/html" in operation["responses"]["200"]["content"]
    assert "404" in operation["responses"]
    public = schema["paths"]["/v1/vouchers/{token}"]["get"]
    assert "text/html" in public["responses"]["200"]["content"]


# --- the passenger's signed link --------------------------------------------------------------------------


def _path(link):
    parts = urlsplit(link)
    assert f"{parts.scheme}://{parts.netloc}" == "http://127.0.0.1:8000"
    return parts.path


def test_passenger_link_shows_only_their_room_without_a_token(settings):
    case = CaseFactory()
    ana = SubCaseFactory(case=case, first_name="Ana", language="es")
    luis = SubCaseFactory(case=case, first_name="Luis", language="es")
    john = SubCaseFactory(case=case, first_name="John", language="en")
    reservation = ReservationFactory(case=case, check_in=today(), rooms=[[ana, luis], [john]])
    link = selectors.voucher_link(reservation_urn=reservation.urn, sub_case_urn=ana.urn)
    response = APIClient().get(_path(link))
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "text/html; charset=utf-8"
    assert response["Cache-Control"] == "private, no-store"
    assert response["Referrer-Policy"] == "no-referrer"  # the token never leaves through the maps link
    html = response.content.decode()
    assert "Ana" in html and "Luis" in html  # the room they share
    assert "John" not in html  # another passenger's room is not shown
    assert "Habitación 1 de 1" in html
    john_html = APIClient().get(_path(selectors.voucher_link(reservation_urn=reservation.urn, sub_case_urn=john.urn)))
    assert "John" in john_html.content.decode() and "Ana" not in john_html.content.decode()
    english = APIClient().get(_path(link), {"lang": "en"}).content.decode()
    assert "Hotel voucher" in english

    settings.NEXA_PUBLIC_BASE_URL = "https://nexa.example/"
    assert selectors.voucher_link(reservation_urn=reservation.urn, sub_case_urn=ana.urn).startswith(
        "https://nexa.example/v1/vouchers/"
    )


def test_passenger_link_refused_when_tampered_expired_released_or_not_theirs(settings):
    case = CaseFactory()
    ana, other = SubCaseFactory(case=case), SubCaseFactory(case=case)
    reservation = ReservationFactory(case=case, check_in=today(), rooms=[[ana]])
    path = _path(selectors.voucher_link(reservation_urn=reservation.urn, sub_case_urn=ana.urn))
    client = APIClient()
    assert client.get(path).status_code == 200

    token = path.rsplit("/", 1)[1]
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert_problem(client.get(f"/v1/vouchers/{flipped}"), 404, "not-found")
    assert_problem(client.get("/v1/vouchers/garbage"), 404, "not-found")
    # a passenger not in the reservation (a valid signature over their id)
    stranger = _path(selectors.voucher_link(reservation_urn=reservation.urn, sub_case_urn=other.urn))
    assert_problem(client.get(stranger), 404, "not-found")
    # a reservation that does not exist
    nowhere = _path(selectors.voucher_link(reservation_urn=new_urn("reservation"), sub_case_urn=ana.urn))
    assert_problem(client.get(nowhere), 404, "not-found")

    # the stay ended more than a day ago (check-in + nights + 1 day)
    past = ReservationFactory(case=case, check_in=today() - dt.timedelta(days=3), nights=1, rooms=[[other]])
    assert_problem(
        client.get(_path(selectors.voucher_link(reservation_urn=past.urn, sub_case_urn=other.urn))), 404, "not-found"
    )
    recent = ReservationFactory(
        case=case, check_in=today() - dt.timedelta(days=2), nights=1, rooms=[[SubCaseFactory(case=case)]]
    )
    occupant = recent.rooms[0]["occupants"][0]
    assert (
        client.get(_path(selectors.voucher_link(reservation_urn=recent.urn, sub_case_urn=occupant))).status_code == 200
    )

    # older than the maximum age
    settings.NEXA_VOUCHER_LINK_MAX_AGE_SECONDS = 0
    assert_problem(client.get(path), 404, "not-found")
    settings.NEXA_VOUCHER_LINK_MAX_AGE_SECONDS = 3600

    # released
    reservation.status = ReservationStatus.CANCELLED
    reservation.save(update_fields=["status"])
    assert_problem(client.get(path), 404, "not-found")


# --- GET /v1/hotels/cases/{case_urn} -----------------------------------------------------------------------


def test_case_hotels_count_rooms_held_confirmed_and_released_per_hotel(client_for):
    case = CaseFactory()
    people = [SubCaseFactory(case=case) for _ in range(7)]
    hotel = HotelFactory(name="Hotel A")
    check_in = dt.date(2026, 11, 22)
    ReservationFactory(case=case, hotel=hotel, rooms=[[people[0]], [people[1]]], check_in=check_in)
    ReservationFactory(case=case, hotel=hotel, rooms=[[people[2]]], status=ReservationStatus.HELD, check_in=check_in)
    ReservationFactory(
        case=case, hotel=hotel, rooms=[[people[3]]], status=ReservationStatus.CANCELLED, check_in=check_in
    )
    ReservationFactory(case=case, hotel=hotel, rooms=[[people[4]]], status=ReservationStatus.FAILED, check_in=check_in)
    ReservationFactory(
        case=case,
        hotel=None,
        hotel_name="Vendor Inn",
        source=ReservationSource.VENDOR,
        rooms=[[people[5], people[6]]],
        check_in=check_in,
        nights=2,
    )
    ReservationFactory(case=CaseFactory(airline="LH"), rooms=[])  # another airline's
    ReservationFactory(rooms=[[SubCaseFactory()]])  # another case
    response = client_for("IB").get(f"/v1/hotels/cases/{case.urn}")
    assert response.status_code == 200, response.content
    assert response.json() == {
        "items": [
            {
                "hotelUrn": hotel.urn,
                "name": "Hotel A",
                "source": "CONTRACT",
                "checkIn": "2026-11-22",
                "nights": 1,
                "roomsHeld": 1,
                "roomsConfirmed": 2,
                "roomsReleased": 1,
                "held": 1,
                "confirmed": 2,
                "released": 1,
            },
            {
                "hotelUrn": None,
                "name": "Vendor Inn",
                "source": "VENDOR",
                "checkIn": "2026-11-22",
                "nights": 2,
                "roomsHeld": 0,
                "roomsConfirmed": 1,
                "roomsReleased": 0,
                "held": 0,
                "confirmed": 1,
                "released": 0,
            },
        ]
    }
