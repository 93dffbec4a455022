"""The hotel step kinds (issue 12, docs/booking.md § Booking): a room saga books one group's rooms at one
hotel — HOLD → PAY → CONFIRM → VOUCHER → NOTIFY — on the same engine as compensation (exactly once per
step: the step's key is the vendor's idempotency key; a step in doubt is resolved by the vendor's key
lookup under its ORIGINAL key before it is retried or undone).

Every hotel step's item carries the whole booking (``occupants``, ``rooms``, ``checkIn``, ``nights``,
``offers`` — the primary offer then the plan's alternatives — and ``offerIndex``, the one being tried);
the later steps read the offer actually held from the HOLD step's result. A run's lead is its first
occupant (``SagaRun.sub_case``), but every occupant is the run's passenger: the kinds name them all
(:meth:`StepKind.sub_case_ids`), so the engine sends each to review when the run fails, and each moves
BOOKING → BOOKED (VOUCHER) → NOTIFIED (NOTIFY).

Fallback: a HOLD that fails for good (hotel full, refused, vendor error, timeout after its attempts, an
open circuit) is run again with the next offer (:meth:`HotelHold.fallback`, at most
``NEXA_BOOKING_MAX_OFFER_ATTEMPTS`` offers), each failure recorded as an attempted hotel. A hold whose
outcome was never learnt keeps its key in the item (``inDoubt``) and is looked up before the next offer
is held: found, it is the step's hold (no second booking).

``HOTEL`` (the compensation item, ``POST /v1/subcases/{urn}/compensate``) expands to the same five steps.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.utils import timezone

from booking import services as booking
from booking.models import ACTIVE_RESERVATION_STATUSES, Contract, Reservation, ReservationSource
from cases import events as case_events
from cases.models import SagaRun, SagaRunStatus, SagaStep, SagaStepStatus
from cases.saga.common import SYSTEM_SAGA_ACTOR, subcases_advance, system_principal
from cases.saga.kinds import StepKind, register
from nexa.platform.breakers import breaker_for
from nexa.platform.problems import Problem
from nexa.platform.providers import ProviderError, ProviderPermanentError, ProviderUnavailable
from nexa.platform.urns import parse_urn
from notifications import services as notifications

HOLD, PAY, CONFIRM, VOUCHER, NOTIFY = "HOTEL_HOLD", "HOTEL_PAY", "HOTEL_CONFIRM", "HOTEL_VOUCHER", "HOTEL_NOTIFY"
HOTEL_STEP_KINDS = (HOLD, PAY, CONFIRM, VOUCHER, NOTIFY)
VOUCHER_TEMPLATE = "hotel_voucher"
NEXA = "nexa"  # the provider named by steps that call no one (our own rows)
HOLD_ATTEMPTS_BEFORE_FALLBACK = 2


def voucher_url(reservation_urn: str) -> str:
    return f"/v1/booking/reservations/{reservation_urn}/voucher/html"


def booking_item(
    *,
    case_urn: str,
    occupants: list[str],
    rooms: list[dict[str, Any]],
    check_in: str,
    nights: int,
    offers: list[dict[str, Any]],
    allocation_urn: str = "",
    group_urn: str = "",
) -> dict[str, Any]:
    """The item every hotel step of one room saga carries."""
    return {
        "type": "HOTEL",
        "caseUrn": case_urn,
        "allocationUrn": allocation_urn,
        "groupUrn": group_urn,
        "occupants": list(occupants),
        "rooms": [{"occupants": list(r["occupants"]), "accessible": bool(r.get("accessible"))} for r in rooms],
        "checkIn": check_in,
        "nights": int(nights),
        "offers": list(offers),
        "offerIndex": 0,
        "attemptedHotels": [],
        "inDoubt": [],
    }


def _offer(item: dict[str, Any], index: int | None = None) -> dict[str, Any]:
    return item["offers"][item.get("offerIndex", 0) if index is None else index]


def _held(run: SagaRun) -> dict[str, Any]:
    """The HOLD step's result: the offer actually held and its reservation."""
    step = run.steps.filter(kind=HOLD).first()
    if step is None or step.status != SagaStepStatus.COMPLETED or not step.result:
        raise ProviderPermanentError(
            provider=NEXA, code="not_held", message="the rooms were not held", attempt_detail={}
        )
    return step.result


def _step_result(run: SagaRun, kind: str) -> dict[str, Any]:
    step = run.steps.filter(kind=kind).first()
    return (step.result or {}) if step is not None else {}


def _reason_of(error: Exception) -> str:
    """An attempted hotel's reason: hotel-full | payment-refused | vendor-error | timeout."""
    if isinstance(error, ProviderPermanentError):
        return "hotel-full" if error.code in ("not_enough_rooms", "rate_not_found", "hold_expired") else "vendor-error"
    if isinstance(error, ProviderError) and error.code == "timeout":
        return "timeout"
    return "vendor-error"


def _provider_error(error: Exception | dict | None) -> str | None:
    if error is None:
        return None
    if isinstance(error, dict):
        return f"{error.get('code')}: {error.get('message')}" if error.get("code") else None
    if isinstance(error, ProviderError):
        return f"{error.code}: {error.message}"[:300]
    return str(error)[:300]


def _sub_case_ids(item: dict[str, Any]) -> list[Any]:
    return [parse_urn(urn, "subcase").id for urn in item.get("occupants", [])]


def _active_claim(run: SagaRun, offer_id: str) -> Reservation | None:
    return Reservation.objects.filter(
        saga_urn=run.urn, offer_ref=offer_id, status__in=ACTIVE_RESERVATION_STATUSES
    ).first()


def _contract_row_id(contract_urn: str):
    contract = Contract.objects.filter(contract_id=parse_urn(contract_urn, "contract").id, current=True).first()
    return contract.pk if contract else None


def _hotel_id(hotel_urn: str | None):
    if not hotel_urn:
        return None
    try:
        return parse_urn(hotel_urn, "hotel").id
    except Exception:  # noqa: BLE001 - a vendor offer outside the catalog has no hotel row
        return None


class _HotelStep(StepKind):
    """Shared by the hotel kinds: every occupant is the step's passenger."""

    def sub_case_ids(self, run, step):
        return _sub_case_ids(step.item) or [run.sub_case_id]

    def summary(self, step):
        return {"type": "HOTEL", **{k: (step.result or {}).get(k) for k in ("hotelName", "reservationUrn")}}


class _ExpandOnly(StepKind):
    step_name = "hotel.book"

    def perform(self, run, step):
        raise ValueError("HOTEL is planned as its hotel steps; it never runs as one")


@register
class Hotel(_ExpandOnly):
    """The ``HOTEL`` compensation item: planned as HOLD → PAY → CONFIRM → VOUCHER → NOTIFY."""

    kind = "HOTEL"

    def expand(self, item):
        return [(kind, item) for kind in HOTEL_STEP_KINDS]

    def breaker(self, item):
        # Only a single vendor offer makes a new run hopeless while its circuit is open: with alternatives
        # (or a contract) the hold falls back instead.
        offers = item.get("offers") or []
        if len(offers) != 1 or offers[0].get("source") != "VENDOR" or not offers[0].get("vendor"):
            return None
        return f"vendor-{offers[0]['vendor']}"


@register
class HotelHold(_HotelStep):
    """A vendor soft hold of the group's rooms (the vendor's ``hold`` under the step key), or a contract
    call-off (no vendor call; the allotment is counted in our reservations). Either way the occupants'
    room-nights are claimed first (the duplicate-voucher guard). Undone by cancelling at the vendor and
    releasing the room-nights."""

    kind, step_name, failure_category = HOLD, "hotel.hold", "BOOKING_FAILED"

    def provider(self, step):
        offer = _offer(step.item)
        return offer.get("vendor") or "contract"

    def breaker(self, item):
        return Hotel().breaker(item)

    def _claim(self, run: SagaRun, item: dict[str, Any], offer: dict[str, Any]) -> Reservation:
        rate = offer.get("nightlyRate") or {}
        contract = offer.get("source") == ReservationSource.CONTRACT
        try:
            return booking.reservation_hold_record(
                airline=run.airline,
                case_id=run.case_id,
                case_urn=run.case.urn,
                hotel_id=_hotel_id(offer.get("hotelUrn")),
                hotel_name=offer.get("hotelName") or "",
                source=ReservationSource.CONTRACT if contract else ReservationSource.VENDOR,
                vendor="" if contract else offer.get("vendor", ""),
                contract_id=_contract_row_id(offer["contractUrn"]) if contract and offer.get("contractUrn") else None,
                offer_ref=offer["offerId"],
                check_in=dt.date.fromisoformat(item["checkIn"]),
                nights=item["nights"],
                rooms=item["rooms"],
                nightly_rate=Decimal(str(rate["amount"])) if rate.get("amount") else None,
                currency=rate.get("currency", ""),
                # A contract's hotel bills the airline under the contract (no card); a vendor stay is paid by card.
                direct_billed=contract,
                hold_expires_at=timezone.now() + dt.timedelta(seconds=settings.NEXA_HOTEL_HOLD_TTL_SECONDS),
                allocation_urn=item.get("allocationUrn", ""),
                group_urn=item.get("groupUrn", ""),
                saga_urn=run.urn,
                actor=SYSTEM_SAGA_ACTOR,
            )
        except Problem as problem:  # the room-night guard: a passenger already has a room one of these nights
            raise ProviderPermanentError(
                provider=NEXA,
                code="room_night_taken",
                message=problem.detail_text,
                attempt_detail={"reservationUrn": problem.extensions.get("reservationUrn")},
            ) from problem

    def _result(self, item, index: int, reservation: Reservation, hold: dict[str, Any] | None) -> dict[str, Any]:
        offer = _offer(item, index)
        return {
            "provider": offer.get("vendor") or "contract",
            "source": offer.get("source"),
            "offerId": offer["offerId"],
            "offerIndex": index,
            "hotelUrn": offer.get("hotelUrn"),
            "hotelName": offer.get("hotelName") or "",
            "vendor": offer.get("vendor") or "",
            "contractUrn": offer.get("contractUrn") or "",
            "nightlyRate": offer.get("nightlyRate"),
            "directBilled": reservation.direct_billed,
            "reservationUrn": reservation.urn,
            "holdId": (hold or {}).get("holdId", ""),
            "expiresAt": (hold or {}).get("expiresAt"),
            "attemptedHotels": item.get("attemptedHotels", []),
        }

    def perform(self, run, step):
        item = step.item
        # An earlier offer's hold whose answer was lost: if the vendor made it, it is this step's hold.
        for prior in item.get("inDoubt", []):
            try:
                found = booking.hotel_lookup(vendor=prior["vendor"], operation="hold", idempotency_key=prior["key"])
            except ProviderError:
                continue  # still unknown: a soft hold never confirmed expires at the vendor, nothing is charged
            if found is not None:
                reservation = self._claim(run, item, _offer(item, prior["offerIndex"]))
                return self._result(item, prior["offerIndex"], reservation, found)
        index = item.get("offerIndex", 0)
        offer = _offer(item, index)
        reservation = self._claim(run, item, offer)
        if offer.get("source") == ReservationSource.CONTRACT:
            return self._result(item, index, reservation, None)  # the call-off is the claim itself
        found = self._vendor_lookup(step, offer) if step.attempts > 1 else None  # the last answer was lost?
        if found is None and breaker_for(f"vendor-{offer['vendor']}").current_state == "open":
            # Nothing is sent while the vendor's circuit is open: waiting it out would keep the group without a
            # room, so the hold fails now (an answer: nothing was made) and falls back to the next offer.
            raise ProviderPermanentError(
                provider=offer["vendor"], code="circuit_open", message="the vendor's circuit is open", attempt_detail={}
            )
        hold = found or booking.hotel_hold(
            idempotency_key=step.idempotency_key,
            vendor=offer["vendor"],
            offer_ref=offer["offerId"].split("~", 1)[1],
            rooms=len(item["rooms"]),
            reference=run.urn,
        )
        return self._result(item, index, reservation, hold)

    def max_attempts(self, step):
        """With another offer left, a vendor that keeps timing out gets two tries before the next offer."""
        item = step.item
        limit = min(len(item["offers"]), int(settings.NEXA_BOOKING_MAX_OFFER_ATTEMPTS))
        return HOLD_ATTEMPTS_BEFORE_FALLBACK if item.get("offerIndex", 0) + 1 < limit else None

    def _vendor_lookup(self, step: SagaStep, offer: dict[str, Any]) -> dict[str, Any] | None:
        return booking.hotel_lookup(vendor=offer["vendor"], operation="hold", idempotency_key=step.idempotency_key)

    def lookup(self, step):
        item, run = step.item, step.run
        index = item.get("offerIndex", 0)
        offer = _offer(item, index)
        if offer.get("source") == ReservationSource.CONTRACT:
            claim = _active_claim(run, offer["offerId"])
            return None if claim is None else self._result(item, index, claim, None)
        found = self._vendor_lookup(step, offer)
        if found is None:
            return None
        claim = _active_claim(run, offer["offerId"]) or self._claim(run, item, offer)
        return self._result(item, index, claim, found)

    def completed(self, run, step, result):
        if result.get("holdId"):
            booking.reservation_hold_attach(
                reservation_urn=result["reservationUrn"],
                hold_id=result["holdId"],
                hold_expires_at=result.get("expiresAt"),
                actor=SYSTEM_SAGA_ACTOR,
            )

    def undo(self, run, step):
        result = step.result or {}
        if result.get("vendor") and result.get("holdId"):
            return booking.hotel_cancel(
                idempotency_key=step.compensation_key, vendor=result["vendor"], booking_id=result["holdId"]
            )
        return {"provider": result.get("provider", "contract"), "status": "RELEASED"}

    def undone(self, run, step):
        urn = (step.result or {}).get("reservationUrn")
        if urn:
            booking.reservation_release(
                reservation_urn=urn, reason=f"saga {run.urn} undone", actor=SYSTEM_SAGA_ACTOR, case_urn=run.case.urn
            )

    def _release_claim(self, run: SagaRun, step: SagaStep, reason: str) -> None:
        claim = _active_claim(run, _offer(step.item)["offerId"])
        if claim is not None:
            booking.reservation_fail_record(
                reservation_urn=claim.urn, reason=reason, actor=SYSTEM_SAGA_ACTOR, case_urn=run.case.urn
            )

    def failed(self, run, step):
        self._release_claim(run, step, "hold refused")

    def fallback(self, run, step, error):
        if not isinstance(error, ProviderError) or getattr(error, "code", "") == "room_night_taken":
            return None  # our own bug, or a passenger already housed: no other hotel changes that
        item = step.item
        index = item.get("offerIndex", 0)
        offer = _offer(item, index)
        attempted = [
            *item.get("attemptedHotels", []),
            {"hotelUrn": offer.get("hotelUrn"), "reason": _reason_of(error), "providerError": _provider_error(error)},
        ]
        in_doubt = list(item.get("inDoubt", []))
        if not isinstance(error, ProviderPermanentError | ProviderUnavailable) and offer.get("vendor"):
            in_doubt.append({"vendor": offer["vendor"], "key": step.idempotency_key, "offerIndex": index})
        limit = min(len(item["offers"]), int(settings.NEXA_BOOKING_MAX_OFFER_ATTEMPTS))
        self._release_claim(run, step, f"hold failed: {_reason_of(error)}")
        if index + 1 >= limit:
            # No offer left: the step fails; the attempts stay on the item for booking:failed.
            SagaStep.objects.filter(pk=step.pk).update(item={**item, "attemptedHotels": attempted, "inDoubt": in_doubt})
            step.item = {**item, "attemptedHotels": attempted, "inDoubt": in_doubt}
            return None
        return {**item, "offerIndex": index + 1, "attemptedHotels": attempted, "inDoubt": in_doubt}

    def run_failed(self, run):
        """``booking:failed`` for review: every occupant, what was tried, and why."""
        hold = run.steps.filter(kind=HOLD).first()
        item = hold.item if hold is not None else {}
        attempted = list(item.get("attemptedHotels", []))
        category = "BOOKING_FAILED"
        if run.failure_category == "PAYMENT_FAILED":
            category = "PAYMENT_FAILED"
            offer = (hold.result or {}) if hold is not None else {}
            attempted.append(
                {"hotelUrn": offer.get("hotelUrn"), "reason": "payment-refused",
                 "providerError": _provider_error(run.failure)}
            )  # fmt: skip
        elif item.get("allocationUrn") and _others_booked(run, item["allocationUrn"]):
            category = "PARTIAL_FULFILLMENT"
        failure = run.failure or {}
        case_events.publish_booking_failed(
            airline=run.airline,
            payload={
                "caseUrn": run.case.urn,
                "allocationUrn": item.get("allocationUrn", ""),
                "groupUrn": item.get("groupUrn", ""),
                "subCaseUrns": list(item.get("occupants", [])),
                "category": category,
                "reason": f"{failure.get('step', 'hotel.hold')} failed: "
                f"{_provider_error(failure) or run.failure_category}",
                "attemptedHotels": attempted,
            },
        )


def _others_booked(run: SagaRun, allocation_urn: str) -> bool:
    """Another group of the same allocation got its rooms (its run completed or its reservation is
    confirmed): this failure makes the allocation a partial fulfilment."""
    others = SagaRun.objects.filter(case_id=run.case_id, payload__booking__allocationUrn=allocation_urn).exclude(
        pk=run.pk
    )
    if others.filter(status=SagaRunStatus.COMPLETED).exists():
        return True
    return (
        Reservation.objects.filter(allocation_urn=allocation_urn, status="CONFIRMED").exclude(saga_urn=run.urn).exists()
    )


@register
class HotelPay(_HotelStep):
    """A single-use virtual card to the hotel for the stay's total, through the PSP (purpose: hotel), unless
    the stay is direct-billed (a contract): then a no-op. Undone by voiding the card."""

    kind, step_name, provider_name, failure_category = PAY, "hotel.pay", "psp", "PAYMENT_FAILED"

    def breaker(self, item):
        return "psp"

    def _skip(self, run) -> dict[str, Any] | None:
        held = _held(run)
        if held.get("directBilled"):
            return {
                "provider": "none",
                "skipped": True,
                "reason": "direct-billed",
                "reservationUrn": held["reservationUrn"],
            }
        return None

    def perform(self, run, step):
        skipped = self._skip(run)
        if skipped is not None:
            return skipped
        if step.attempts > 1 and (found := booking.hotel_card_lookup(idempotency_key=step.idempotency_key)):
            return found
        held, item = _held(run), step.item
        rate = held.get("nightlyRate") or {}
        total = Decimal(str(rate["amount"])) * int(item["nights"]) * len(item["rooms"])
        end_of_stay = dt.datetime.combine(
            dt.date.fromisoformat(item["checkIn"]) + dt.timedelta(days=int(item["nights"]) + 1), dt.time.min, dt.UTC
        )
        return booking.hotel_card_issue(
            idempotency_key=step.idempotency_key,
            sub_case_urn=item["occupants"][0],
            amount=total,
            currency=rate["currency"],
            expires_at=end_of_stay,
        )

    def lookup(self, step):
        skipped = self._skip(step.run)
        return skipped if skipped is not None else booking.hotel_card_lookup(idempotency_key=step.idempotency_key)

    def completed(self, run, step, result):
        if result.get("cardId"):
            booking.reservation_card_attach(
                reservation_urn=_held(run)["reservationUrn"], card_id=result["cardId"], actor=SYSTEM_SAGA_ACTOR
            )

    def undo(self, run, step):
        card_id = (step.result or {}).get("cardId")
        if not card_id:
            return {"provider": "none", "status": "NOTHING_TO_VOID"}
        return booking.hotel_card_void(idempotency_key=step.compensation_key, card_id=card_id)


@register
class HotelConfirm(_HotelStep):
    """The vendor's ``confirm`` of the hold (a contract call-off: our own confirmation number). Undone by
    cancelling the booking at the vendor."""

    kind, step_name, failure_category = CONFIRM, "hotel.confirm", "BOOKING_FAILED"

    def provider(self, step):
        return "vendor"

    def perform(self, run, step):
        held = _held(run)
        if not held.get("holdId"):  # contract call-off
            return {"provider": "contract", "bookingId": f"CT-{held['reservationUrn'].rsplit(':', 1)[1][:8].upper()}",
                    "status": "CONFIRMED"}  # fmt: skip
        if step.attempts > 1 and (found := self.lookup(step)) is not None:
            return found  # the previous attempt's answer was lost, but the vendor confirmed it
        return booking.hotel_confirm(
            idempotency_key=step.idempotency_key, vendor=held["vendor"], hold_id=held["holdId"]
        )

    def lookup(self, step):
        held = _held(step.run)
        if not held.get("holdId"):
            return self.perform(step.run, step)  # a contract call-off's confirmation is ours: no call to resolve
        return booking.hotel_lookup(vendor=held["vendor"], operation="confirm", idempotency_key=step.idempotency_key)

    def undo(self, run, step):
        result, held = step.result or {}, _held(run)
        if result.get("provider") == "contract" or not held.get("vendor"):
            return {"provider": "contract", "status": "CANCELLED"}
        return booking.hotel_cancel(
            idempotency_key=step.compensation_key, vendor=held["vendor"], booking_id=result["bookingId"]
        )

    def undone(self, run, step):
        booking.reservation_release(
            reservation_urn=_held(run)["reservationUrn"],
            reason=f"saga {run.urn} undone",
            actor=SYSTEM_SAGA_ACTOR,
            case_urn=run.case.urn,
        )


@register
class HotelVoucher(_HotelStep):
    """Our own record: the reservation CONFIRMED with its confirmation number and voucher URL; every
    occupant BOOKING → BOOKED. No provider; the confirmation is undone by CONFIRM's undo."""

    kind, step_name, provider_name, failure_category = VOUCHER, "hotel.voucher", NEXA, "BOOKING_FAILED"

    def perform(self, run, step):
        held = _held(run)
        number = _step_result(run, CONFIRM).get("bookingId", "")
        try:
            booking.reservation_confirm_record(
                reservation_urn=held["reservationUrn"],
                confirmation_number=number,
                actor=SYSTEM_SAGA_ACTOR,
                case_urn=run.case.urn,
            )
        except Problem as problem:  # released meanwhile (its hold expired and was swept)
            raise ProviderPermanentError(
                provider=NEXA, code="reservation_released", message=problem.detail_text, attempt_detail={}
            ) from problem
        return {
            "provider": NEXA,
            "reservationUrn": held["reservationUrn"],
            "confirmationNumber": number,
            "voucherUrl": voucher_url(held["reservationUrn"]),
            "hotelName": held.get("hotelName", ""),
        }

    def lookup(self, step):
        return self.perform(step.run, step)

    def completed(self, run, step, result):
        # A book-rooms run retried by an operator after it failed finds its passengers in review: the room
        # resolves that (MANUAL_REVIEW → BOOKED). A HOTEL compensation item only moves a passenger BOOKING.
        retried = ("resolve_as_booked",) if (run.payload or {}).get("kind") == "BOOKING" else ()
        subcases_advance(
            airline=run.airline,
            sub_case_ids=_sub_case_ids(step.item),
            transition=("mark_booked", *retried),
            reason=f"room confirmed: {result['reservationUrn']}",
        )

    def undo(self, run, step):
        return {"provider": NEXA, "status": "NOTHING_TO_UNDO"}


@register
class HotelNotify(_HotelStep):
    """The voucher to every occupant (template ``hotel_voucher``: email with the voucher, a link by
    SMS/WhatsApp); each occupant BOOKED → NOTIFIED. Never undoes the room: a failure is recorded and the
    run still completes (the notifications module surfaces it for a manual resend)."""

    kind, step_name, provider_name, compensable = NOTIFY, "hotel.notify", "notifications", False

    def perform(self, run, step):
        voucher = _step_result(run, VOUCHER)
        item = step.item
        sent = []
        for urn in item["occupants"]:
            outcome = notifications.notification_send_for_subcase(
                principal_or_system=system_principal(run.airline),
                sub_case_urn=urn,
                template=VOUCHER_TEMPLATE,
                context={
                    "caseUrn": run.case.urn,
                    "reservationUrn": voucher["reservationUrn"],
                    "voucherUrl": voucher["voucherUrl"],
                    "hotelName": voucher.get("hotelName", ""),
                    "checkIn": item["checkIn"],
                    "nights": item["nights"],
                },
                idempotency_key=f"{step.idempotency_key}/{parse_urn(urn, 'subcase').id}",
            )
            sent.append({"subCaseUrn": urn, "notifications": len((outcome or {}).get("notifications", []))})
        return {"provider": "notifications", "sent": sent}

    def completed(self, run, step, result):
        subcases_advance(
            airline=run.airline,
            sub_case_ids=_sub_case_ids(step.item),
            transition="mark_notified",
            reason="hotel voucher sent",
        )
