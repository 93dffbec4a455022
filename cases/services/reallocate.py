"""Re-allocating passengers a review item holds (manual review's ``relax``, docs/review.md § Relax).

The passengers an allocation (or a booking) could not place sit in MANUAL_REVIEW. After an operator relaxed
the case's policy, :func:`subcases_reallocate` runs the allocation engine again for just them, in their own
current groups, against the wave they were allocated in (its check-in and nights): the same gathering, engine
and plan JSON as :func:`cases.services.allocation.allocation_create`, with the rules resolved on the caller's
connection (the relaxation is written in the caller's transaction, which the gathering's worker threads could
not see). What it writes, in the caller's transaction, with the case row and then the wave row locked:

* a new :class:`~cases.models.Allocation` of the same wave (PLANNED) holding the groups it placed (and, in
  ``unallocated``, those it still could not place) — book-rooms books it like any other;
* the placed passengers MANUAL_REVIEW → GROUPED → ALLOCATED (the FSM's own transitions, OCC, one audit row
  and one ``subcase:state-changed`` per step);
* an earlier PLANNED allocation of the wave with nothing left to book (none of its occupants is ALLOCATED any
  more) becomes SUPERSEDED: the new one replaced it. One whose placed groups are still to be booked stays
  PLANNED (book-rooms leaves out whoever moved on).

Passengers still unplaceable stay in MANUAL_REVIEW and **no ``allocation:failed`` is published**: the review
item that holds them is the open failure, and a second item for the same loop would only duplicate it. When
nobody could be placed, nothing is written at all (``allocation`` is None).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models.functions import Now

from audit import services as audit
from booking import selectors as booking_selectors
from cases.models import Allocation, AllocationStatus, Case, DemandWave, DemandWaveMember, SubCase, SubCaseStatus
from cases.services._common import _case_status_refresh, _lock_case, _subcases_in_review
from cases.services.allocation import _gather, _passenger, _plan_json, _rules, _transition_all_locked
from nexa.platform.auth import Principal
from nexa.platform.problems import conflict_problem, downstream_unavailable_problem, validation_problem
from nexa.platform.urns import InvalidUrn, parse_urn


@dataclass
class Reallocation:
    """The outcome: the new allocation (None when nobody could be placed), who was placed, who was not."""

    allocation: Allocation | None
    demand_urn: str
    placed: list[str] = field(default_factory=list)
    unallocated: list[dict[str, Any]] = field(default_factory=list)
    partial_failures: list[dict[str, str]] = field(default_factory=list)


def _wave_of(*, principal: Principal, case: Case, sub_cases: list[SubCase], demand_urn: str | None) -> DemandWave:
    """The wave to re-allocate in: the named one (it must hold the passengers), else the latest ALLOCATED wave
    of the case that holds any of them."""
    waves = DemandWave.objects.filter(airline=principal.airline, case=case)
    members = DemandWaveMember.objects.filter(sub_case__in=sub_cases)
    if demand_urn:
        try:
            wave = waves.filter(pk=parse_urn(demand_urn, "demand").id, pk__in=members.values("wave_id")).first()
        except InvalidUrn:
            wave = None
        if wave is None:
            raise validation_problem(
                [{"field": "demandUrn", "message": f"{demand_urn} is not a demand wave holding these passengers"}],
                status=422,
            )
        return wave
    wave = waves.filter(pk__in=members.values("wave_id"), status="ALLOCATED").order_by("-created_at", "-id").first()
    if wave is None:
        raise conflict_problem(
            slug="no-demand-wave",
            title="The passengers were never allocated",
            detail="No allocated demand wave of the case holds these passengers; ask for rooms with a demand.",
        )
    return wave


def subcases_reallocate(
    *, principal: Principal, case: Case, sub_case_urns: list[str], reason: str, demand_urn: str | None = None
) -> Reallocation:
    """Allocate again the passengers of ``sub_case_urns`` that are in MANUAL_REVIEW (see the module docstring).
    Call it inside the transaction that relaxed the policy. 409 ``nothing-to-reallocate`` when none of them is
    in MANUAL_REVIEW; 409 ``no-demand-wave`` when no allocated wave holds them; 503 when no hotel vendor
    answered and the contracts alone cannot place them (nothing written)."""
    sub_cases = _subcases_in_review(principal=principal, case=case, sub_case_urns=sub_case_urns)
    if not sub_cases:
        raise conflict_problem(
            slug="nothing-to-reallocate",
            title="No passenger to re-allocate",
            detail="None of the item's passengers is in MANUAL_REVIEW any more.",
        )
    wave = _wave_of(principal=principal, case=case, sub_cases=sub_cases, demand_urn=demand_urn)
    by_group: dict[str, tuple[str, list[SubCase]]] = {}
    for sub_case in sub_cases:
        key, label = (sub_case.group.urn, sub_case.group.label) if sub_case.group else (sub_case.urn, "")
        by_group.setdefault(key, (label, []))[1].append(sub_case)
    groups = [
        booking_selectors.Group(urn=urn, label=label, passengers=tuple(_passenger(s) for s in members))
        for urn, (label, members) in by_group.items()
    ]
    currency = booking_selectors.airline_currency(principal.airline)
    rules = {
        tier: _rules(principal=principal, case=case, tier=tier, currency=currency)
        for tier in sorted({s.tier for s in sub_cases})
    }
    _, offers, failures, unavailable = _gather(
        principal=principal, case=case, wave=wave, groups=groups, rules_by_tier=rules
    )
    plan = booking_selectors.allocation_plan(
        booking_selectors.AllocationInput(groups=tuple(groups), rules_by_tier=rules, inventory=tuple(offers))
    )
    if "booking" in unavailable and any(
        entry.category == booking_selectors.ALLOCATION_FAILED for entry in plan.unallocated
    ):
        raise downstream_unavailable_problem(
            "booking", "No hotel vendor answered and the contracts cannot place these passengers; try again in 30 s."
        )
    if not plan.assignments:
        probe = Allocation(airline=principal.airline, case=case, demand=wave)
        unallocated = _plan_json(allocation=probe, wave=wave, case=case, groups=groups, plan=plan, failures=failures)[
            "unallocated"
        ]
        return Reallocation(None, wave.urn, [], unallocated, failures)
    return _persist(
        principal=principal, case=case, wave=wave, sub_cases=sub_cases, groups=groups, plan=plan,
        failures=failures, reason=reason,
    )  # fmt: skip


def _persist(
    *,
    principal: Principal,
    case: Case,
    wave: DemandWave,
    sub_cases: list[SubCase],
    groups: list[booking_selectors.Group],
    plan: booking_selectors.Plan,
    failures: list[dict[str, str]],
    reason: str,
) -> Reallocation:
    with transaction.atomic():
        case = _lock_case(principal=principal, case_id=case.pk)
        wave = DemandWave.objects.select_for_update().get(pk=wave.pk)
        allocation = Allocation(airline=wave.airline, case=case, demand=wave, created_by=principal.operator_urn)
        allocation.plan = _plan_json(
            allocation=allocation, wave=wave, case=case, groups=groups, plan=plan, failures=failures
        )
        allocation.save(force_insert=True)
        unplaced = {urn for entry in allocation.plan["unallocated"] for urn in entry["subCaseUrns"]}
        current = {
            s.urn: s
            for s in SubCase.objects.filter(pk__in=[s.pk for s in sub_cases], status=SubCaseStatus.MANUAL_REVIEW)
        }
        placed = [current[s.urn] for s in sub_cases if s.urn not in unplaced and s.urn in current]
        why = f"re-allocation {allocation.urn}: {reason}"[:2000]
        _transition_all_locked(
            principal=principal, case=case, sub_cases=placed, transition="return_to_grouped", reason=why
        )
        _transition_all_locked(
            principal=principal, case=case, sub_cases=placed, transition="mark_allocated", reason=why
        )
        superseded = _supersede_spent(principal=principal, case=case, wave=wave, replaced_by=allocation)
        audit.record(
            principal=principal,
            action="allocation.created",
            entity_urn=allocation.urn,
            case_urn=case.urn,
            reason=reason,
            after={
                "demandUrn": wave.urn,
                "reallocation": True,
                "groups": len(groups),
                "assignments": len(allocation.plan["assignments"]),
                "allocated": len(placed),
                "unallocated": len(unplaced),
                "supersedes": superseded,
                "partialFailures": [f["domain"] for f in failures],
            },
        )
        _case_status_refresh(principal=principal, case=case, reason=why)
    return Reallocation(allocation, wave.urn, [s.urn for s in placed], allocation.plan["unallocated"], failures)


def _supersede_spent(*, principal: Principal, case: Case, wave: DemandWave, replaced_by: Allocation) -> list[str]:
    """Earlier PLANNED allocations of the wave with no occupant still ALLOCATED: nothing of them is left to
    book, the new allocation replaced them (SUPERSEDED, audited)."""
    superseded = []
    earlier = Allocation.objects.select_for_update().filter(demand=wave, status=AllocationStatus.PLANNED)
    for allocation in earlier.exclude(pk=replaced_by.pk).order_by("created_at", "id"):
        occupants = {
            occupant
            for assignment in allocation.plan.get("assignments") or []
            for room in assignment.get("rooms") or []
            for occupant in room.get("occupants") or []
        }
        ids = [parse_urn(urn, "subcase").id for urn in occupants]
        if SubCase.objects.filter(pk__in=ids, status=SubCaseStatus.ALLOCATED).exists():
            continue
        Allocation.objects.filter(pk=allocation.pk).update(status=AllocationStatus.SUPERSEDED, updated_at=Now())
        audit.record(
            principal=principal,
            action="allocation.superseded",
            entity_urn=allocation.urn,
            case_urn=case.urn,
            before={"status": AllocationStatus.PLANNED},
            after={"status": AllocationStatus.SUPERSEDED, "replacedBy": replaced_by.urn},
        )
        superseded.append(allocation.urn)
    return superseded
