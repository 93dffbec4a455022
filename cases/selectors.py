"""Reads of the cases domain. Every query is scoped to the principal's airline; callers never pass
a tenant, and another airline's case is simply not found (a 404 problem)."""

from datetime import datetime
from typing import Any

from django.db.models import Count, Prefetch, QuerySet

from cases.manifest import PassengerIdentity, passenger_identity
from cases.models import (
    Case,
    CaseStatus,
    DemandWave,
    DemandWaveMember,
    PassengerGroup,
    SagaRun,
    SagaStep,
    SubCase,
    SubCaseStatus,
)
from nexa.platform.auth import Principal
from nexa.platform.tenancy import for_principal, get_for_principal
from nexa.platform.urns import parse_urn


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
