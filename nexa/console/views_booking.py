"""The case screen's booking flow after demand (issue 14): allocate an APPROVED wave, read its plan, book
its rooms, follow the room sagas live, and print the vouchers — over the services and selectors the API
routes call (``POST /v1/cases/{case}/allocate``, ``POST /v1/cases/{case}/book-rooms``,
``GET /v1/orchestration/cases/{case}/progress``, ``GET /v1/booking/cases/{case}/reservations`` and the
voucher's HTML), with the same roles. The fragment is re-fetched by the page on the case's live events."""

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from booking import selectors as booking_selectors
from booking.models import ReservationStatus
from cases import selectors as case_selectors
from cases import services as case_services
from cases.models import Allocation, AllocationStatus, DemandStatus, DemandWave
from nexa.console.views import _render, console_view, problem_response
from nexa.platform.auth import Principal
from nexa.platform.problems import Problem, validation_problem
from nexa.platform.renderers import private_html_response
from nexa.platform.roles import Role
from nexa.platform.urns import InvalidUrn, parse_urn

ALLOCATIONS_SHOWN = 10


def _names(case) -> dict[str, str]:
    """Sub-case URN → the passenger's name, to show occupants by name rather than by URN."""
    return {
        sub.urn: f"{sub.first_name} {sub.last_name}".strip()
        for sub in case.subcases.only("id", "first_name", "last_name")
    }


def _plan_view(allocation: Allocation, names: dict[str, str]) -> dict[str, Any]:
    """The stored plan (the allocate routes' answer) with occupants named."""
    plan = allocation.plan or {}
    assignments = []
    for assignment in plan.get("assignments") or []:
        rooms = [
            {**room, "names": [names.get(urn, urn) for urn in room.get("occupants") or []]}
            for room in assignment.get("rooms") or []
        ]
        assignments.append({**assignment, "room_list": rooms})
    unallocated = [
        {**entry, "names": [names.get(urn, urn) for urn in entry.get("subCaseUrns") or []]}
        for entry in plan.get("unallocated") or []
    ]
    return {
        "allocation": allocation,
        "assignments": assignments,
        "unallocated": unallocated,
        "partial_failures": plan.get("partialFailures") or [],
    }


def _runs_view(principal: Principal, case, names: dict[str, str]) -> list[dict[str, Any]]:
    """The progress route's runs (``saga_runs_for_case``), each with its passengers and its steps."""
    runs = []
    for run in case_selectors.saga_runs_for_case(principal=principal, case=case):
        # A room saga names its group's passengers (book-rooms); a compensation run is one passenger's.
        booking = (run.payload or {}).get("booking") or {}
        occupants = booking.get("subCaseUrns") or [run.sub_case.urn]
        passengers = [names.get(urn, urn) for urn in occupants]
        runs.append({"run": run, "passengers": passengers, "steps": list(run.steps.all())})
    return runs


def booking_context(principal: Principal, case) -> dict[str, Any]:
    names = _names(case)
    # The case was read tenant-scoped (case_get); the waves and allocations are the case's own rows.
    approved = list(
        DemandWave.objects.filter(case=case, airline=principal.airline, status=DemandStatus.APPROVED).order_by(
            "created_at", "id"
        )
    )
    allocations = (
        Allocation.objects.filter(case=case, airline=principal.airline)
        .exclude(status=AllocationStatus.SUPERSEDED)
        .order_by("-created_at", "-id")[:ALLOCATIONS_SHOWN]
    )
    reservations = booking_selectors.reservations_for_case(principal=principal, case_id=case.pk).order_by(
        "created_at", "id"
    )
    return {
        "case": case,
        "approved": approved,
        "plans": [_plan_view(allocation, names) for allocation in allocations],
        "runs": _runs_view(principal, case, names),
        "reservations": [
            {
                "reservation": reservation,
                "names": [names.get(u, u) for room in reservation.rooms or [] for u in room.get("occupants") or []],
                "printable": reservation.status != ReservationStatus.FAILED,
            }
            for reservation in reservations
        ],
    }


def _problem_beside(view: Callable) -> Callable:
    """A refusal goes into the section's problem slot (``HX-Retarget``), so the plan and the progress stay
    on screen beside the message and its correlation URN."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except Problem as problem:
            response = problem_response(request, problem)
            response["HX-Retarget"] = "#booking-problem"
            return response

    return wrapped


def _fragment(request: HttpRequest, principal: Principal, case, note: str = "") -> HttpResponse:
    return _render(request, "console/booking_section.html", {**booking_context(principal, case), "note": note})


@require_GET
@console_view()
def case_booking(request: HttpRequest, principal: Principal, case_urn: str) -> HttpResponse:
    """The booking section, re-fetched by the page on ``case:updated``, ``subcase:state-changed`` and
    ``graph:step:*`` (AIRPORT_OPERATOR+, like the progress and reservations routes)."""
    case = case_selectors.case_get(principal=principal, case_urn=case_urn)
    return _fragment(request, principal, case)


@require_POST
@console_view(min_role=Role.OPS_SUPERVISOR)
@_problem_beside
def case_allocate(request: HttpRequest, principal: Principal, case_urn: str) -> HttpResponse:
    """``POST /v1/cases/{case}/allocate``'s use case (OPS_SUPERVISOR+): allocate an APPROVED wave of the case."""
    case = case_selectors.case_get(principal=principal, case_urn=case_urn)
    demand_urn = _urn(request.POST.get("demand", ""), "demand", "demand")
    allocation = case_services.allocation_create(principal=principal, demand_urn=demand_urn, case_urn=case.urn)
    assignments = allocation.plan.get("assignments") or []
    placed = sum(len(room.get("occupants") or []) for a in assignments for room in a.get("rooms") or [])
    note = _("Allocated: %(placed)s passengers placed, %(left)s groups not placed.") % {
        "placed": placed,
        "left": len(allocation.plan.get("unallocated") or []),
    }
    return _fragment(request, principal, case, note)


@require_POST
@console_view(min_role=Role.OPS_SUPERVISOR)
@_problem_beside
def case_book_rooms(request: HttpRequest, principal: Principal, case_urn: str) -> HttpResponse:
    """``POST /v1/cases/{case}/book-rooms``'s service (OPS_SUPERVISOR+): one room saga per assignment."""
    case = case_selectors.case_get(principal=principal, case_urn=case_urn)
    allocation_id = parse_urn(_urn(request.POST.get("allocation", ""), "allocation", "allocation"), "allocation").id
    answer = case_services.case_book_rooms(principal=principal, case=case, allocation_id=allocation_id)
    note = _("Booking: %(runs)s room sagas started.") % {"runs": len(answer["runs"])}
    return _fragment(request, principal, case, note)


@require_GET
@console_view()
def reservation_voucher(request: HttpRequest, principal: Principal, reservation_urn: str) -> HttpResponse:
    """The printable voucher, from the selector of ``GET /v1/booking/reservations/{urn}/voucher/html``
    (AIRPORT_OPERATOR+, 404 for another airline's): each room's page in its guests' language, as the API
    prints it (the passengers read it), unless ``?lang=`` (en, es) says otherwise."""
    language = request.GET.get("lang")
    if language not in booking_selectors.VOUCHER_LANGUAGES:
        language = None
    html = case_selectors.reservation_voucher_html(
        principal=principal, reservation_urn=reservation_urn, language=language
    )
    return private_html_response(html)


def _urn(raw: str, kind: str, field: str) -> str:
    try:
        parse_urn(raw, kind)
    except InvalidUrn as error:
        raise validation_problem([{"field": field, "message": error.message}]) from None
    return raw
