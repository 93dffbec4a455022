"""Reads of the cases domain. Every query is scoped to the principal's airline; callers never pass
a tenant, and another airline's case is simply not found (a 404 problem)."""

import datetime as dt
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import Count, Prefetch, QuerySet
from django.utils import timezone
from django.utils.safestring import mark_safe

from booking import selectors as booking_selectors
from cases.manifest import PassengerIdentity, passenger_identity
from cases.models import (
    Case,
    CaseStatus,
    PassengerGroup,
    SagaRun,
    SagaStep,
    SagaStepStatus,
    SubCase,
    SubCaseStatus,
)
from nexa.platform.auth import Principal
from nexa.platform.problems import Problem, not_found_problem
from nexa.platform.roles import Role
from nexa.platform.tenancy import for_principal, get_for_principal
from nexa.platform.urns import InvalidUrn, format_urn, parse_urn


def case_get(*, principal: Principal, case_urn: str) -> Case:
    """The case, or a 404 problem (also for another airline's); a malformed URN is a 400."""
    urn = parse_urn(case_urn, "case")
    return get_for_principal(Case.objects.all(), principal, id=urn.id)


def cases_list(
    *,
    principal: Principal,
    status: str | None = None,
    airport: str | None = None,
    departure_from: datetime | None = None,
    departure_to: datetime | None = None,
) -> QuerySet[Case]:
    """Cases filtered on status, airport and scheduled departure, half-open like every time range
    (``from`` ≤ departure < ``to``, nexa.platform.filters)."""
    cases = for_principal(Case.objects.all(), principal)
    if status:
        cases = cases.filter(status=status)
    if airport:
        cases = cases.filter(airport=airport)
    if departure_from is not None:
        cases = cases.filter(scheduled_departure__gte=departure_from)
    if departure_to is not None:
        cases = cases.filter(scheduled_departure__lt=departure_to)
    return cases


def case_subcase_counts(*, principal: Principal, case: Case) -> dict[str, int]:
    """Sub-cases of ``case`` by status, every status present (zero when none)."""
    counts = {status.value: 0 for status in SubCaseStatus}
    rows = (
        for_principal(SubCase.objects.filter(case_id=case.pk), principal)
        .order_by()
        .values("status")
        .annotate(n=Count("id"))
    )
    for row in rows:
        counts[row["status"]] = row["n"]
    return counts


def case_manifest(
    *, principal: Principal, case: Case, status: str | None = None, group_urn: str | None = None
) -> QuerySet[SubCase]:
    """The case's sub-cases, optionally only one status and/or one passenger group."""
    sub_cases = for_principal(SubCase.objects.filter(case_id=case.pk), principal)
    if status:
        sub_cases = sub_cases.filter(status=status)
    if group_urn:
        sub_cases = sub_cases.filter(group_id=parse_urn(group_urn, "group").id)
    return sub_cases


def case_passenger_identities(*, principal: Principal, case: Case) -> set[PassengerIdentity]:
    """Who is on the manifest already (PNR + name, as :func:`cases.manifest.passenger_identity`)."""
    rows = (
        for_principal(SubCase.objects.filter(case_id=case.pk, anonymised_at__isnull=True), principal)
        .order_by()
        .values_list("pnr", "last_name", "first_name")
    )
    return {passenger_identity(pnr=pnr, last_name=last, first_name=first) for pnr, last, first in rows}


def subcase_get(*, principal: Principal, sub_case_urn: str) -> SubCase:
    urn = parse_urn(sub_case_urn, "subcase")
    return get_for_principal(SubCase.objects.select_related("case"), principal, id=urn.id)


def case_groups(*, principal: Principal, case: Case) -> list[PassengerGroup]:
    """The case's passenger groups in creation order, members prefetched (manifest order)."""
    members = SubCase.objects.only("id", "group_id", "tier", "status").order_by("created_at", "id")
    return list(
        for_principal(PassengerGroup.objects.filter(case_id=case.pk), principal)
        .order_by("created_at", "id")
        .prefetch_related(Prefetch("members", queryset=members))
    )


# --- dashboard sections (nexa.dashboard renders these) ---------------------------------------------


def case_counts_by_status_and_airport(*, principal: Principal) -> dict[str, Any]:
    """``{total, byStatus: {OPEN: n, …}, byAirport: [{airport, total, byStatus}]}`` (airports by
    descending total). One GROUP BY on the (airline, status, airport) index."""
    rows = for_principal(Case.objects.all(), principal).order_by().values("airport", "status").annotate(n=Count("id"))
    by_status = {status.value: 0 for status in CaseStatus}
    by_airport: dict[str, dict[str, int]] = {}
    for row in rows:
        by_status[row["status"]] += row["n"]
        airport_counts = by_airport.setdefault(row["airport"], {status.value: 0 for status in CaseStatus})
        airport_counts[row["status"]] += row["n"]
    airports = [
        {"airport": airport, "total": sum(counts.values()), "byStatus": counts}
        for airport, counts in by_airport.items()
    ]
    airports.sort(key=lambda entry: (-entry["total"], entry["airport"]))
    return {"total": sum(by_status.values()), "byStatus": by_status, "byAirport": airports}


def oldest_open_cases(*, principal: Principal, limit: int = 10) -> list[Case]:
    """The ``limit`` longest-open (not CLOSED) cases, oldest first (only the columns the dashboard shows)."""
    return list(
        for_principal(Case.objects.exclude(status=CaseStatus.CLOSED), principal)
        .order_by("created_at", "id")
        .only("id", "flight_number", "airport", "scheduled_departure", "status", "created_at")[: max(limit, 0)]
    )


# --- compensation sagas -------------------------------------------------------------------------------


def saga_runs_for_case(*, principal: Principal, case: Case) -> list:
    """Every saga run of the case (oldest first) with its steps, for the progress route."""

    return list(
        for_principal(SagaRun.objects.filter(case_id=case.pk), principal)
        .select_related("sub_case", "case")
        .order_by("created_at", "id")
        .prefetch_related(Prefetch("steps", queryset=SagaStep.objects.order_by("position")))
    )


def saga_run_get(*, principal: Principal, saga_urn: str):
    """One saga run (404 for another airline's or an unknown URN)."""

    urn = parse_urn(saga_urn, "saga")
    return get_for_principal(SagaRun.objects.select_related("case", "sub_case"), principal, id=urn.id)


def case_open_for_flight(*, principal: Principal, flight_number: str, airport: str) -> Case | None:
    """The flight's case at the airport that is not CLOSED, whatever its flight date (oldest first)."""
    return (
        for_principal(Case.objects.filter(flight_number=flight_number, airport=airport), principal)
        .exclude(status=CaseStatus.CLOSED)
        .order_by("created_at", "id")
        .first()
    )


def case_manifest_missing_rows(*, principal: Principal, case: Case, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The manifest rows (wire format: ``pnr``, ``lastName``, ``firstName`` …) whose passenger is not on
    the case's manifest yet (same passenger as :func:`cases.manifest.passenger_identity`)."""
    on_manifest = case_passenger_identities(principal=principal, case=case)
    return [
        row
        for row in rows
        if passenger_identity(pnr=row["pnr"], last_name=row["lastName"], first_name=row["firstName"]) not in on_manifest
    ]


# --- reservations and vouchers (docs/booking.md § Reservations and vouchers) -----------------------------

# The compensation items a voucher lists beside the room (the passengers' completed saga steps).
VOUCHER_GRANT_KINDS = ("MEAL", "TRANSPORT")
VOUCHER_READER = "urn:nexa:system:vouchers"


def _occupant_ids(reservation) -> list:
    """The sub-case ids of every occupant of the reservation's rooms, in room order (bad entries skipped)."""
    ids = []
    for room in reservation.rooms or []:
        for urn in room.get("occupants") or []:
            try:
                ids.append(parse_urn(urn, "subcase").id)
            except InvalidUrn:
                continue
    return ids


def _grants_by_sub_case(*, airline: str, sub_case_ids: list) -> dict:
    steps = (
        SagaStep.objects.filter(
            airline=airline,
            run__sub_case_id__in=sub_case_ids,
            kind__in=VOUCHER_GRANT_KINDS,
            status=SagaStepStatus.COMPLETED,
        )
        .select_related("run")
        .order_by("run__created_at", "run_id", "position")
    )
    grants: dict = {}
    for step in steps:
        item, result = step.item or {}, step.result or {}
        grants.setdefault(step.run.sub_case_id, []).append(
            booking_selectors.VoucherGrant(
                kind=step.kind,
                amount=str(item.get("amount") or ""),
                currency=str(item.get("currency") or ""),
                provider=str(item.get("provider") or ""),
                eta_minutes=result.get("etaMinutes") if isinstance(result.get("etaMinutes"), int) else None,
            )
        )
    return grants


def reservation_voucher_data(*, reservation, sub_case_id=None):
    """The plain data booking's renderer draws the voucher from (``booking.selectors.VoucherData``):
    passengers' names and languages, their meals and transport granted, the hotel and the stay. With
    ``sub_case_id``, only that passenger's room. ``reservation`` was read tenant-scoped by the caller."""
    ids = _occupant_ids(reservation)
    sub_cases = {
        sub_case.id: sub_case
        for sub_case in SubCase.objects.filter(airline=reservation.airline, id__in=ids).only(
            "id", "first_name", "last_name", "language"
        )
    }
    grants = _grants_by_sub_case(airline=reservation.airline, sub_case_ids=list(sub_cases))
    rooms = []
    for room in reservation.rooms or []:
        occupants = []
        for urn in room.get("occupants") or []:
            try:
                sub_case = sub_cases.get(parse_urn(urn, "subcase").id)
            except InvalidUrn:
                continue
            if sub_case is None:
                continue
            occupants.append(
                booking_selectors.VoucherOccupant(
                    sub_case_urn=sub_case.urn,
                    name=f"{sub_case.first_name} {sub_case.last_name}".strip(),
                    language=sub_case.language,
                    grants=tuple(grants.get(sub_case.id, ())),
                )
            )
        if sub_case_id is not None and all(o.sub_case_urn != format_urn("subcase", sub_case_id) for o in occupants):
            continue
        rooms.append(booking_selectors.VoucherRoom(occupants=tuple(occupants), accessible=bool(room.get("accessible"))))
    hotel = reservation.hotel
    if hotel is not None:
        voucher_hotel = booking_selectors.VoucherHotel(
            name=hotel.name,
            address=hotel.address,
            phone=hotel.phone,
            lat=hotel.lat,
            lng=hotel.lng,
            distance_km=hotel.distance_km,
            airport=hotel.airport,
        )
    else:
        voucher_hotel = booking_selectors.VoucherHotel(name=reservation.hotel_name)
    contract = reservation.contract
    return booking_selectors.VoucherData(
        reservation_urn=reservation.urn,
        confirmation_number=reservation.confirmation_number,
        hotel=voucher_hotel,
        check_in=reservation.check_in,
        nights=reservation.nights,
        rooms=tuple(rooms),
        status=reservation.status,
        flight_number=Case.objects.filter(id=reservation.case_id).values_list("flight_number", flat=True).first() or "",
        meals_included=tuple(contract.meals_included) if contract is not None else (),
    )


def reservation_voucher_html(*, principal: Principal, reservation_urn: str, language: str | None = None) -> str:
    """The printable voucher of a reservation of the caller's airline (404 otherwise): one page per room,
    each in its first occupant's language unless ``language`` (en, es) overrides it."""
    reservation = booking_selectors.reservation_get(principal=principal, reservation_urn=reservation_urn)
    return booking_selectors.voucher_html(data=reservation_voucher_data(reservation=reservation), language=language)


def voucher_link(*, reservation_urn: str, sub_case_urn: str) -> str:
    """The absolute link a passenger opens without a token: ``<NEXA_PUBLIC_BASE_URL>/v1/vouchers/<signed>``,
    showing only that passenger's room of the reservation."""
    token = booking_selectors.voucher_token_sign(
        reservation_id=parse_urn(reservation_urn, "reservation").id,
        sub_case_id=parse_urn(sub_case_urn, "subcase").id,
    )
    return f"{settings.NEXA_PUBLIC_BASE_URL.rstrip('/')}/v1/vouchers/{token}"


def voucher_html_for_token(*, token: str, language: str | None = None, now: dt.datetime | None = None) -> str:
    """``GET /v1/vouchers/{token}``: the passenger's own room page. A tampered, malformed or too old token, a
    reservation no longer active (released, failed), a stay that ended more than a day ago, or a passenger
    no longer in the reservation are all the same 404."""
    read = booking_selectors.voucher_token_read(token)
    if read is None:
        raise not_found_problem()
    reservation = booking_selectors.reservation_get_by_id(reservation_id=read.reservation_id)
    if reservation is None or not booking_selectors.reservation_is_active(reservation):
        raise not_found_problem()
    valid_until = booking_selectors.voucher_link_valid_until(check_in=reservation.check_in, nights=reservation.nights)
    if (now or timezone.now()) >= valid_until:
        raise not_found_problem()
    if read.sub_case_id not in _occupant_ids(reservation):
        raise not_found_problem()
    data = reservation_voucher_data(reservation=reservation, sub_case_id=read.sub_case_id)
    if not data.rooms:
        raise not_found_problem()
    return booking_selectors.voucher_html(data=data, language=language)


def _reader(airline: str) -> Principal:
    return Principal(airline=airline, role=Role.ADMIN, operator_urn=VOUCHER_READER, subject="system:vouchers")


def hotel_voucher_context(*, sub_case, context: dict, language: str, channel: str = "EMAIL") -> dict:
    """What the ``hotel_voucher`` notification needs beyond what the booking saga passed (registered with
    notifications in ``CasesConfig.ready``): the passenger's room page as HTML (``voucherHtml``), the signed
    link (``voucherLink``) and the hotel's address, phone and confirmation number; the page only for email
    (SMS and WhatsApp show the link). ``{}`` when the reservation is gone or the passenger is not in it (the
    template then says what the context has)."""
    reservation_urn = context.get("reservationUrn")
    try:
        reservation = booking_selectors.reservation_get(
            principal=_reader(sub_case.airline), reservation_urn=reservation_urn
        )
    except (Problem, InvalidUrn):  # a malformed or unknown URN: render without the voucher, never fail the send
        return {}
    if sub_case.pk not in _occupant_ids(reservation):
        return {}
    values = {
        "voucherLink": voucher_link(reservation_urn=reservation.urn, sub_case_urn=sub_case.urn),
        "hotelName": reservation.hotel.name if reservation.hotel else reservation.hotel_name,
        "hotelAddress": reservation.hotel.address if reservation.hotel else "",
        "hotelPhone": reservation.hotel.phone if reservation.hotel else "",
        "confirmationNumber": reservation.confirmation_number,
        "checkIn": reservation.check_in.isoformat(),
        "nights": reservation.nights,
    }
    if channel == "EMAIL":
        data = reservation_voucher_data(reservation=reservation, sub_case_id=sub_case.pk)
        # Safe: booking's renderer escaped every value; only this hook's string is rendered unescaped.
        values["voucherHtml"] = mark_safe(booking_selectors.voucher_html(data=data, language=language))  # noqa: S308
    return values
