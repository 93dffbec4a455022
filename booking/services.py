"""Commands of the booking domain used by the compensation saga: provider effects (PSP cards and
payouts, ground transport) and the passenger-wallet ledger.

Provider calls are never made inside a transaction (they are slow and cannot be rolled back); each
is idempotent by the ``idempotency_key`` the saga passes (its step URN), so repeating a call after a
crash has no second effect. Ledger writes run in the caller's transaction and are idempotent by
``reference`` + kind (``INSERT … ON CONFLICT DO NOTHING``).

Adapters live in :mod:`booking.payments` and :mod:`booking.transport`; they raise
:mod:`nexa.platform.providers` errors (transient, permanent, unavailable) which callers handle.
"""

import datetime as dt
from decimal import Decimal
from typing import Any, Protocol

from django.db import IntegrityError, transaction
from django.utils import timezone

from audit import services as audit
from booking.airports import airport_get
from booking.contracts.models import Contract
from booking.contracts.selectors import _release_at, contract_offers
from booking.contracts.services import (  # noqa: F401 - contract commands other apps and seed_demo call
    ContractTerms,
    catalog_hotel_urns,
    contract_create,
    contract_update,
    demo_contracts_seed,
)
from booking.hotel_data import VENDORS as _VENDOR_DATA
from booking.hotel_search import (  # noqa: F401 - the hotel-search hooks other apps register (docs/hotels.md)
    CaseContext,
    ContractOffer,
    SearchQuery,
    SearchRules,
    hotels_search,
    register_case_context_lookup,
    register_contract_offers_source,
    register_policy_rules_source,
)
from booking.hotels import hotels_seed_demo  # noqa: F401 - the demo catalog, for seed_demo
from booking.models import (
    ACTIVE_RESERVATION_STATUSES,
    Hotel,
    Reservation,
    ReservationSource,
    ReservationStatus,
    RoomNight,
    WalletEntry,
    WalletEntryKind,
)
from booking.payments import psp_client
from booking.transport import transport_client
from booking.vendors import SearchArea, configured_vendors, hotel_vendor
from nexa.platform.problems import conflict_problem
from nexa.platform.providers import ProviderError, ProviderPermanentError
from nexa.platform.urns import format_urn, parse_urn


class SubCase(Protocol):
    """A ``cases.SubCase`` row, as far as the wallet ledger reads it. Cases sits above booking
    (docs/architecture.md): the saga passes its row in, booking never imports that app."""

    pk: Any
    urn: str
    airline: str


# --- provider effects (no transaction: callers persist the outcome) -----------------------------------


def _moment(value: dt.datetime | str | None) -> dt.datetime | None:
    if value is None or isinstance(value, dt.datetime):
        return value
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def meal_card_issue(
    *, idempotency_key: str, sub_case_urn: str, amount: Decimal | str, currency: str, expires_at: dt.datetime | str
) -> dict[str, Any]:
    """A single-use virtual card limited to ``amount`` until ``expires_at`` → the PSP's card ({cardId, …})."""

    return psp_client().issue_virtual_card(
        idempotency_key=idempotency_key,
        sub_case_urn=sub_case_urn,
        amount=Decimal(str(amount)),
        currency=currency,
        expires_at=_moment(expires_at),
    )


def meal_card_void(*, idempotency_key: str, card_id: str) -> dict[str, Any]:

    return psp_client().void_card(idempotency_key=idempotency_key, card_id=card_id)


def cash_payout(
    *, idempotency_key: str, sub_case_urn: str, amount: Decimal | str, currency: str, regulation: str
) -> dict[str, Any]:
    """Pay ``amount`` into the passenger's wallet at the PSP → {payoutId, …}. Record it in the ledger
    with :func:`wallet_credit_record` in the transaction that marks the step done."""

    return psp_client().payout(
        idempotency_key=idempotency_key,
        sub_case_urn=sub_case_urn,
        amount=Decimal(str(amount)),
        currency=currency,
        regulation=regulation,
    )


def cash_payout_reverse(*, idempotency_key: str, payout_id: str) -> dict[str, Any]:

    return psp_client().reverse_payout(idempotency_key=idempotency_key, payout_id=payout_id)


def transport_ride_request(
    *,
    idempotency_key: str,
    provider: str,
    sub_case_urn: str,
    pickup: dict,
    dropoff: dict,
    pickup_at: dt.datetime | str | None,
) -> dict[str, Any]:
    """Book a ride with ``provider`` (UBER or CABIFY) → {rideId, provider, status, etaMinutes}."""

    return transport_client(provider).request_ride(
        idempotency_key=idempotency_key,
        sub_case_urn=sub_case_urn,
        pickup=pickup,
        dropoff=dropoff,
        pickup_at=_moment(pickup_at),
    )


def transport_ride_cancel(*, idempotency_key: str, provider: str, ride_id: str) -> dict[str, Any]:

    return transport_client(provider).cancel_ride(idempotency_key=idempotency_key, ride_id=ride_id)


def effect_lookup(*, kind: str, idempotency_key: str, provider: str | None = None) -> dict[str, Any] | None:
    """Resolve a step whose outcome is unknown with its provider, under its ORIGINAL key: the effect
    made (the same shape the effect call returns) or ``None`` when the provider confirms it never
    executed a request with that key. Provider errors propagate (the outcome stays unknown)."""
    if kind in ("MEAL", "CASH"):
        client = psp_client()
        found = (client.card_lookup if kind == "MEAL" else client.payout_lookup)(idempotency_key=idempotency_key)
        return None if found is None else {"provider": "psp", **found}
    if kind == "TRANSPORT":
        return transport_client(provider or "").ride_lookup(idempotency_key=idempotency_key)
    raise ValueError(f"no provider lookup for {kind}")


# --- the wallet ledger --------------------------------------------------------------------------------


def _ledger_insert(
    *,
    sub_case: SubCase,
    kind: str,
    amount: Decimal,
    currency: str,
    reference: str,
    provider_ref: str,
    actor: str,
    case_urn: str,
) -> WalletEntry | None:
    """Insert one ledger row unless (reference, kind) exists; audited. ``None`` when it existed."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("wallet ledger writes must run inside the caller's transaction")
    entry = WalletEntry(
        airline=sub_case.airline,
        sub_case_id=sub_case.pk,
        kind=kind,
        amount=amount,
        currency=currency,
        reference=reference,
        provider_ref=provider_ref,
    )
    created = WalletEntry.objects.bulk_create([entry], ignore_conflicts=True)
    if not WalletEntry.objects.filter(pk=created[0].pk).exists():
        return None
    audit.record(
        airline=sub_case.airline,
        actor=actor,
        action=f"wallet.{kind.lower()}",
        entity_urn=sub_case.urn,
        case_urn=case_urn,
        after={"amount": str(amount), "currency": currency, "reference": reference, "providerRef": provider_ref},
    )
    return entry


def wallet_credit_record(
    *,
    sub_case: SubCase,
    amount: Decimal | str,
    currency: str,
    reference: str,
    payout_id: str,
    actor: str,
    case_urn: str,
) -> WalletEntry | None:
    """Ledger: a PSP payout credited the passenger's wallet (+amount). Idempotent by ``reference``."""
    return _ledger_insert(
        sub_case=sub_case,
        kind=WalletEntryKind.CREDIT,
        amount=Decimal(str(amount)),
        currency=currency,
        reference=reference,
        provider_ref=payout_id,
        actor=actor,
        case_urn=case_urn,
    )


def wallet_reversal_record(
    *,
    sub_case: SubCase,
    amount: Decimal | str,
    currency: str,
    reference: str,
    payout_id: str,
    actor: str,
    case_urn: str,
) -> WalletEntry | None:
    """Ledger: a credited payout was reversed at the PSP (-amount). Idempotent by ``reference``."""
    return _ledger_insert(
        sub_case=sub_case,
        kind=WalletEntryKind.REVERSAL,
        amount=-Decimal(str(amount)),
        currency=currency,
        reference=reference,
        provider_ref=payout_id,
        actor=actor,
        case_urn=case_urn,
    )


# --- hotel rooms: vendor calls (no transaction) and reservation writes (issue 12, docs/booking.md) ------
#
# The booking saga (cases.saga.hotel) calls the vendor through these, under its step URN as the key, and
# records what happened in Reservation/RoomNight rows through the ``reservation_*`` commands below —
# the only writers of those tables. Every occupant's night is one RoomNight row while the reservation is
# active: the partial unique constraint ``room_night_one_per_passenger`` refuses a second active one,
# which the commands turn into a 409 naming the reservation that holds it (the duplicate-voucher guard).


ROOM_NIGHT_CONSTRAINT = "room_night_one_per_passenger"
CONTRACT_PROVIDER = "contract"


def _vendor_answer(vendor: str, operation: str, answer: dict[str, Any]) -> dict[str, Any]:
    """A vendor's raw answer to hold/confirm/cancel (as replayed by its key lookup) in our shape:
    ``{provider, vendor, holdId|bookingId, expiresAt?, status}``."""
    shape = _VENDOR_DATA.get(vendor, {}).get("shape", "")
    try:
        if shape == "geo-post":
            body = answer["hold"] if operation == "hold" else answer["booking"]
            ident, expires = body["reference"], body.get("expiresAt")
        elif shape == "rapid":
            ident, expires = answer["itinerary_id"], answer.get("hold_expires_at")
        else:
            ident = answer["holdId"] if operation == "hold" else answer["bookingId"]
            expires = answer.get("expiresAt")
    except (KeyError, TypeError) as error:
        raise ProviderPermanentError(
            provider=vendor, code="malformed_answer", message=f"{operation}: {error}", attempt_detail={}
        ) from error
    status = {"hold": "HELD", "confirm": "CONFIRMED", "cancel": "CANCELLED"}[operation]
    out: dict[str, Any] = {"provider": vendor, "vendor": vendor, "status": status}
    out["holdId" if operation == "hold" else "bookingId"] = str(ident)
    if operation == "hold":
        out["expiresAt"] = expires
    return out


def _booking_json(booking: Any, operation: str) -> dict[str, Any]:
    out: dict[str, Any] = {"provider": booking.vendor, "vendor": booking.vendor, "status": booking.status}
    out["holdId" if operation == "hold" else "bookingId"] = booking.booking_id
    if operation == "hold":
        out["expiresAt"] = booking.expires_at.isoformat() if booking.expires_at else None
    return out


def hotel_hold(*, idempotency_key: str, vendor: str, offer_ref: str, rooms: int, reference: str) -> dict[str, Any]:
    """A soft hold of ``rooms`` rooms of the vendor offer ``offer_ref`` → {provider, vendor, holdId, expiresAt}."""
    booking = hotel_vendor(vendor).hold(
        idempotency_key=idempotency_key, offer_ref=offer_ref, rooms=rooms, reference=reference
    )
    return _booking_json(booking, "hold")


def hotel_confirm(*, idempotency_key: str, vendor: str, hold_id: str) -> dict[str, Any]:
    """Confirm a hold → {provider, vendor, bookingId, status: CONFIRMED}."""
    return _booking_json(hotel_vendor(vendor).confirm(idempotency_key=idempotency_key, hold_id=hold_id), "confirm")


def hotel_cancel(*, idempotency_key: str, vendor: str, booking_id: str) -> dict[str, Any]:
    """Cancel a hold or a confirmed booking at the vendor (compensation, release) → {…, status: CANCELLED}."""
    return _booking_json(hotel_vendor(vendor).cancel(idempotency_key=idempotency_key, booking_id=booking_id), "cancel")


def hotel_lookup(*, vendor: str, operation: str, idempotency_key: str) -> dict[str, Any] | None:
    """What the vendor did under ``idempotency_key`` (the ORIGINAL key of a hold/confirm/cancel in doubt),
    in the shape of :func:`hotel_hold` / :func:`hotel_confirm`, or ``None``: it never executed it."""
    found = hotel_vendor(vendor).lookup(idempotency_key=idempotency_key)
    return None if found is None else _vendor_answer(vendor, operation, found)


def hotel_card_issue(
    *, idempotency_key: str, sub_case_urn: str, amount: Decimal | str, currency: str, expires_at: dt.datetime | str
) -> dict[str, Any]:
    """A single-use virtual card paying the hotel for a stay (purpose: hotel), limited to the stay's total.
    The PSP API knows one card kind; the purpose is ours (the step and the reservation record it)."""
    card = meal_card_issue(
        idempotency_key=idempotency_key,
        sub_case_urn=sub_case_urn,
        amount=amount,
        currency=currency,
        expires_at=expires_at,
    )
    return {"provider": "psp", "purpose": "hotel", **card}


def hotel_card_lookup(*, idempotency_key: str) -> dict[str, Any] | None:
    found = psp_client().card_lookup(idempotency_key=idempotency_key)
    return None if found is None else {"provider": "psp", "purpose": "hotel", **found}


def hotel_card_void(*, idempotency_key: str, card_id: str) -> dict[str, Any]:
    return {"provider": "psp", **meal_card_void(idempotency_key=idempotency_key, card_id=card_id)}


# --- reservation rows ------------------------------------------------------------------------------------


def stay_nights(check_in: dt.date, nights: int) -> list[dt.date]:
    return [check_in + dt.timedelta(days=n) for n in range(nights)]


def _occupant_ids(rooms: list[dict[str, Any]]) -> list[Any]:
    return [parse_urn(urn, "subcase").id for room in rooms for urn in room.get("occupants", [])]


def _room_night_conflict(*, sub_case_ids: list[Any], nights: list[dt.date]):
    """The 409 naming the first active reservation holding one of these passengers' nights, or ``None``."""
    taken = (
        RoomNight.objects.filter(sub_case_id__in=sub_case_ids, night__in=nights, active=True)
        .select_related("reservation")
        .order_by("reservation__created_at", "night")
        .first()
    )
    if taken is None:
        return None
    first = taken.reservation
    sub_case_urn = format_urn("subcase", taken.sub_case_id)
    return conflict_problem(
        slug="room-night-taken",
        title="The passenger already has a room that night",
        detail=f"{sub_case_urn} already has an active room on {taken.night.isoformat()} in {first.urn} "
        "(one room-night per passenger per disruption).",
        reservationUrn=first.urn,
        subCaseUrn=sub_case_urn,
        night=taken.night.isoformat(),
    )


def _claim_nights(reservation: Reservation, sub_case_ids: list[Any]) -> None:
    """Insert the reservation's active room-nights (caller's transaction); 409 naming the first holder."""
    nights = stay_nights(reservation.check_in, reservation.nights)
    problem = _room_night_conflict(sub_case_ids=sub_case_ids, nights=nights)
    if problem is not None:
        raise problem
    rows = [
        RoomNight(airline=reservation.airline, reservation=reservation, sub_case_id=sub_case_id, night=night)
        for sub_case_id in sub_case_ids
        for night in nights
    ]
    try:
        with transaction.atomic():  # a savepoint: the constraint error leaves the caller's transaction usable
            RoomNight.objects.bulk_create(rows)
    except IntegrityError as error:
        if ROOM_NIGHT_CONSTRAINT not in str(error):
            raise
        # A concurrent booking committed first: name it (it is visible now that it committed).
        problem = _room_night_conflict(sub_case_ids=sub_case_ids, nights=nights)
        raise problem or conflict_problem(
            slug="room-night-taken",
            title="The passenger already has a room that night",
            detail="another active reservation holds one of these passengers' nights",
        ) from error


def _contract_capacity_check(*, contract_id: Any, check_in: dt.date, nights: int, rooms: int) -> None:
    """A call-off takes ``rooms`` of the contract's allotment each night; refuse when a night is full.
    Locks the contract's current row so concurrent call-offs of one contract are counted one by one."""
    contract = Contract.objects.select_for_update().filter(pk=contract_id).first()
    if contract is None:
        raise ProviderPermanentError(
            provider=CONTRACT_PROVIDER, code="contract_not_found", message="no such contract", attempt_detail={}
        )
    Contract.objects.select_for_update().filter(contract_id=contract.contract_id, current=True).first()
    wanted = stay_nights(check_in, nights)
    used = dict.fromkeys(wanted, 0)
    others = Reservation.objects.filter(
        contract__contract_id=contract.contract_id,
        status__in=ACTIVE_RESERVATION_STATUSES,
        check_in__lte=wanted[-1],
        check_in__gte=wanted[0] - dt.timedelta(days=60),
    )
    for other in others:
        for night in stay_nights(other.check_in, other.nights):
            if night in used:
                used[night] += len(other.rooms)
    full = [night for night, count in used.items() if count + rooms > contract.allotment]
    if full:
        raise ProviderPermanentError(
            provider=CONTRACT_PROVIDER,
            code="not_enough_rooms",
            message=f"the contract's allotment of {contract.allotment} rooms is taken on {full[0].isoformat()}",
            attempt_detail={"httpStatus": 409},
        )


def _reservation_audit(reservation: Reservation, *, actor: str, action: str, case_urn: str, **kw: Any) -> None:
    audit.record(
        airline=reservation.airline,
        actor=actor,
        action=action,
        entity_urn=reservation.urn,
        case_urn=case_urn,
        **kw,
    )


def reservation_hold_record(
    *,
    airline: str,
    case_id: Any,
    case_urn: str,
    hotel_id: Any | None,
    hotel_name: str,
    source: str,
    vendor: str,
    contract_id: Any | None,
    offer_ref: str,
    check_in: dt.date,
    nights: int,
    rooms: list[dict[str, Any]],
    nightly_rate: Decimal | None,
    currency: str,
    direct_billed: bool,
    hold_expires_at: dt.datetime | None,
    allocation_urn: str = "",
    group_urn: str = "",
    saga_urn: str = "",
    actor: str,
    reason: str = "",
) -> Reservation:
    """A HELD reservation and its occupants' active room-nights, before (vendor) or as (contract call-off)
    the rooms are taken. Idempotent per run and offer: while the run (``saga_urn``) has an active
    reservation of ``offer_ref`` it is returned (a step re-run after a crash claims nothing twice).
    A passenger who already has an active room one of these nights → 409 naming
    the first reservation; a contract allotment full that night → ProviderPermanentError not_enough_rooms."""
    with transaction.atomic():
        if saga_urn:
            existing = Reservation.objects.filter(
                airline=airline, saga_urn=saga_urn, offer_ref=offer_ref, status__in=ACTIVE_RESERVATION_STATUSES
            ).first()
            if existing is not None:
                return existing
        if source == ReservationSource.CONTRACT and contract_id is not None:
            _contract_capacity_check(contract_id=contract_id, check_in=check_in, nights=nights, rooms=len(rooms))
        reservation = Reservation.objects.create(
            airline=airline,
            case_id=case_id,
            hotel_id=hotel_id,
            hotel_name=hotel_name,
            source=source,
            vendor=vendor,
            contract_id=contract_id,
            offer_ref=offer_ref,
            check_in=check_in,
            nights=nights,
            rooms=rooms,
            status=ReservationStatus.HELD,
            hold_expires_at=hold_expires_at,
            nightly_rate=nightly_rate,
            currency=currency,
            direct_billed=direct_billed,
            allocation_urn=allocation_urn,
            group_urn=group_urn,
            saga_urn=saga_urn,
            created_by=actor,
            reason=reason,
        )
        _claim_nights(reservation, _occupant_ids(rooms))
        _reservation_audit(
            reservation,
            actor=actor,
            action="reservation.held",
            case_urn=case_urn,
            after={
                "status": reservation.status,
                "source": source,
                "vendor": vendor,
                "hotelName": hotel_name,
                "checkIn": check_in.isoformat(),
                "nights": nights,
                "rooms": len(rooms),
                "sagaUrn": saga_urn,
            },
        )
    return reservation


def _locked(reservation_urn: str) -> Reservation:
    return Reservation.objects.select_for_update().get(pk=parse_urn(reservation_urn, "reservation").id)


def reservation_hold_attach(
    *, reservation_urn: str, hold_id: str, hold_expires_at: dt.datetime | str | None, actor: str
) -> Reservation:
    """The vendor's hold id (and expiry) on a HELD reservation, in the caller's transaction."""
    with transaction.atomic():
        reservation = _locked(reservation_urn)
        reservation.hold_id = hold_id
        reservation.hold_expires_at = _moment(hold_expires_at) or reservation.hold_expires_at
        reservation.save(update_fields=["hold_id", "hold_expires_at", "updated_at"])
    return reservation


def reservation_card_attach(*, reservation_urn: str, card_id: str, actor: str) -> Reservation:
    with transaction.atomic():
        reservation = _locked(reservation_urn)
        reservation.card_id = card_id
        reservation.save(update_fields=["card_id", "updated_at"])
    return reservation


def reservation_confirm_record(
    *, reservation_urn: str, confirmation_number: str, actor: str, case_urn: str
) -> Reservation:
    """HELD → CONFIRMED with the hotel's confirmation number (idempotent: a CONFIRMED one is returned as is).
    A reservation released meanwhile (CANCELLED/FAILED: its hold expired and was swept) → 409."""
    with transaction.atomic():
        reservation = _locked(reservation_urn)
        if reservation.status == ReservationStatus.CONFIRMED:
            return reservation
        if reservation.status != ReservationStatus.HELD:
            raise conflict_problem(
                slug="reservation-not-held",
                title="The reservation is no longer held",
                detail=f"{reservation.urn} is {reservation.status}; only a HELD reservation can be confirmed.",
                currentStatus=reservation.status,
            )
        reservation.status = ReservationStatus.CONFIRMED
        reservation.confirmation_number = confirmation_number
        reservation.hold_expires_at = None
        reservation.save(update_fields=["status", "confirmation_number", "hold_expires_at", "updated_at"])
        _reservation_audit(
            reservation,
            actor=actor,
            action="reservation.confirmed",
            case_urn=case_urn,
            before={"status": ReservationStatus.HELD},
            after={"status": reservation.status, "confirmationNumber": confirmation_number},
        )
    return reservation


def reservation_release(
    *, reservation_urn: str, reason: str, actor: str, case_urn: str, status: str = ReservationStatus.CANCELLED
) -> Reservation:
    """Cancel (or fail) a reservation: every room-night inactive. Idempotent. The vendor side (cancel the
    hold/booking) is the caller's, outside the transaction."""
    with transaction.atomic():
        reservation = _locked(reservation_urn)
        if reservation.status in (ReservationStatus.CANCELLED, ReservationStatus.FAILED):
            return reservation
        before = reservation.status
        reservation.status = status
        reservation.release_reason = reason[:200]
        reservation.cancelled_at = timezone.now()
        reservation.save(update_fields=["status", "release_reason", "cancelled_at", "updated_at"])
        RoomNight.objects.filter(reservation=reservation, active=True).update(active=False)
        _reservation_audit(
            reservation,
            actor=actor,
            action="reservation.released" if status == ReservationStatus.CANCELLED else "reservation.failed",
            case_urn=case_urn,
            reason=reason,
            before={"status": before},
            after={"status": status},
        )
    return reservation


def reservation_fail_record(*, reservation_urn: str, reason: str, actor: str, case_urn: str) -> Reservation:
    """A hold that did not happen (refused, or the saga gave it up): FAILED, room-nights released."""
    return reservation_release(
        reservation_urn=reservation_urn, reason=reason, actor=actor, case_urn=case_urn, status=ReservationStatus.FAILED
    )


def reservation_manual_create(
    *,
    principal: Any,
    case_id: Any,
    case_urn: str,
    hotel: Any,
    sub_case_urns: list[str],
    check_in: dt.date,
    nights: int,
    confirmation_number: str,
    nightly_rate: Decimal,
    currency: str,
    reason: str,
) -> Reservation:
    """A reservation a supervisor booked out of band: CONFIRMED, source MANUAL, no vendor call; one room
    per passenger list as given (the operator booked them together). The room-night guard applies (409
    naming the first reservation). Runs in the caller's transaction when there is one."""
    rooms = [{"occupants": list(sub_case_urns), "accessible": False}]
    with transaction.atomic():
        reservation = Reservation.objects.create(
            airline=principal.airline,
            case_id=case_id,
            hotel=hotel,
            hotel_name=hotel.name,
            source=ReservationSource.MANUAL,
            check_in=check_in,
            nights=nights,
            rooms=rooms,
            status=ReservationStatus.CONFIRMED,
            confirmation_number=confirmation_number,
            nightly_rate=nightly_rate,
            currency=currency,
            direct_billed=True,
            created_by=principal.operator_urn,
            reason=reason,
        )
        _claim_nights(reservation, _occupant_ids(rooms))
        audit.record(
            principal=principal,
            action="reservation.manual_created",
            entity_urn=reservation.urn,
            case_urn=case_urn,
            reason=reason,
            after={
                "status": reservation.status,
                "source": reservation.source,
                "hotelUrn": hotel.urn,
                "checkIn": check_in.isoformat(),
                "nights": nights,
                "subCaseUrns": list(sub_case_urns),
                "confirmationNumber": confirmation_number,
            },
        )
    return reservation


def reservation_occupant_release(*, airline: str, sub_case_id: Any, reason: str, actor: str) -> list[Reservation]:
    """A passenger left the case (sub-case CANCELLED): their active room-nights are released, and each
    reservation left with no occupant is cancelled. Returns the reservations cancelled that way (the
    caller cancels them at the vendor, outside the transaction). In the caller's transaction."""
    sub_case_urn = format_urn("subcase", sub_case_id)
    emptied = []
    with transaction.atomic():
        ids = set(
            RoomNight.objects.filter(airline=airline, sub_case_id=sub_case_id, active=True).values_list(
                "reservation_id", flat=True
            )
        )
        for reservation in Reservation.objects.select_for_update().filter(pk__in=ids).order_by("created_at"):
            RoomNight.objects.filter(reservation=reservation, sub_case_id=sub_case_id).update(active=False)
            rooms = [
                {**room, "occupants": [u for u in room.get("occupants", []) if u != sub_case_urn]}
                for room in reservation.rooms
            ]
            rooms = [room for room in rooms if room["occupants"]]
            case_urn = format_urn("case", reservation.case_id)
            if rooms:
                reservation.rooms = rooms
                reservation.save(update_fields=["rooms", "updated_at"])
                _reservation_audit(
                    reservation,
                    actor=actor,
                    action="reservation.occupant_released",
                    case_urn=case_urn,
                    reason=reason,
                    after={"subCaseUrn": sub_case_urn, "rooms": len(rooms)},
                )
            else:
                emptied.append(
                    reservation_release(reservation_urn=reservation.urn, reason=reason, actor=actor, case_urn=case_urn)
                )
    return emptied


def reservation_vendor_release(*, reservation: Reservation, idempotency_key: str) -> dict[str, Any] | None:
    """Give a released reservation's rooms back to the vendor (cancel the hold or booking). A contract
    call-off or a manual booking has nothing to cancel at a vendor (``None``)."""
    if reservation.source != ReservationSource.VENDOR or not reservation.hold_id or not reservation.vendor:
        return None
    # A confirmed vendor booking is cancelled by its booking reference (the confirmation number), a hold by its id.
    booking_id = reservation.confirmation_number or reservation.hold_id
    return hotel_cancel(idempotency_key=idempotency_key, vendor=reservation.vendor, booking_id=booking_id)


def reservations_release_expired(*, now: dt.datetime, actor: str, limit: int = 200) -> list[str]:
    """The sweep: HELD reservations past ``hold_expires_at`` (never confirmed) are cancelled at the vendor
    (under ``<reservation URN>/release``) and their room-nights released. A vendor error leaves the row
    HELD for the next sweep (the vendor's own TTL frees the rooms anyway). Returns the URNs released."""
    released = []
    due = Reservation.objects.filter(status=ReservationStatus.HELD, hold_expires_at__lt=now).order_by(
        "hold_expires_at"
    )[:limit]
    for reservation in due:
        try:
            reservation_vendor_release(reservation=reservation, idempotency_key=f"{reservation.urn}/release")
        except ProviderError:
            continue
        reservation_release(
            reservation_urn=reservation.urn,
            reason="hold expired before confirmation",
            actor=actor,
            case_urn=format_urn("case", reservation.case_id),
        )
        released.append(reservation.urn)
    return released


def reservations_release_uncalled_contracts(*, now: dt.datetime, actor: str) -> list[str]:
    """Contract allotment "called off" means a contract reservation was CONFIRMED (the saga's CONFIRM step,
    or a manual booking): a contract call-off still HELD when the contract's release time (``releaseHours``
    before the check-in day, airport time) has passed goes back to the hotel. Returns the URNs released."""
    released = []
    held = Reservation.objects.filter(
        status=ReservationStatus.HELD, source=ReservationSource.CONTRACT, contract__isnull=False
    ).select_related("contract")
    for reservation in held:
        if _release_at(reservation.contract, reservation.check_in) > now:
            continue
        reservation_release(
            reservation_urn=reservation.urn,
            reason="contract allotment not called off by its release time",
            actor=actor,
            case_urn=format_urn("case", reservation.case_id),
        )
        released.append(reservation.urn)
    return released


# --- offers for one passenger's HOTEL compensation item ---------------------------------------------------

HOTEL_VENDOR_CODES = tuple(_VENDOR_DATA)
OFFER_SEARCH_RADIUS_KM = 30.0


def _plan_offer(*, offer_id: str, hotel: Hotel | None, source: str, vendor: str, contract_urn: str, rate: dict):
    """An offer in the stored plan's shape (what the hotel steps' ``offers`` hold)."""
    return {
        "offerId": offer_id,
        "hotelUrn": hotel.urn if hotel else None,
        "hotelName": hotel.name if hotel else "",
        "source": source,
        "vendor": vendor,
        "contractUrn": contract_urn,
        "nightlyRate": rate,
    }


def _contract_plan_offers(*, airline: str, hotel: Hotel, check_in: dt.date, nights: int) -> list[dict[str, Any]]:
    return [
        _plan_offer(
            offer_id=f"contract~{offer.contract_urn}",
            hotel=hotel,
            source=ReservationSource.CONTRACT,
            vendor="",
            contract_urn=offer.contract_urn,
            rate={"amount": f"{offer.nightly_rate:.2f}", "currency": offer.currency},
        )
        for offer in contract_offers(airline=airline, check_in=check_in, nights=nights, rooms=1, hotel_urns=[hotel.urn])
        if offer.sufficient
    ]


def _vendor_search(vendor: str, *, lat: float, lng: float, airport: str, check_in: dt.date, nights: int, radius: float):
    try:
        return hotel_vendor(vendor).search(
            area=SearchArea(airport=airport, lat=lat, lng=lng, radius_km=radius),
            check_in=check_in,
            nights=nights,
            rooms=1,
            occupancy=1,
        )
    except (ProviderError, ValueError):
        return []


def hotel_offers_for_hotel(*, airline: str, hotel_urn: str, check_in: dt.date, nights: int) -> list[dict[str, Any]]:
    """One room at a catalog hotel, for a HOTEL compensation item: the airline's contract with that hotel
    covering the stay (a call-off), else that hotel's offers from a fresh search of the vendors that carry it
    (cheapest first). ``[]``: no such hotel of the airline, or nothing available there."""
    hotel = Hotel.objects.filter(pk=parse_urn(hotel_urn, "hotel").id, airline=airline).first()
    if hotel is None:
        return []
    offers = _contract_plan_offers(airline=airline, hotel=hotel, check_in=check_in, nights=nights)
    if offers:
        return offers
    found = []
    for vendor, vendor_hotel in sorted((hotel.vendor_ids or {}).items()):
        if vendor not in configured_vendors():
            continue
        for offer in _vendor_search(vendor, lat=hotel.lat, lng=hotel.lng, airport=hotel.airport, check_in=check_in,
                                    nights=nights, radius=2.0):  # fmt: skip
            if offer.vendor_hotel_id == vendor_hotel:
                found.append(
                    _plan_offer(
                        offer_id=f"{vendor}~{offer.ref}",
                        hotel=hotel,
                        source=ReservationSource.VENDOR,
                        vendor=vendor,
                        contract_urn="",
                        rate=offer.nightly_rate.as_json(),
                    )
                )
    return sorted(found, key=lambda o: (o["nightlyRate"]["currency"], Decimal(o["nightlyRate"]["amount"])))


def hotel_offer_by_id(
    *, airline: str, airport: str, offer_id: str, check_in: dt.date, nights: int
) -> dict[str, Any] | None:
    """The offer ``offer_id`` (as ``POST /v1/hotels/search`` answers it) for one room, or ``None`` when it is
    not offered any more: a contract of the airline covering the stay, or the vendor's offer found again by
    a fresh search around ``airport`` (its rate and hotel are what the room saga pays and books)."""
    vendor, _, ref = offer_id.partition("~")
    if vendor == "contract":
        contract = Contract.objects.filter(
            airline=airline, contract_id=parse_urn(ref, "contract").id, current=True
        ).first()
        hotel = (
            Hotel.objects.filter(airline=airline, pk=parse_urn(contract.hotel_urn, "hotel").id).first()
            if contract
            else None
        )
        offers = _contract_plan_offers(airline=airline, hotel=hotel, check_in=check_in, nights=nights) if hotel else []
        return next((o for o in offers if o["offerId"] == offer_id), None)
    place = airport_get(iata=airport)
    if place is None or vendor not in HOTEL_VENDOR_CODES:
        return None
    by_vendor_id = {
        h.vendor_ids.get(vendor): h for h in Hotel.objects.filter(airline=airline, airport=airport) if h.vendor_ids
    }
    for offer in _vendor_search(vendor, lat=place.latitude, lng=place.longitude, airport=airport, check_in=check_in,
                                nights=nights, radius=OFFER_SEARCH_RADIUS_KM):  # fmt: skip
        if offer.ref == ref:
            hotel = by_vendor_id.get(offer.vendor_hotel_id)
            result = _plan_offer(offer_id=offer_id, hotel=hotel, source=ReservationSource.VENDOR, vendor=vendor,
                                 contract_urn="", rate=offer.nightly_rate.as_json())  # fmt: skip
            result["hotelName"] = result["hotelName"] or offer.name
            return result
    return None
