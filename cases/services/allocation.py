"""Allocation of an approved demand wave: which group sleeps in which rooms of which hotel.

The use case gathers plain data, calls the engine (``booking.allocation``, a pure function reached through
``booking.selectors.allocation_plan``) and persists its plan:

1. **Validate.** The wave is the principal's airline's (else 404) and, through the composition route, of
   the named case (else 422); it must read APPROVED at this instant (``DemandWave.status_at``), else 409
   naming its status.
2. **Gather, concurrently** (:func:`nexa.platform.composition.compose`, each section under the 3 s
   per-call timeout): the resolved policy of every tier in the wave, the airline's contract allotments
   left for the stay, and vendor inventory from one hotel scatter-gather per distinct need (standard
   rooms, and accessible rooms when the wave has PRM passengers; each search time-boxes its vendors at
   2 s and records a ``HotelSearch``). A section or vendor that failed or timed out is a
   ``partialFailures`` entry; the rest is still allocated.
3. **Plan** with the engine.
4. **Persist**, in one transaction with the case row and then the wave row locked (the order every case
   write takes), the wave re-checked APPROVED (two concurrent allocations: one succeeds, the other is a
   409 ALLOCATED): the :class:`~cases.models.Allocation` with the plan JSON, placed sub-cases GROUPED →
   ALLOCATED and the others → MANUAL_REVIEW (the FSM with an OCC check, one UPDATE per target status;
   one audit row and one ``subcase:state-changed`` per sub-case, ``case:updated`` once), one
   ``allocation:failed`` per unplaced group, the wave ALLOCATED, and the audit rows ``allocation.created``
   (counts) and ``demand.allocated``.

Engine input (docs/booking.md § Allocation (routes)): a passenger is a ``minor`` when their needs include
INFANT; ``missing`` lists the required manifest fields that are empty among first name, last name, PNR
and tier (→ DATA_INCOMPLETE). Only members still GROUPED are allocated; a member who has since left
(CANCELLED) or moved on is left out of the plan.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import structlog
from django.db import transaction
from django.db.models import F, Q
from django.db.models.functions import Now
from django.utils import timezone
from django_fsm import can_proceed

from audit import services as audit
from booking import selectors as booking_selectors
from booking import services as booking_services
from cases import events, selectors
from cases.models import Allocation, Case, DemandStatus, DemandWave, DemandWaveMember, SubCase, SubCaseStatus
from cases.services._common import (
    _case_status_refresh,
    _illegal_transition,
    _lock_case,
    _transition_recorded,
    _version_conflict,
)
from cases.services.guards import _guard_subcase_write
from nexa.platform.auth import Principal
from nexa.platform.composition import PARTIAL_FAILURES, compose
from nexa.platform.problems import Problem, conflict_problem, downstream_unavailable_problem, validation_problem
from policies.selectors import policy_resolve

# Sections of the gathering compose (their names are the ``domain`` of a failed one).
CONTRACTS_SECTION = "contracts"
POLICY_SECTION_PREFIX = "policies:"
HOTELS_SECTION = "hotels"
ACCESSIBLE_HOTELS_SECTION = "hotels:accessible"
# The vendor searches ask for double rooms: the engine splits groups by each tier's maxOccupancy, and the
# policies resolve concurrently with the search, so their occupancy is not known when it starts.
SEARCH_OCCUPANCY = 2
# Vendors list only hotels with at least the rooms asked for (and refuse more than 100): asking for one lists
# every hotel with availability, each with its roomsAvailable; the engine spreads the wave over them.
SEARCH_ROOMS = 1
REQUIRED_FIELDS = ("first_name", "last_name", "pnr", "tier")
PRM_NEEDS = frozenset({"WHEELCHAIR", "MEDICAL"})  # as booking.allocation.Passenger.reduced_mobility
MINOR_NEEDS = frozenset({"INFANT"})

logger = structlog.get_logger(__name__)


# --- validation ---------------------------------------------------------------------------------------


def _not_approved(wave: DemandWave, status: str) -> Problem:
    return conflict_problem(
        slug="demand-not-approved",
        title="The demand is not approved",
        detail=f"{wave.urn} is {status}; only an APPROVED demand can be allocated.",
        demandStatus=status,
    )


def _demand_for(*, principal: Principal, demand_urn: str, case_urn: str | None) -> DemandWave:
    case = selectors.case_get(principal=principal, case_urn=case_urn) if case_urn is not None else None
    wave = selectors.allocation_demand_get(principal=principal, demand_urn=demand_urn)
    if case is not None and wave.case_id != case.pk:
        raise validation_problem(
            [{"field": "demandUrn", "message": f"{wave.urn} is a demand of another case, not of {case.urn}"}],
            status=422,
        )
    status = wave.status_at(timezone.now())
    if status != DemandStatus.APPROVED:
        raise _not_approved(wave, status)
    return wave


# --- gathering --------------------------------------------------------------------------------------------


def _passenger(sub_case: SubCase) -> booking_selectors.Passenger:
    needs = frozenset(sub_case.special_needs or ())
    return booking_selectors.Passenger(
        key=sub_case.urn,
        pnr=sub_case.pnr,
        tier=sub_case.tier,
        needs=needs,
        minor=bool(needs & MINOR_NEEDS),
        missing=tuple(field for field in REQUIRED_FIELDS if not str(getattr(sub_case, field) or "").strip()),
    )


def _groups(members: list[DemandWaveMember]) -> tuple[list[booking_selectors.Group], list[SubCase]]:
    """The wave's GROUPED passengers as engine groups (in manifest order), and those sub-cases."""
    by_group: dict[str, tuple[str, list[SubCase]]] = {}
    for member in members:
        sub_case = member.sub_case
        group = member.group or sub_case.group
        if sub_case.status != SubCaseStatus.GROUPED or group is None:
            continue
        by_group.setdefault(group.urn, (group.label, []))[1].append(sub_case)
    groups = [
        booking_selectors.Group(urn=urn, label=label, passengers=tuple(_passenger(s) for s in sub_cases))
        for urn, (label, sub_cases) in by_group.items()
    ]
    return groups, [sub_case for _, sub_cases in by_group.values() for sub_case in sub_cases]


def _family_exception(raw: Any) -> bool:
    # {perRoom: 1, familyException: true}: a family (a PNR party with a minor) may share a family room.
    return bool(raw.get("familyException")) if isinstance(raw, dict) else False


def _occupancy(raw: Any) -> int | None:
    # Policies store maxOccupancy as a number or as {perRoom, familyException}.
    if isinstance(raw, dict):
        raw = raw.get("perRoom")
    try:
        return int(raw) if raw is not None else None
    except (TypeError, ValueError):
        return None


def _rules(*, principal: Principal, case: Case, tier: str, currency) -> booking_selectors.Rules | None:
    """The engine rules of the policy resolving for ``tier`` in the case's context; ``None`` when none
    resolves (the tier's groups fail with POLICY_VIOLATION)."""
    try:
        resolved = policy_resolve(
            principal=principal, airport=case.airport, tier=tier, cause=case.cause, case_urn=case.urn
        )
    except Problem as problem:
        if problem.status_code == 404:
            return None
        raise
    rules = resolved.effective_rules or {}
    rate = rules.get("maxNightlyRate")
    max_rate = None
    if isinstance(rate, dict) and rate.get("amount") is not None:
        money = booking_selectors.Money(
            Decimal(str(rate["amount"])), str(rate.get("currency") or currency.code).upper()
        )
        converted = currency.convert(money)
        if converted is None:
            return None  # a cap in a currency we cannot compare with: no room can be shown compliant
        max_rate = converted.amount
    distance, stars = rules.get("maxDistanceKm"), rules.get("minStars")
    occupancy = _occupancy(rules.get("maxOccupancy"))
    return booking_selectors.Rules(
        policy_urn=resolved.policy.urn,
        max_distance_km=float(distance) if distance is not None else None,
        min_stars=int(stars) if stars is not None else None,
        max_nightly_rate=max_rate,
        max_occupancy=occupancy if occupancy and occupancy > 0 else 2,
        accessible_room_for_prm=bool(rules.get("accessibleRoomForPrm", True)),
        family_exception=_family_exception(rules.get("maxOccupancy")),
    )


def _search(*, principal: Principal, case: Case, wave: DemandWave, accessible: bool) -> dict[str, Any]:
    return booking_services.hotels_search(
        principal=principal,
        airport=case.airport,
        case_urn=case.urn,
        check_in=wave.check_in,
        nights=wave.nights,
        rooms=SEARCH_ROOMS,
        occupancy=SEARCH_OCCUPANCY,
        accessible=accessible,
    )


def _vendor_offers(searches: list[dict[str, Any]], currency_code: str) -> list[booking_selectors.Offer]:
    """Vendor offers of the searches as engine offers, once per offer id (an offer found by both searches
    keeps its accessible rooms). Contract rows are left out: the contract section reads them with
    reservations subtracted. An offer without a price in the airline's currency cannot be compared."""
    offers: dict[str, booking_selectors.Offer] = {}
    for search in searches:
        for row in search.get("offers", ()):
            rate = row.get("rateInAirlineCurrency")
            if row["source"] == "contract" or rate is None or rate["currency"] != currency_code:
                continue
            offer = booking_selectors.Offer(
                offer_id=row["offerId"],
                source=booking_selectors.SOURCE_VENDOR,
                hotel_urn=row.get("hotelUrn"),
                hotel_name=row["name"],
                stars=int(row["stars"]),
                distance_km=float(row["distanceKm"]),
                nightly_rate=Decimal(rate["amount"]),
                currency=rate["currency"],
                rooms_available=int(row["roomsAvailable"]),
                accessible_rooms=int(row["roomsAvailable"]) if row.get("accessible") else 0,
                vendor=row["source"],
            )
            known = offers.get(offer.offer_id)
            if known is None or offer.accessible_rooms > known.accessible_rooms:
                offers[offer.offer_id] = offer
    return list(offers.values())


def _gather(
    *,
    principal: Principal,
    case: Case,
    wave: DemandWave,
    groups: list[booking_selectors.Group],
    rules_by_tier: dict[str, booking_selectors.Rules | None] | None = None,
) -> tuple[dict[str, booking_selectors.Rules | None], list[booking_selectors.Offer], list[dict[str, str]], list[str]]:
    """Policies, contracts and vendor inventory, all in flight at once: (rules by tier, offers, failures, the
    domains that could not be read at all). ``rules_by_tier`` given (the review relax's re-allocation, which
    resolved them on its own connection, where its uncommitted relaxation is visible): no policy section."""
    currency = booking_selectors.airline_currency(principal.airline)
    passengers = [p for group in groups for p in group.passengers]
    tiers = sorted({p.tier for p in passengers})
    prm = any(p.needs & PRM_NEEDS for p in passengers)
    sections: dict[str, Any] = {
        CONTRACTS_SECTION: lambda: booking_selectors.allocation_contract_offers(
            airline=principal.airline, airport=case.airport, check_in=wave.check_in, nights=wave.nights
        ),
        HOTELS_SECTION: lambda: _search(principal=principal, case=case, wave=wave, accessible=False),
    }
    if prm:
        sections[ACCESSIBLE_HOTELS_SECTION] = lambda: _search(
            principal=principal, case=case, wave=wave, accessible=True
        )
    for tier in tiers if rules_by_tier is None else ():
        sections[POLICY_SECTION_PREFIX + tier] = lambda tier=tier: _rules(
            principal=principal, case=case, tier=tier, currency=currency
        )
    joined = compose(sections)

    failures: list[dict[str, str]] = []
    for failure in joined[PARTIAL_FAILURES]:
        domain = failure["domain"]
        if domain.startswith(POLICY_SECTION_PREFIX):  # one entry per tier, named as its domain
            failure = {
                **failure,
                "domain": "policies",
                "detail": f"{domain[len(POLICY_SECTION_PREFIX) :]}: " + failure["detail"],
            }
        elif domain.startswith(HOTELS_SECTION):
            failure = {**failure, "domain": "booking"}
        failures.append(failure)
    searches = [joined[name] for name in (HOTELS_SECTION, ACCESSIBLE_HOTELS_SECTION) if joined.get(name)]
    seen = {(f["domain"], f["status"]) for f in failures}
    for search in searches:  # the vendors each search could not reach (its own sections are ours already)
        for failure in search.get(PARTIAL_FAILURES, ()):
            key = (failure["domain"], failure["status"])
            if failure["domain"] in ("contracts", "policies") or key in seen:
                continue
            seen.add(key)
            failures.append(failure)
    if rules_by_tier is None:
        rules = {tier: joined.get(POLICY_SECTION_PREFIX + tier) for tier in tiers}
    else:
        rules = {tier: rules_by_tier.get(tier) for tier in tiers}
    offers = list(joined.get(CONTRACTS_SECTION) or []) + _vendor_offers(searches, currency.code)
    # An outage is not a verdict: a tier whose policy could not be read is not "no policy", and no vendor
    # answering is not "no rooms". allocation_create refuses (503) rather than sending passengers to review.
    failed_sections = {failure["domain"] for failure in joined[PARTIAL_FAILURES]}
    unavailable = []
    if any(POLICY_SECTION_PREFIX + tier in failed_sections for tier in tiers):
        unavailable.append("policies")
    if HOTELS_SECTION in failed_sections:
        unavailable.append("booking")
    return rules, offers, failures, unavailable


# --- the plan as JSON ------------------------------------------------------------------------------------


def _money(amount: Decimal, currency: str) -> dict[str, str]:
    return {"amount": str(Decimal(amount).quantize(Decimal("0.01"))), "currency": currency}


def _offer_json(offer: booking_selectors.Offer) -> dict[str, Any]:
    return {
        "offerId": offer.offer_id,
        "hotelUrn": offer.hotel_urn,
        "hotelName": offer.hotel_name,
        "source": offer.source,
        "vendor": offer.vendor,
        "contractUrn": offer.contract_urn,
        "nightlyRate": _money(offer.nightly_rate, offer.currency),
    }


def _plan_json(
    *,
    allocation: Allocation,
    wave: DemandWave,
    case: Case,
    groups: list[booking_selectors.Group],
    plan: booking_selectors.Plan,
    failures: list[dict[str, str]],
) -> dict[str, Any]:
    by_urn = {group.urn: group for group in groups}
    assignments = []
    placed: set[str] = set()
    for assignment in plan.assignments:
        offer = assignment.offer
        rooms = [
            {"occupants": list(room.occupants), "accessible": room.accessible, "escort": room.escort}
            for room in assignment.rooms
        ]
        placed.update(occupant for room in assignment.rooms for occupant in room.occupants)
        group = by_urn.get(assignment.group_urn)
        assignments.append(
            {
                "groupUrn": assignment.group_urn,
                "groupLabel": group.label if group else "",
                **{key: value for key, value in _offer_json(offer).items() if key != "nightlyRate"},
                "rooms": rooms,
                "nightlyRate": _money(offer.nightly_rate, offer.currency),
                "policyUrn": assignment.policy_urn,
                "reason": assignment.reason,
                "checkIn": wave.check_in.isoformat(),
                "nights": wave.nights,
                "alternatives": [_offer_json(alternative) for alternative in assignment.alternatives],
            }
        )
    unallocated = []
    reported: set[str] = set()
    for entry in plan.unallocated:
        group = by_urn.get(entry.group_urn)
        members = [p.key for p in group.passengers if p.key not in placed] if group else []
        reported.add(entry.group_urn)
        unallocated.append(
            {
                "groupUrn": entry.group_urn,
                "groupLabel": group.label if group else "",
                "subCaseUrns": members,
                "category": entry.category,
                "reason": entry.reason,
            }
        )
    # A passenger the engine neither placed nor reported (it should not happen) is not left GROUPED.
    for group in groups:
        left = [p.key for p in group.passengers if p.key not in placed]
        if left and group.urn not in reported:
            unallocated.append(
                {
                    "groupUrn": group.urn,
                    "groupLabel": group.label,
                    "subCaseUrns": left,
                    "category": booking_selectors.ALLOCATION_FAILED,
                    "reason": "the allocation placed only part of the group",
                }
            )
    return {
        "allocationUrn": allocation.urn,
        "demandUrn": wave.urn,
        "caseUrn": case.urn,
        "assignments": assignments,
        "unallocated": unallocated,
        "partialFailures": failures,
    }


# --- persisting ------------------------------------------------------------------------------------------


def _transition_all_locked(
    *, principal: Principal, case: Case, sub_cases: list[SubCase], transition: str, reason: str
) -> None:
    """:func:`cases.services._common._transition_locked` for many sub-cases at once: the same FSM check,
    write guards, OCC, audit row and ``subcase:state-changed`` per sub-case, but one UPDATE for all of
    them (every sub-case must still be at the version read under the case lock). The caller holds the case
    row lock and re-derives the case status afterwards."""
    if not sub_cases:
        return
    for sub_case in sub_cases:
        if not can_proceed(getattr(sub_case, transition)):
            raise _illegal_transition(sub_case=sub_case, transition=transition)
        _guard_subcase_write(principal=principal, sub_case=sub_case, fencing_token=None)
    condition = Q()
    for sub_case in sub_cases:
        condition |= Q(pk=sub_case.pk, version=sub_case.version)
    before = {sub_case.pk: {"status": sub_case.status, "version": sub_case.version} for sub_case in sub_cases}
    for sub_case in sub_cases:
        getattr(sub_case, transition)()  # the FSM method: the new status, in memory
    target = sub_cases[0].status
    updated = SubCase.objects.filter(condition).update(status=target, version=F("version") + 1, updated_at=Now())
    if updated != len(sub_cases):
        current = dict(SubCase.objects.filter(pk__in=before).values_list("pk", "version"))
        moved = next(s for s in sub_cases if current.get(s.pk) != before[s.pk]["version"])
        raise _version_conflict(
            sub_case_urn=moved.urn, current_version=current.get(moved.pk), expected_version=before[moved.pk]["version"]
        )
    for sub_case in sub_cases:
        sub_case.version += 1
        _transition_recorded(
            principal=principal,
            case=case,
            sub_case=sub_case,
            transition=transition,
            reason=reason,
            before=before[sub_case.pk],
            after={"status": sub_case.status, "version": sub_case.version, "transition": transition},
        )


def _persist(
    *,
    principal: Principal,
    wave: DemandWave,
    sub_case_ids: list,
    groups: list[booking_selectors.Group],
    plan: booking_selectors.Plan,
    failures: list[dict[str, str]],
) -> Allocation:
    with transaction.atomic():
        case = _lock_case(principal=principal, case_id=wave.case_id)
        wave = DemandWave.objects.select_for_update().get(pk=wave.pk)
        status = wave.status_at(timezone.now())
        if status != DemandStatus.APPROVED:  # someone allocated (or it changed) while we gathered
            raise _not_approved(wave, status)

        allocation = Allocation(airline=wave.airline, case=case, demand=wave, created_by=principal.operator_urn)
        allocation.plan = _plan_json(
            allocation=allocation, wave=wave, case=case, groups=groups, plan=plan, failures=failures
        )
        allocation.save(force_insert=True)

        sub_cases = {
            s.urn: s
            for s in SubCase.objects.filter(pk__in=sub_case_ids, airline=wave.airline).only(
                "id", "case_id", "airline", "status", "version"
            )
        }
        unplaced = {urn for entry in allocation.plan["unallocated"] for urn in entry["subCaseUrns"]}
        placed = [s for urn, s in sub_cases.items() if urn not in unplaced]
        reason = f"allocation {allocation.urn}"
        _transition_all_locked(
            principal=principal, case=case, sub_cases=placed, transition="mark_allocated", reason=reason
        )
        _transition_all_locked(
            principal=principal,
            case=case,
            sub_cases=[sub_cases[urn] for urn in sorted(unplaced) if urn in sub_cases],
            transition="send_to_review",
            reason=reason,
        )
        for entry in allocation.plan["unallocated"]:
            events.publish_allocation_failed(
                airline=case.airline,
                case_urn=case.urn,
                demand_urn=wave.urn,
                allocation_urn=allocation.urn,
                group_urn=entry["groupUrn"],
                sub_case_urns=entry["subCaseUrns"],
                category=entry["category"],
                reason=entry["reason"],
            )

        DemandWave.objects.filter(pk=wave.pk).update(
            status=DemandStatus.ALLOCATED, version=F("version") + 1, updated_at=Now()
        )
        audit.record(
            principal=principal,
            action="demand.allocated",
            entity_urn=wave.urn,
            case_urn=case.urn,
            before={"status": wave.status, "version": wave.version},
            after={"status": DemandStatus.ALLOCATED, "version": wave.version + 1, "allocationUrn": allocation.urn},
        )
        audit.record(
            principal=principal,
            action="allocation.created",
            entity_urn=allocation.urn,
            case_urn=case.urn,
            after={
                "demandUrn": wave.urn,
                "groups": len(groups),
                "assignments": len(allocation.plan["assignments"]),
                "rooms": sum(len(a["rooms"]) for a in allocation.plan["assignments"]),
                "allocated": len(placed),
                "unallocated": len(unplaced),
                "partialFailures": [f["domain"] for f in failures],
            },
        )
        _case_status_refresh(principal=principal, case=case, reason=reason)
    return allocation


# --- the use case -----------------------------------------------------------------------------------------


def allocation_create(*, principal: Principal, demand_urn: str, case_urn: str | None = None) -> Allocation:
    """Allocate an APPROVED demand wave (see the module docstring): the stored :class:`Allocation`, whose
    ``plan`` is the routes' answer. 404 for another airline's case or demand, 422 for a demand of another
    case (``case_urn`` given), 409 ``demand-not-approved`` naming the status (also for the loser of two
    concurrent allocations), 409 ``nothing-to-allocate`` when no passenger of the wave is GROUPED."""
    wave = _demand_for(principal=principal, demand_urn=demand_urn, case_urn=case_urn)
    case = wave.case
    groups, sub_cases = _groups(selectors.allocation_wave_members(wave=wave))
    if not groups:
        raise conflict_problem(
            slug="nothing-to-allocate",
            title="No passenger of the demand can be allocated",
            detail=f"No passenger of {wave.urn} is GROUPED.",
        )
    started = time.perf_counter()
    rules, offers, failures, unavailable = _gather(principal=principal, case=case, wave=wave, groups=groups)
    gathered = time.perf_counter()
    if "policies" in unavailable:
        raise downstream_unavailable_problem("policies", "The policies could not be read; try again in 30 seconds.")
    plan = booking_selectors.allocation_plan(
        booking_selectors.AllocationInput(groups=tuple(groups), rules_by_tier=rules, inventory=tuple(offers))
    )
    if "booking" in unavailable and any(
        entry.category == booking_selectors.ALLOCATION_FAILED for entry in plan.unallocated
    ):
        # Contracts alone could not place everyone and no vendor answered: nothing is written, the wave
        # stays APPROVED, and the supervisor retries rather than finding the rest in manual review.
        raise downstream_unavailable_problem(
            "booking", "No hotel vendor answered and the contracts cannot place every group; try again in 30 seconds."
        )
    planned = time.perf_counter()
    allocation = _persist(
        principal=principal,
        wave=wave,
        sub_case_ids=[s.pk for s in sub_cases],
        groups=groups,
        plan=plan,
        failures=failures,
    )
    logger.info(
        "allocation_created",
        allocation_urn=allocation.urn,
        passengers=len(sub_cases),
        offers=len(offers),
        gather_ms=round((gathered - started) * 1000),
        plan_ms=round((planned - gathered) * 1000),
        persist_ms=round((time.perf_counter() - planned) * 1000),
    )
    return allocation
