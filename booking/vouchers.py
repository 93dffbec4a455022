"""The printable hotel voucher: a pure renderer over plain data, and the signed passenger link.

``booking`` may not read passengers (``cases`` is a layer above), so the voucher is rendered from
:class:`VoucherData` that ``cases.selectors`` gathers (names, languages, meals and transport granted) —
the same split as the allocation engine. One printed page per room (CSS page breaks), each page in its
own language: the ``?lang=`` override, else the room's first occupant's ``language``, else English. The
room pages are per-language templates (``booking/voucher_room_<lang>.html``); names and every other
value are auto-escaped by the Django template engine.

The QR code is drawn by the ``qrcode`` library (SVG path factory, inline SVG, no Pillow) and encodes
:func:`voucher_qr_payload`: the reservation URN and the confirmation number, what a hotel desk needs to
find the booking.

Passenger links: the operator route needs a bearer token, so the SMS/WhatsApp message carries
``/v1/vouchers/{token}`` instead, where ``token`` is a :class:`~django.core.signing.TimestampSigner`
signature over the reservation and sub-case ids (:func:`voucher_token_sign`). It is valid until the day
after check-out (check-in + nights + 1 day) and never longer than ``NEXA_VOUCHER_LINK_MAX_AGE_SECONDS``.
"""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from dataclasses import dataclass, field

import qrcode
import qrcode.image.svg
from django.conf import settings
from django.core import signing
from django.template.loader import render_to_string
from django.utils.safestring import mark_safe

VOUCHER_LANGUAGES = ("en", "es")
FALLBACK_LANGUAGE = "en"
_TOKEN_SALT = "booking.vouchers.link"


# --- the data a voucher is rendered from ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VoucherGrant:
    """A meal or transport item the passenger's compensation saga delivered."""

    kind: str  # "MEAL" | "TRANSPORT"
    amount: str = ""
    currency: str = ""
    provider: str = ""
    eta_minutes: int | None = None


@dataclass(frozen=True, slots=True)
class VoucherOccupant:
    sub_case_urn: str
    name: str
    language: str = FALLBACK_LANGUAGE
    grants: tuple[VoucherGrant, ...] = ()


@dataclass(frozen=True, slots=True)
class VoucherRoom:
    occupants: tuple[VoucherOccupant, ...]
    accessible: bool = False


@dataclass(frozen=True, slots=True)
class VoucherHotel:
    name: str
    address: str = ""
    phone: str = ""
    lat: float | None = None
    lng: float | None = None
    distance_km: float | None = None
    airport: str = ""


@dataclass(frozen=True, slots=True)
class VoucherData:
    reservation_urn: str
    confirmation_number: str
    hotel: VoucherHotel
    check_in: dt.date
    nights: int
    rooms: tuple[VoucherRoom, ...]
    status: str = "CONFIRMED"
    flight_number: str = ""
    meals_included: tuple[str, ...] = field(default=())  # at the hotel, from a contract (BREAKFAST …)


# --- rendering ----------------------------------------------------------------------------------------


def voucher_language(raw: str | None) -> str | None:
    """A supported voucher language for a language tag ("es-ES" → "es"), else ``None``."""
    primary = (raw or "").strip().lower().replace("_", "-").split("-")[0]
    return primary if primary in VOUCHER_LANGUAGES else None


def room_language(room: VoucherRoom, override: str | None = None) -> str:
    """The page's language: the override, else the first occupant's, else English."""
    chosen = voucher_language(override)
    if chosen:
        return chosen
    first = room.occupants[0].language if room.occupants else None
    return voucher_language(first) or FALLBACK_LANGUAGE


def voucher_qr_payload(*, reservation_urn: str, confirmation_number: str) -> str:
    """What the QR code encodes: ``<reservation URN>|<confirmation number>``."""
    return f"{reservation_urn}|{confirmation_number}"


@functools.lru_cache(maxsize=2048)
def qr_svg(payload: str) -> str:
    """``payload`` as an inline SVG QR code drawn by the qrcode library (one path, no XML declaration).
    Cached: drawing one costs ~30 ms of pure Python, and every passenger of a reservation has the same one."""
    image = qrcode.make(payload, image_factory=qrcode.image.svg.SvgPathImage, border=2)
    svg = image.to_string(encoding="unicode")
    if svg.startswith("<?xml"):
        svg = svg.split("?>", 1)[1]
    return svg.strip()


def maps_url(lat: float | None, lng: float | None) -> str:
    if lat is None or lng is None:
        return ""
    return f"https://www.google.com/maps/search/?api=1&query={lat:.6f},{lng:.6f}"


def voucher_html(*, data: VoucherData, language: str | None = None) -> str:
    """The printable voucher: one page per room of ``data.rooms``, each in its language (``language``
    overrides every page). Pure: reads nothing but its arguments and the templates."""
    check_out = data.check_in + dt.timedelta(days=data.nights)
    payload = voucher_qr_payload(reservation_urn=data.reservation_urn, confirmation_number=data.confirmation_number)
    qr = mark_safe(qr_svg(payload))  # noqa: S308 - generated by qrcode from our own payload, not user markup
    hotel = data.hotel
    pages = []
    for index, room in enumerate(data.rooms, start=1):
        page_language = room_language(room, language)
        pages.append(
            mark_safe(  # noqa: S308 - rendered by the template engine, which escaped every value
                render_to_string(
                    f"booking/voucher_room_{page_language}.html",
                    {
                        "data": data,
                        "hotel": hotel,
                        "room": room,
                        "room_number": index,
                        "room_count": len(data.rooms),
                        "grants": [(occupant.name, grant) for occupant in room.occupants for grant in occupant.grants],
                        "check_out": check_out,
                        "qr": qr,
                        "qr_payload": payload,
                        "maps_url": maps_url(hotel.lat, hotel.lng),
                        "valid": data.status in ("HELD", "CONFIRMED"),
                        "language": page_language,
                    },
                )
            )
        )
    document_language = room_language(data.rooms[0], language) if data.rooms else (voucher_language(language) or "en")
    return render_to_string("booking/voucher.html", {"data": data, "pages": pages, "language": document_language})


# --- passenger links ----------------------------------------------------------------------------------


def _signer() -> signing.TimestampSigner:
    return signing.TimestampSigner(salt=_TOKEN_SALT, algorithm="sha256")


def voucher_token_sign(*, reservation_id: uuid.UUID, sub_case_id: uuid.UUID) -> str:
    """A URL-safe token naming one passenger's room of one reservation (hex ids: a short SMS link)."""
    return _signer().sign(f"{uuid.UUID(str(reservation_id)).hex}.{uuid.UUID(str(sub_case_id)).hex}")


@dataclass(frozen=True, slots=True)
class VoucherToken:
    reservation_id: uuid.UUID
    sub_case_id: uuid.UUID
    signed_at: dt.datetime


def voucher_token_read(token: str) -> VoucherToken | None:
    """The ids a token names, or ``None`` when it is tampered with, malformed or older than
    ``NEXA_VOUCHER_LINK_MAX_AGE_SECONDS`` (the stay's own end is the caller's check)."""
    if not isinstance(token, str) or len(token) > 200:
        return None
    signer = _signer()
    try:
        value = signer.unsign(token, max_age=dt.timedelta(seconds=settings.NEXA_VOUCHER_LINK_MAX_AGE_SECONDS))
        _, timestamp, _ = token.rsplit(signer.sep, 2)
        signed_at = dt.datetime.fromtimestamp(signing.b62_decode(timestamp), tz=dt.UTC)
        reservation_hex, sub_case_hex = value.split(".")
        return VoucherToken(uuid.UUID(hex=reservation_hex), uuid.UUID(hex=sub_case_hex), signed_at)
    except (signing.BadSignature, ValueError):
        return None


def voucher_link_valid_until(*, check_in: dt.date, nights: int) -> dt.datetime:
    """A passenger link works until the end of the day after check-out (UTC)."""
    last_day = check_in + dt.timedelta(days=nights + 1)
    return dt.datetime.combine(last_day + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
