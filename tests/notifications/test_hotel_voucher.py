"""The hotel_voucher notification (the booking saga's NOTIFY step): the email is the passenger's printable
voucher page with a plain-text alternative, sent to a REAL SMTP server; SMS and WhatsApp carry the signed
voucher link, received by the REAL simulator process; en and es."""

from urllib.parse import urlsplit

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from nexa.platform.auth import Principal
from nexa.platform.roles import Role
from notifications import services
from tests.booking.factories import HotelFactory, ReservationFactory
from tests.cases.factories import CaseFactory, SubCaseFactory

pytestmark = pytest.mark.django_db

SAGA = Principal(airline="IB", role=Role.ADMIN, operator_urn="urn:nexa:system:saga", subject="system:saga")
KEY = "urn:nexa:step:0193a0f0-0000-7000-8000-0000000000b1"


def booked(*, language="en", email="ana@example.com", phone="+34600123456"):
    case = CaseFactory(flight_number="IB3166")
    ana = SubCaseFactory(
        case=case, first_name="Ana", last_name="O'Neil <Garcia>", language=language, email=email, phone=phone
    )
    john = SubCaseFactory(case=case, first_name="John", last_name="Roommate", language="en")
    other = SubCaseFactory(case=case, first_name="Zed", last_name="Elsewhere")
    hotel = HotelFactory(name="Hotel Barajas", address="Av. de Logroño 305", phone="+34913000000")
    reservation = ReservationFactory(
        case=case,
        hotel=hotel,
        check_in=timezone.now().date(),
        nights=1,
        rooms=[[ana, john], [other]],
        confirmation_number="HB-4471",
    )
    return ana, reservation


def context(reservation):
    """What the booking saga passes (docs/booking.md)."""
    return {
        "caseUrn": reservation.case.urn,
        "reservationUrn": reservation.urn,
        "voucherUrl": f"/v1/booking/reservations/{reservation.urn}/voucher/html",
        "hotelName": reservation.hotel_name,
        "checkIn": reservation.check_in.isoformat(),
        "nights": reservation.nights,
    }


def send(sub_case, values, key=KEY):
    result = services.notification_send_for_subcase(
        principal_or_system=SAGA,
        sub_case_urn=sub_case.urn,
        template="hotel_voucher",
        context=values,
        idempotency_key=key,
    )
    return {
        item["channel"]: services.notification_deliver(notification_urn=item["urn"]) for item in result["notifications"]
    }


def test_email_is_the_passengers_voucher_page_with_a_text_alternative(mailbox, simulator_control):
    ana, reservation = booked(language="en")
    outcomes = send(ana, context(reservation))
    assert {channel: outcome.status for channel, outcome in outcomes.items()} == {"EMAIL": "SENT", "SMS": "SENT"}

    [mail] = mailbox.received
    assert mail.envelope_to == ["ana@example.com"]
    assert mail.subject == "Flight IB3166: your hotel voucher — Hotel Barajas"
    html = mail.html
    assert html.startswith("<!DOCTYPE html>") and "@media print" in html
    assert "Hotel voucher" in html and "Room 1 of 1" in html  # only her room
    assert "Ana O&#x27;Neil &lt;Garcia&gt;" in html and "<Garcia>" not in html  # escaped
    assert "John Roommate" in html and "Zed" not in html
    assert "Av. de Logroño 305" in html and "+34913000000" in html
    assert f"{reservation.urn}|HB-4471" in html and "<svg" in html
    text = mail.text
    assert "Hello Ana," in text
    assert "Hotel: Hotel Barajas" in text and "Confirmation: HB-4471" in text and "Nights: 1" in text
    assert "Your voucher: http://127.0.0.1:8000/v1/vouchers/" in text

    [sms] = simulator_control.sms.entries("sms")
    assert sms["to"] == "+34600123456"
    body = sms["body"]
    assert body.startswith("IB3166: Ana, your hotel is Hotel Barajas, check-in ")
    link = body.rsplit("Voucher: ", 1)[1].strip()
    assert link.startswith("http://127.0.0.1:8000/v1/vouchers/")
    # the link the passenger received opens their room page, without a token
    page = APIClient().get(urlsplit(link).path)
    assert page.status_code == 200
    assert "Ana O&#x27;Neil" in page.content.decode() and "Zed" not in page.content.decode()


def test_spanish_passenger_gets_spanish_email_sms_and_whatsapp_link(mailbox, simulator_control):
    ana, reservation = booked(language="es")
    send(ana, context(reservation))
    [mail] = mailbox.received
    assert mail.subject == "Vuelo IB3166: su bono de hotel — Hotel Barajas"
    assert "Bono de hotel" in mail.html and "Huéspedes" in mail.html
    assert "Hola Ana:" in mail.text and "Su bono: http://127.0.0.1:8000/v1/vouchers/" in mail.text
    [sms] = simulator_control.sms.entries("sms")
    assert ", su hotel es Hotel Barajas, entrada " in sms["body"] and "(1 noche)" in sms["body"]
    assert "Bono: http://127.0.0.1:8000/v1/vouchers/" in sms["body"]

    services.whatsapp_opt_in_record(principal=SAGA, sub_case_urn=ana.urn, opted_in=True, source="kiosk")
    outcomes = send(ana, context(reservation), key=KEY + "-2")
    assert outcomes["WHATSAPP"].status == "SENT"
    [message] = simulator_control.sms.entries("whatsapp")
    assert message["template"] == "hotel_voucher_link" and message["language"] == "es"
    first, hotel, check_in, link = message["parameters"]
    assert (first, hotel, check_in) == ("Ana", "Hotel Barajas", reservation.check_in.isoformat())
    assert link.startswith("http://127.0.0.1:8000/v1/vouchers/")


def test_without_the_reservation_the_email_says_what_the_context_has(mailbox, simulator_control):
    ana, reservation = booked(phone="")
    values = {**context(reservation), "reservationUrn": "urn:nexa:reservation:0193a0f0-0000-7000-8000-00000000dead"}
    # a caller cannot smuggle markup in as the voucher: only the hook's own HTML is rendered unescaped
    values["voucherHtml"] = "<script>alert(1)</script>"
    assert send(ana, values)["EMAIL"].status == "SENT"
    [mail] = mailbox.received
    assert "<script>" not in mail.html
    assert "Your hotel room is booked: <strong>Hotel Barajas</strong>" in mail.html
    assert "Your voucher:" not in mail.text
