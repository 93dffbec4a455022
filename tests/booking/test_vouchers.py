"""booking.vouchers: the printable voucher rendered from plain data (en, es, one page per room, the QR
code drawn by the qrcode library, names escaped, grants listed) and the signed passenger token."""

import datetime as dt
import re
import shutil
import subprocess
import uuid

import pytest
import qrcode
import qrcode.image.svg
from django.core import signing

from booking import vouchers
from booking.vouchers import (
    VoucherData,
    VoucherGrant,
    VoucherHotel,
    VoucherOccupant,
    VoucherRoom,
    voucher_html,
    voucher_qr_payload,
    voucher_token_read,
    voucher_token_sign,
)

URN = "urn:nexa:reservation:0193a0f0-0000-7000-8000-000000000001"
HOTEL = VoucherHotel(
    name="Hotel Barajas",
    address="Av. de Logroño 305, Madrid",
    phone="+34913000000",
    lat=40.4721,
    lng=-3.561,
    distance_km=2.44,
    airport="MAD",
)


def occupant(name, language="en", grants=(), n=1):
    return VoucherOccupant(
        sub_case_urn=f"urn:nexa:subcase:0193a0f0-0000-7000-8000-{n:012d}", name=name, language=language, grants=grants
    )


def data(*rooms, status="CONFIRMED", meals=()):
    return VoucherData(
        reservation_urn=URN,
        confirmation_number="HB-4471",
        hotel=HOTEL,
        check_in=dt.date(2026, 11, 22),
        nights=2,
        rooms=tuple(rooms),
        status=status,
        flight_number="IB3166",
        meals_included=meals,
    )


def pages(html):
    return re.findall(r'<section class="voucher-page" lang="(\w+)">(.*?)</section>', html, re.S)


def test_english_voucher_has_guests_hotel_directions_stay_and_grants():
    meal = VoucherGrant(kind="MEAL", amount="25.00", currency="EUR")
    ride = VoucherGrant(kind="TRANSPORT", provider="UBER", eta_minutes=7)
    html = voucher_html(data=data(VoucherRoom(occupants=(occupant("Ana Garcia", grants=(meal, ride)),))))
    [(language, page)] = pages(html)
    assert language == "en"
    assert html.startswith("<!DOCTYPE html>") and '<html lang="en">' in html
    for text in (
        "Hotel voucher",
        "Ana Garcia",
        "Hotel Barajas",
        "Av. de Logroño 305, Madrid",
        "+34913000000",
        "2.4 km from MAD airport",
        "https://www.google.com/maps/search/?api=1&amp;query=40.472100,-3.561000",
        "2026-11-22",
        "<dt>Nights</dt><dd>2</dd>",
        "2026-11-24",
        "HB-4471",
        "Ana Garcia: meal voucher 25.00 EUR",
        "Ana Garcia: transport (UBER), pick-up in about 7 min",
    ):
        assert text in page, text
    assert "not valid" not in page


def test_spanish_voucher_in_the_first_occupants_language():
    html = voucher_html(
        data=data(VoucherRoom(occupants=(occupant("Pablo Ruiz", "es-ES"), occupant("Ana Ruiz", "en", n=2))))
    )
    [(language, page)] = pages(html)
    assert language == "es"
    for text in ("Bono de hotel", "Huéspedes", "Pablo Ruiz", "Ana Ruiz", "Dirección", "Cómo llegar", "Noches"):
        assert text in page, text
    assert "Nada concedido todavía" in page  # no grants


def test_one_page_per_room_each_in_its_language_with_a_print_page_break():
    html = voucher_html(
        data=data(
            VoucherRoom(occupants=(occupant("Ana Garcia", "es"),)),
            VoucherRoom(occupants=(occupant("John Smith", "en", n=2),), accessible=True),
            VoucherRoom(occupants=(occupant("Hans Müller", "de", n=3),)),
        )
    )
    found = pages(html)
    assert [language for language, _ in found] == ["es", "en", "en"]  # German falls back to English
    assert "Habitación 1 de 3" in found[0][1]
    assert "Room 2 of 3 · accessible room" in found[1][1]
    assert "John Smith" not in found[0][1] and "Ana Garcia" not in found[1][1]
    assert "@media print" in html and "page-break-after: always" in html and "break-after: page" in html


def test_lang_overrides_every_page():
    html = voucher_html(
        data=data(VoucherRoom(occupants=(occupant("A", "en"),)), VoucherRoom(occupants=(occupant("B", "en", n=2),))),
        language="es",
    )
    assert [language for language, _ in pages(html)] == ["es", "es"]


def test_qr_code_is_the_qrcode_librarys_svg_of_the_urn_and_confirmation_number():
    html = voucher_html(data=data(VoucherRoom(occupants=(occupant("Ana"),))))
    payload = voucher_qr_payload(reservation_urn=URN, confirmation_number="HB-4471")
    assert payload == f"{URN}|HB-4471"
    expected = qrcode.make(payload, image_factory=qrcode.image.svg.SvgPathImage, border=2).to_string(encoding="unicode")
    path = re.search(r'<path d="([^"]+)"', expected).group(1)
    assert f'<path d="{path}"' in html  # the very modules qrcode drew for that payload, inline
    other = qrcode.make(f"{URN}|OTHER", image_factory=qrcode.image.svg.SvgPathImage, border=2)
    assert re.search(r'<path d="([^"]+)"', other.to_string(encoding="unicode")).group(1) not in html
    assert "<?xml" not in html


def test_names_and_hotel_values_are_escaped():
    evil = VoucherHotel(name="<b>Hotel</b>", address='"><script>x()</script>')
    html = voucher_html(
        data=VoucherData(
            reservation_urn=URN,
            confirmation_number="<i>1</i>",
            hotel=evil,
            check_in=dt.date(2026, 11, 22),
            nights=1,
            rooms=(VoucherRoom(occupants=(occupant("<script>alert(1)</script> O'Brien"),)),),
        )
    )
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; O&#x27;Brien" in html
    assert "&lt;b&gt;Hotel&lt;/b&gt;" in html
    assert "<i>1</i>" not in html
    assert "Ask at the airline" in html  # no coordinates: no maps link


def test_cancelled_voucher_says_it_is_not_valid_and_contract_meals_are_listed():
    html = voucher_html(data=data(VoucherRoom(occupants=(occupant("Ana"),)), status="CANCELLED", meals=("BREAKFAST",)))
    assert "This reservation is cancelled: the voucher is not valid." in html
    assert "Included at the hotel</dt><dd>breakfast" in html


def test_token_round_trip_tamper_and_age(settings):
    reservation_id, sub_case_id = uuid.uuid4(), uuid.uuid4()
    token = voucher_token_sign(reservation_id=reservation_id, sub_case_id=sub_case_id)
    assert "/" not in token and len(token) < 140
    read = voucher_token_read(token)
    assert (read.reservation_id, read.sub_case_id) == (reservation_id, sub_case_id)
    tampered = token.replace(reservation_id.hex[:4], "0000" if reservation_id.hex[:4] != "0000" else "1111", 1)
    assert voucher_token_read(tampered) is None
    assert voucher_token_read("garbage") is None
    assert voucher_token_read(token + "x") is None
    # signed with another salt (another signer of the same key): refused
    assert (
        voucher_token_read(signing.TimestampSigner(salt="other").sign(f"{reservation_id.hex}.{sub_case_id.hex}"))
        is None
    )
    settings.NEXA_VOUCHER_LINK_MAX_AGE_SECONDS = 60
    old = _signed_seconds_ago(f"{reservation_id.hex}.{sub_case_id.hex}", 120)
    assert voucher_token_read(old) is None
    assert voucher_token_read(_signed_seconds_ago(f"{reservation_id.hex}.{sub_case_id.hex}", 10)) is not None


def _signed_seconds_ago(value, seconds):
    class Past(signing.TimestampSigner):
        def timestamp(self):
            return signing.b62_encode(int(dt.datetime.now(tz=dt.UTC).timestamp()) - seconds)

    return Past(salt=vouchers._TOKEN_SALT, algorithm="sha256").sign(value)


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium package is not installed")
def test_printing_gives_one_page_per_room(tmp_path):
    rooms = tuple(VoucherRoom(occupants=(occupant(f"Guest {i}", "es" if i % 2 else "en", n=i),)) for i in range(3))
    page = tmp_path / "voucher.html"
    page.write_text(voucher_html(data=data(*rooms, meals=("BREAKFAST",))), encoding="utf-8")
    pdf = tmp_path / "voucher.pdf"
    subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-pdf-header-footer",
            f"--print-to-pdf={pdf}",
            page.as_uri(),
        ],
        capture_output=True,
        timeout=90,
        check=True,
    )
    assert len(re.findall(rb"/Type\s*/Page[^s]", pdf.read_bytes())) == 3
