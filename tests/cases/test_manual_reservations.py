"""POST /v1/booking/manual-reservations: the platform contracts, what a supervisor sees (201 in the
reservation detail shape, CONFIRMED, MANUAL; passengers BOOKED then NOTIFIED with a voucher notice), 404
across tenants, 400 naming fields, the FSM's refusals, and the duplicate-voucher guard (409 naming the
first reservation, nothing written)."""

import datetime as dt
import json
import threading

import pytest
from django.db import connection
from django.utils import timezone

from booking.models import Reservation, RoomNight
from cases.models import SubCase
from nexa.platform.roles import Role
from notifications.models import Notification
from tests.api_base import APIContractTests, RouteContract, assert_problem
from tests.cases.booking_helpers import hotel, new_case, passengers

PATH = "/v1/booking/manual-reservations"


def body_for(case, members, hotel_row, **overrides):
    body = {
        "caseUrn": case.urn,
        "hotelUrn": hotel_row.urn,
        "subCaseUrns": [m.urn for m in members],
        "checkIn": (timezone.now().date() + dt.timedelta(days=1)).isoformat(),
        "nights": 2,
        "confirmationNumber": "HX-4411",
        "rate": {"amount": "95.00", "currency": "EUR"},
        "reason": "booked by phone: vendor outage",
    }
    body.update(overrides)
    return body


def objects_for(airline):
    case = new_case(airline)
    return {"case": case, "members": passengers(case, 2), "hotel": hotel(airline, "mad-auditorium")}


class TestManualReservationsAPIContract(APIContractTests):
    routes = (
        RouteContract(
            "manual-reservation",
            "POST",
            PATH,
            min_role=Role.OPS_SUPERVISOR,
            expect_status=201,
            body=lambda objects: body_for(objects["case"], objects["members"], objects["hotel"]),
            audit_actions=("reservation.manual_created", "subcase.start_booking", "subcase.mark_booked"),
            check=lambda response, objects: response.json()["caseUrn"] == objects["case"].urn,
        ),
    )

    def make_objects(self, airline):
        return objects_for(airline)


def post(client, body, **headers):
    return client.post(PATH, data=json.dumps(body), content_type="application/json", **headers)


@pytest.mark.django_db
def test_a_manual_reservation_is_confirmed_and_its_passengers_booked_and_notified(client_for):
    objects = objects_for("IB")
    case, members, row = objects["case"], objects["members"], objects["hotel"]
    client = client_for("IB", Role.OPS_SUPERVISOR)
    response = post(client, body_for(case, members, row))
    assert response.status_code == 201, response.content
    body = response.json()
    reservation = Reservation.objects.get(case=case)
    assert response["Location"] == f"/v1/booking/reservations/{reservation.urn}"
    assert client.get(response["Location"]).json() == body  # the answer is the reservation detail
    assert {body.pop("createdAt"), body.pop("updatedAt")} == {reservation.created_at.isoformat().replace("+00:00", "Z")}
    assert body == {
        "urn": reservation.urn,
        "caseUrn": case.urn,
        "hotel": {"urn": row.urn, "name": row.name, "address": row.address, "phone": row.phone, "lat": row.lat,
                  "lng": row.lng},
        "checkIn": body_for(case, members, row)["checkIn"],
        "nights": 2,
        "rooms": [{"occupants": [m.urn for m in members], "accessible": False}],
        "status": "CONFIRMED",
        "source": "MANUAL",
        "confirmationNumber": "HX-4411",
        "rate": {"amount": "95.00", "currency": "EUR"},
        "voucherUrl": f"/v1/booking/reservations/{reservation.urn}/voucher/html",
    }  # fmt: skip
    assert RoomNight.objects.filter(reservation=reservation, active=True).count() == 4  # 2 passengers, 2 nights
    assert set(SubCase.objects.filter(case=case).values_list("status", flat=True)) == {"NOTIFIED"}
    for member in members:
        assert Notification.objects.filter(sub_case=member, template="hotel_voucher").exists()


@pytest.mark.django_db
def test_a_passenger_in_review_is_booked_and_one_being_booked_is_409(client_for):
    case = new_case("IB")
    [reviewed] = passengers(case, 1, status="MANUAL_REVIEW")
    [booking] = passengers(case, 1, status="BOOKING")
    row = hotel("IB", "mad-auditorium")
    client = client_for("IB", Role.OPS_SUPERVISOR)
    assert post(client, body_for(case, [reviewed], row)).status_code == 201
    problem = assert_problem(post(client, body_for(case, [booking], row)), 409, "subcase-not-bookable")
    assert problem["subCaseUrns"] == [booking.urn]
    assert Reservation.objects.filter(case=case).count() == 1


@pytest.mark.django_db
def test_a_second_room_the_same_night_is_409_naming_the_first(client_for):
    objects = objects_for("IB")
    case, members, row = objects["case"], objects["members"], objects["hotel"]
    client = client_for("IB", Role.OPS_SUPERVISOR)
    first = post(client, body_for(case, [members[0]], row)).json()
    # The second passenger is fine, the first already has a room: nothing is written for either.
    SubCase.objects.filter(pk=members[0].pk).update(status="MANUAL_REVIEW")
    second = post(client, body_for(case, members, row, confirmationNumber="HX-9"))
    problem = assert_problem(second, 409, "room-night-taken")
    assert problem["reservationUrn"] == first["urn"] and first["urn"] in problem["detail"]
    assert problem["subCaseUrn"] == members[0].urn
    assert Reservation.objects.filter(case=case).count() == 1
    assert SubCase.objects.get(pk=members[1].pk).status == "ALLOCATED"


@pytest.mark.django_db
def test_another_airlines_case_is_404_and_its_hotel_400(client_for):
    mine, theirs = objects_for("IB"), objects_for("LH")
    client = client_for("IB", Role.ADMIN)
    assert_problem(post(client, body_for(theirs["case"], theirs["members"], mine["hotel"])), 404, "not-found")
    problem = assert_problem(post(client, body_for(mine["case"], mine["members"], theirs["hotel"])), 400,
                             "validation-error")  # fmt: skip
    assert [e["field"] for e in problem["errors"]] == ["hotelUrn"]
    stranger = body_for(mine["case"], [theirs["members"][0]], mine["hotel"])
    problem = assert_problem(post(client, stranger), 400, "validation-error")
    assert [e["field"] for e in problem["errors"]] == ["subCaseUrns[0]"]
    assert not Reservation.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("overrides", "fields"),
    [
        ({"nights": 0}, ["nights"]),
        ({"nights": "2"}, ["nights"]),
        ({"checkIn": "2026-13-01"}, ["checkIn"]),
        ({"checkIn": "2020-01-01"}, ["checkIn"]),
        ({"subCaseUrns": []}, ["subCaseUrns"]),
        ({"rate": {"amount": "9.999", "currency": "EUR"}}, ["rate.amount"]),
        ({"rate": {"amount": "90", "currency": "EURO"}}, ["rate.currency"]),
        ({"confirmationNumber": "  "}, ["confirmationNumber"]),
        ({"reason": ""}, ["reason"]),
        ({"caseUrn": "urn:nexa:case:nope"}, ["caseUrn"]),
        ({"extra": True}, ["extra"]),
    ],
)
def test_bad_input_is_400_naming_each_field(client_for, overrides, fields):
    objects = objects_for("IB")
    body = body_for(objects["case"], objects["members"], objects["hotel"], **overrides)
    problem = assert_problem(post(client_for("IB", Role.OPS_SUPERVISOR), body), 400, "validation-error")
    assert [e["field"] for e in problem["errors"]] == fields


@pytest.mark.django_db(transaction=True)
def test_two_supervisors_booking_one_passenger_at_once_one_wins_one_409(client_for):
    objects = objects_for("IB")
    case, members, row = objects["case"], objects["members"], objects["hotel"]
    barrier = threading.Barrier(2)
    answers = []

    def book(number):
        client = client_for("IB", Role.OPS_SUPERVISOR)
        try:
            barrier.wait()
            answers.append(post(client, body_for(case, [members[0]], row, confirmationNumber=number)))
        finally:
            connection.close()

    threads = [threading.Thread(target=book, args=(f"HX-{n}",)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(a.status_code for a in answers) == [201, 409]
    [won] = [a.json() for a in answers if a.status_code == 201]
    [lost] = [a.json() for a in answers if a.status_code == 409]
    # The loser waited for the winner's case lock and then found the passenger booked (or their night taken).
    assert lost["type"].rsplit("/", 1)[1] in ("subcase-not-bookable", "room-night-taken")
    assert members[0].urn in lost["detail"] or won["urn"] in lost["detail"]
    assert Reservation.objects.filter(case=case).count() == 1
    assert RoomNight.objects.filter(sub_case=members[0], active=True).count() == 2
