"""Reads of the cases domain. Every query is scoped to the principal's airline; callers never pass
a tenant, and another airline's case is simply not found (a 404 problem)."""

import datetime as dt
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Count, Prefetch, QuerySet
from django.utils import timezone
from django.utils.safestring import mark_safe

from booking import selectors as booking_selectors
from booking.models import ACTIVE_RESERVATION_STATUSES, RoomNight
from booking.selectors import airport_get, wallet_for_subcase
from cases.entitlements import (
    EU261_COUNTRIES,
    Facts,
    Grant,
    Granted,
    Money,
    entitlements,
    great_circle_km,
    regulation_for,
)
from cases.manifest import PassengerIdentity, passenger_identity
from cases.models import (
    OPEN_DEMAND_STATUSES,
    Case,
    CaseStatus,
    Cause,
    DemandStatus,
    DemandWave,
    DemandWaveMember,
    Entitlement,
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
from policies.selectors import policy_resolve


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


# --- entitlements (issue 12; the rules are cases/entitlements.py's) ------------------------------------


def _policy_care(*, principal: Principal, case: Case, tier: str) -> tuple[Money | None, bool]:
    """(meal allowance per day, transport) from the resolved policy; (None, False) when none applies."""
    try:
        rules = policy_resolve(principal=principal, tier=tier, case_urn=case.urn).effective_rules
    except Problem:
        return None, False
    allowance = None
    for period in (rules.get("mealAllowance") or {}).values():
        amount, currency = Decimal(period["amount"]), period["currency"]
        if allowance is None:
            allowance = Money(amount, currency)
        elif allowance.currency == currency:
            allowance = Money(allowance.amount + amount, currency)
        # A period in another currency is left out rather than converted at a made-up rate.
    return allowance, bool(rules.get("transport"))


def _nights_needed(*, principal: Principal, sub_case: SubCase, now: datetime) -> int:
    """The nights the airline asked rooms for (the passenger's open demand waves)."""
    nights = 0
    memberships = for_principal(DemandWaveMember.objects.filter(sub_case_id=sub_case.pk), principal).select_related(
        "wave"
    )
    for member in memberships:
        if member.wave.status_at(now) in OPEN_DEMAND_STATUSES:
            nights = max(nights, member.wave.nights)
    return nights


def _grants(*, principal: Principal, sub_case: SubCase) -> list[Grant]:
    """Completed MEAL/CASH/TRANSPORT saga steps and the active reservations holding the passenger."""
    grants: list[Grant] = []
    steps = (
        for_principal(SagaStep.objects.filter(run__sub_case_id=sub_case.pk), principal)
        .filter(status=SagaStepStatus.COMPLETED, kind__in=("MEAL", "CASH", "TRANSPORT"))
        .select_related("run")
        .order_by("completed_at", "id")
    )
    for step in steps:
        item = step.item or {}
        amount = Money(Decimal(item["amount"]), item["currency"]) if item.get("amount") else None
        currency = ((step.run.fx or {}).get("settlementCurrency")) or None
        settled = Money(step.settled_amount, currency) if step.settled_amount is not None and currency else None
        detail = {"runUrn": step.run.urn}
        if step.kind == "TRANSPORT":
            detail["provider"] = (step.result or {}).get("provider") or item.get("provider")
        grants.append(Grant(step.kind, step.urn, at=step.completed_at, amount=amount, settled=settled, detail=detail))
    nights = (
        for_principal(RoomNight.objects.filter(sub_case_id=sub_case.pk, active=True), principal)
        .filter(reservation__status__in=ACTIVE_RESERVATION_STATUSES)
        .select_related("reservation")
        .order_by("night", "id")
    )
    by_reservation: dict = {}
    for night in nights:
        by_reservation.setdefault(night.reservation_id, [night.reservation, 0])[1] += 1
    for reservation, count in by_reservation.values():
        grants.append(
            Grant(
                "HOTEL",
                reservation.urn,
                at=reservation.created_at,
                nights=count,
                detail={
                    "hotelName": reservation.hotel_name,
                    "checkIn": reservation.check_in.isoformat(),
                    "status": reservation.status,
                },
            )
        )
    return grants


def subcase_entitlement_facts(*, principal: Principal, sub_case: SubCase, now: datetime) -> tuple[Facts, Granted, dict]:
    """The facts, the grants and the route (``{origin, destination, intraEu}``) of one sub-case."""
    case = sub_case.case
    origin_code = case.origin or case.airport
    origin = airport_get(iata=origin_code)
    destination = airport_get(iata=case.destination) if case.destination else None
    distance = (
        great_circle_km(origin.latitude, origin.longitude, destination.latitude, destination.longitude)
        if origin and destination
        else None
    )
    intra_eu = bool(origin and destination) and {origin.country, destination.country} <= EU261_COUNTRIES
    regulation = case.regulation or regulation_for(origin_country=origin.country if origin else None)
    grants = _grants(principal=principal, sub_case=sub_case)
    reserved = sum(grant.nights or 0 for grant in grants if grant.type == "HOTEL")
    crosses_midnight = False
    if case.cause == Cause.DELAY and case.arrival_delay_minutes is not None and origin is not None:
        zone = ZoneInfo(origin.time_zone)
        scheduled = case.scheduled_departure.astimezone(zone)
        expected = (case.scheduled_departure + timedelta(minutes=case.arrival_delay_minutes)).astimezone(zone)
        crosses_midnight = expected.date() > scheduled.date()
    meal_allowance, transport = _policy_care(principal=principal, case=case, tier=sub_case.tier)
    facts = Facts(
        regulation=regulation,
        cause=case.cause,
        extraordinary=case.extraordinary_circumstances,
        distance_km=distance,
        intra_eu=intra_eu,
        delay_minutes=case.arrival_delay_minutes,
        rerouted_arrival_delay_minutes=sub_case.rerouted_arrival_delay_minutes,
        nights_needed=max(_nights_needed(principal=principal, sub_case=sub_case, now=now), reserved),
        delay_crosses_midnight=crosses_midnight,
        meal_allowance=meal_allowance,
        policy_transport=transport,
    )
    wallet = wallet_for_subcase(principal=principal, sub_case=sub_case)
    route = {"origin": origin_code, "destination": case.destination or None, "intraEu": intra_eu}
    return facts, Granted(grants=tuple(grants), wallet_balances=wallet.balances), route


def subcase_entitlements(*, principal: Principal, sub_case: SubCase, now: datetime) -> dict[str, Any]:
    """The live entitlements of the sub-case (the route's body without ``snapshot``)."""
    facts, granted, route = subcase_entitlement_facts(principal=principal, sub_case=sub_case, now=now)
    return entitlements(
        facts=facts,
        granted=granted,
        sub_case_urn=sub_case.urn,
        case_urn=sub_case.case.urn,
        route=route,
        computed_at=now,
    )


def subcase_entitlement_snapshot(*, principal: Principal, sub_case: SubCase) -> Entitlement | None:
    """The stored snapshot (``manage.py entitlements_backfill``), or None."""
    return for_principal(Entitlement.objects.filter(sub_case_id=sub_case.pk), principal).first()


# --- demand waves ---------------------------------------------------------------------------------------


def _demand_waves(principal: Principal) -> QuerySet:
    # Members in manifest order: the wave renders its subCaseUrns and groupUrns from them without a query each.
    members = DemandWaveMember.objects.only("id", "wave_id", "sub_case_id", "group_id").order_by(
        "sub_case__created_at", "sub_case_id"
    )
    return for_principal(DemandWave.objects.all(), principal).prefetch_related(Prefetch("members", queryset=members))


def demand_get(*, principal: Principal, demand_urn: str) -> DemandWave:
    """One demand wave of the principal's airline (404 otherwise; a malformed URN is a 400), members prefetched."""
    urn = parse_urn(demand_urn, "demand")
    return get_for_principal(_demand_waves(principal), principal, id=urn.id)


def demand_pending_approvals(*, principal: Principal, now: datetime, case_urn: str | None = None) -> QuerySet:
    """The airline's waves waiting for a supervisor: PENDING_APPROVAL and not past ``expires_at`` at ``now``
    (lazy expiry: a lapsed wave reads EXPIRED even before its row says so), optionally of one case. The caller
    orders them (oldest first: ``created_at``, ``id``)."""
    waves = _demand_waves(principal).filter(status=DemandStatus.PENDING_APPROVAL, expires_at__gt=now)
    if case_urn:
        waves = waves.filter(case_id=parse_urn(case_urn, "case").id)
    return waves


# --- allocation (issue 12) ------------------------------------------------------------------------------


def allocation_demand_get(*, principal: Principal, demand_urn: str) -> DemandWave:
    """The demand wave to allocate, with its case; a 404 problem for another airline's (or none), a 400
    for a malformed URN."""
    urn = parse_urn(demand_urn, "demand")
    return get_for_principal(DemandWave.objects.select_related("case"), principal, id=urn.id)


def allocation_wave_members(*, wave: DemandWave) -> list[DemandWaveMember]:
    """The wave's passengers with their sub-case and group, in manifest order (one query). The group is the
    member's, else the sub-case's current one (a regroup after the wave was raised)."""
    return list(
        DemandWaveMember.objects.filter(wave_id=wave.pk, airline=wave.airline)
        .select_related("sub_case", "group", "sub_case__group")
        .order_by("sub_case__created_at", "sub_case_id")
    )


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
