"""Demand waves: asking for rooms for some of a case's passengers (``POST /v1/demand/case/{case_urn}``) and a
supervisor's approval or rejection of the request (``POST /v1/demand/{demand_urn}/approve|reject``).

A wave is PENDING_APPROVAL until a supervisor resolves it or its approval TTL runs out; expiry is lazy
(:meth:`~cases.models.DemandWave.status_at`): a wave reads as EXPIRED from ``expires_at`` on, and the row is
rewritten to EXPIRED by the next write that meets it (a new request for the case, or an approval attempt).

Lock order: the case row first, then the wave row (the allocation use case takes them in the same order).
"""

import datetime as dt
import math
import uuid
from collections import defaultdict
from collections.abc import Sequence

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.db.models.functions import Now
from django.utils import timezone

from audit import services as audit
from cases.models import (
    OPEN_DEMAND_STATUSES,
    Case,
    DemandKind,
    DemandStatus,
    DemandWave,
    DemandWaveMember,
    PassengerGroup,
    SpecialNeed,
    SubCase,
    SubCaseStatus,
)
from cases.services._common import _case_status_refresh, _lock_case
from nexa.platform.auth import Principal
from nexa.platform.models import TenantSettings
from nexa.platform.problems import Problem, conflict_problem, validation_problem
from nexa.platform.urns import format_urn

DEMAND_INITIAL_CONSTRAINT = "demand_one_initial_per_case"
DEMAND_REASON_MAX_LENGTH = 2000
DEMAND_MAX_NIGHTS = 14
# Statuses a wave can no longer leave (approving or rejecting one again is a 409 naming it).
RESOLVED_DEMAND_STATUSES = frozenset({DemandStatus.APPROVED, DemandStatus.REJECTED, DemandStatus.ALLOCATED})


def demand_approval_ttl(airline: str) -> dt.timedelta:
    """How long a wave waits for a supervisor: the airline's ``demand_approval_ttl_minutes``, else
    ``NEXA_DEMAND_APPROVAL_TTL_MINUTES``."""
    minutes = (
        TenantSettings.objects.filter(airline=airline).values_list("demand_approval_ttl_minutes", flat=True).first()
    )
    return dt.timedelta(minutes=settings.NEXA_DEMAND_APPROVAL_TTL_MINUTES if minutes is None else minutes)


def estimated_rooms(members: Sequence[SubCase]) -> int:
    """Rooms a wave is estimated to need before allocation: per passenger group, one room per
    unaccompanied minor (a room of their own) and one per two of the others (``ceil(n / 2)``). A
    passenger without a group counts as a group of one. The engine's plan decides the real rooms
    (families may share larger rooms, PRM passengers may need their own); this sizes the request for the
    supervisor."""
    by_group: dict[object, list[SubCase]] = defaultdict(list)
    for sub_case in members:
        by_group[sub_case.group_id or ("alone", sub_case.pk)].append(sub_case)
    rooms = 0
    for passengers in by_group.values():
        minors = sum(1 for s in passengers if SpecialNeed.UNACCOMPANIED_MINOR in (s.special_needs or ()))
        rooms += minors + math.ceil((len(passengers) - minors) / 2)
    return rooms


def _expire_lapsed(*, principal: Principal, case: Case, now: dt.datetime) -> None:
    """Store EXPIRED on the case's pending waves past their TTL (they already read as EXPIRED), so the
    one-INITIAL constraint and the open-wave checks see them as what they are. The caller holds the case lock."""
    lapsed = list(
        DemandWave.objects.filter(case_id=case.pk, status=DemandStatus.PENDING_APPROVAL, expires_at__lte=now)
        .order_by("created_at", "id")
        .select_for_update()
    )
    for wave in lapsed:
        _store_expired(principal=principal, case=case, wave=wave)


def _store_expired(*, principal: Principal, case: Case, wave: DemandWave) -> None:
    DemandWave.objects.filter(pk=wave.pk, status=DemandStatus.PENDING_APPROVAL).update(
        status=DemandStatus.EXPIRED, version=F("version") + 1, updated_at=Now()
    )
    audit.record(
        principal=principal,
        action="demand.expired",
        entity_urn=wave.urn,
        case_urn=case.urn,
        before={"status": DemandStatus.PENDING_APPROVAL, "version": wave.version},
        after={"status": DemandStatus.EXPIRED, "version": wave.version + 1, "expiresAt": wave.expires_at.isoformat()},
    )
    wave.status, wave.version = DemandStatus.EXPIRED, wave.version + 1


def _open_memberships(sub_case_ids) -> dict[uuid.UUID, DemandWave]:
    """sub-case id → the open wave (pending and not lapsed, approved or allocated) it is a member of.

    A GROUPED member of an ALLOCATED wave is not held by it: allocation moves every member on (ALLOCATED,
    or MANUAL_REVIEW when unplaced), so GROUPED means manual review sent it back to the flow (resolved
    NO_ACTION, RELAXED or SPLIT) and a new wave may ask rooms for it (docs/review.md)."""
    rows = (
        DemandWaveMember.objects.filter(sub_case_id__in=sub_case_ids, wave__status__in=OPEN_DEMAND_STATUSES)
        .exclude(wave__status=DemandStatus.ALLOCATED, sub_case__status=SubCaseStatus.GROUPED)
        .select_related("wave")
        .order_by("wave__created_at")
    )
    return {row.sub_case_id: row.wave for row in rows}


def _in_wave_message(sub_case: SubCase, wave: DemandWave) -> str:
    return f"{sub_case.urn} is already in {wave.urn} ({wave.status})"


def _not_grouped_message(sub_case: SubCase) -> str:
    return (
        f"{sub_case.urn} is {sub_case.status}: only grouped passengers (GROUPED) can be asked rooms for; "
        "group them first (POST /v1/cases/{case_urn}/passenger-groups)"
    )


def _members_named(
    *, case: Case, subcase_ids: Sequence[uuid.UUID], by_id: dict[uuid.UUID, SubCase], open_waves: dict
) -> list[SubCase]:
    """The named sub-cases, each of this case (else 400), GROUPED and in no open wave (else 422)."""
    unknown = [
        {"field": f"subCaseUrns[{i}]", "message": f"{format_urn('subcase', id_)} is not a passenger of {case.urn}"}
        for i, id_ in enumerate(subcase_ids)
        if id_ not in by_id
    ]
    if unknown:
        raise validation_problem(unknown)
    refused = []
    for index, id_ in enumerate(subcase_ids):
        sub_case = by_id[id_]
        if sub_case.status != SubCaseStatus.GROUPED:
            refused.append({"field": f"subCaseUrns[{index}]", "message": _not_grouped_message(sub_case)})
        elif id_ in open_waves:
            refused.append({"field": f"subCaseUrns[{index}]", "message": _in_wave_message(sub_case, open_waves[id_])})
    if refused:
        raise validation_problem(refused, status=422)
    return [by_id[id_] for id_ in subcase_ids]


def _members_of_groups(
    *, case: Case, group_ids: Sequence[uuid.UUID], sub_cases: list[SubCase], open_waves: dict
) -> list[SubCase]:
    """The GROUPED members of the named groups (each of this case, else 400); a member in an open wave, or a
    group with no grouped member left, is a 422 naming it. Members that moved on (allocated, in review,
    cancelled) are not asked for again."""
    known = set(PassengerGroup.objects.filter(case_id=case.pk, id__in=group_ids).values_list("id", flat=True))
    unknown = [
        {"field": f"groupUrns[{i}]", "message": f"{format_urn('group', id_)} is not a passenger group of {case.urn}"}
        for i, id_ in enumerate(group_ids)
        if id_ not in known
    ]
    if unknown:
        raise validation_problem(unknown)
    refused = []
    chosen: list[SubCase] = []
    for index, group_id in enumerate(group_ids):
        members = [s for s in sub_cases if s.group_id == group_id and s.status == SubCaseStatus.GROUPED]
        taken = [s for s in members if s.pk in open_waves]
        refused += [{"field": f"groupUrns[{index}]", "message": _in_wave_message(s, open_waves[s.pk])} for s in taken]
        if not members:
            refused.append(
                {
                    "field": f"groupUrns[{index}]",
                    "message": f"{format_urn('group', group_id)} has no grouped passenger (GROUPED) left "
                    "to ask rooms for",
                }
            )
        chosen += members
    if refused:
        raise validation_problem(refused, status=422)
    return chosen


def demand_request(
    *,
    principal: Principal,
    case: Case,
    kind: str,
    check_in: dt.date,
    nights: int,
    reason: str,
    subcase_ids: Sequence[uuid.UUID] | None = None,
    group_ids: Sequence[uuid.UUID] | None = None,
) -> DemandWave:
    """Ask for rooms for passengers of ``case``: a PENDING_APPROVAL wave that expires after the airline's
    approval TTL.

    Who: the named sub-cases (``subcase_ids``), or the GROUPED members of the named groups
    (``group_ids``), or — neither given — every GROUPED passenger of the case not yet in an open wave
    (``OPEN_DEMAND_STATUSES``). Values are typed and shaped by the route (one list at most, no duplicates,
    ``nights`` 1..14, ``reason`` non-blank). Refusals: 400 for a URN not of this case (``subCaseUrns[i]``,
    ``groupUrns[i]``); 422 for a passenger who is not GROUPED or is in an open wave (naming the wave), or
    when nobody is left to ask for; 409 ``demand-initial-exists`` for a second INITIAL wave (naming it; of
    two racing requests the second waits on the case lock and gets it, and the partial unique index
    ``demand_one_initial_per_case`` backs the rule) and ``demand-initial-missing`` for an INCREMENTAL wave
    before any INITIAL one.

    One transaction under the case lock (requests of one case are serialised); audited
    (``demand.requested``) and announced with ``case:updated``.
    """
    now = timezone.now()
    with transaction.atomic():
        case = _lock_case(principal=principal, case_id=case.pk)
        _expire_lapsed(principal=principal, case=case, now=now)
        initial = (
            DemandWave.objects.filter(case_id=case.pk, kind=DemandKind.INITIAL)
            .exclude(status__in=[DemandStatus.REJECTED, DemandStatus.EXPIRED])
            .first()
        )
        if kind == DemandKind.INITIAL and initial is not None:
            raise _initial_exists(case=case, existing=initial)
        if kind == DemandKind.INCREMENTAL and initial is None:
            raise conflict_problem(
                slug="demand-initial-missing",
                title="Ask for the INITIAL wave first",
                detail=(
                    f"{case.urn} has no INITIAL demand wave (pending, approved or allocated); an INCREMENTAL wave "
                    "adds passengers after it."
                ),
            )

        sub_cases = list(
            SubCase.objects.filter(case_id=case.pk)
            .order_by("created_at", "id")
            .only("id", "case_id", "group_id", "status", "special_needs", "created_at")
        )
        by_id = {s.pk: s for s in sub_cases}
        open_waves = _open_memberships([s.pk for s in sub_cases])
        if subcase_ids:
            members = _members_named(case=case, subcase_ids=subcase_ids, by_id=by_id, open_waves=open_waves)
        elif group_ids:
            members = _members_of_groups(case=case, group_ids=group_ids, sub_cases=sub_cases, open_waves=open_waves)
        else:
            members = [s for s in sub_cases if s.status == SubCaseStatus.GROUPED and s.pk not in open_waves]
            if not members:
                raise validation_problem(
                    [
                        {
                            "field": "subCaseUrns",
                            "message": f"no grouped passenger (GROUPED) of {case.urn} is left to ask rooms for: "
                            "every one is in an open wave, or none is grouped yet",
                        }
                    ],
                    status=422,
                )
        members.sort(key=lambda s: (s.created_at, s.pk))

        wave = DemandWave(
            airline=case.airline,
            case=case,
            kind=kind,
            check_in=check_in,
            nights=nights,
            rooms=estimated_rooms(members),
            people=len(members),
            reason=reason,
            requested_by=principal.operator_urn,
            created_at=now,
            expires_at=now + demand_approval_ttl(case.airline),
        )
        try:
            with transaction.atomic():  # a savepoint: the constraint's refusal must not end the transaction
                wave.save(force_insert=True)
        except IntegrityError as error:
            if DEMAND_INITIAL_CONSTRAINT not in str(error):
                raise
            # A backstop: every writer of waves takes the case lock first, so the check above decides; should
            # one not, the index still refuses a second INITIAL wave and the answer stays a 409.
            existing = DemandWave.objects.filter(case_id=case.pk, kind=DemandKind.INITIAL).exclude(
                status__in=[DemandStatus.REJECTED, DemandStatus.EXPIRED]
            )
            raise _initial_exists(case=case, existing=existing.first()) from None
        DemandWaveMember.objects.bulk_create(
            DemandWaveMember(airline=case.airline, wave=wave, sub_case_id=s.pk, group_id=s.group_id) for s in members
        )
        audit.record(
            principal=principal,
            action="demand.requested",
            entity_urn=wave.urn,
            case_urn=case.urn,
            reason=reason,
            after={
                "kind": kind,
                "status": wave.status,
                "checkIn": check_in.isoformat(),
                "nights": nights,
                "rooms": wave.rooms,
                "people": wave.people,
                "expiresAt": wave.expires_at.isoformat(),
                "subCaseUrns": [s.urn for s in members],
            },
        )
        _case_status_refresh(principal=principal, case=case)
    return wave


def _initial_exists(*, case: Case, existing: DemandWave | None) -> Problem:
    named = f" ({existing.urn}, {existing.status})" if existing is not None else ""
    return conflict_problem(
        slug="demand-initial-exists",
        title="The case already has an INITIAL demand wave",
        detail=(
            f"{case.urn} already has an INITIAL wave{named}; ask for passengers who arrive later with an "
            "INCREMENTAL wave."
        ),
        existingDemandUrn=existing.urn if existing is not None else None,
    )


def _demand_resolve(*, principal: Principal, wave: DemandWave, target: str, reason: str) -> DemandWave:
    now = timezone.now()
    refusal: Problem | None = None
    with transaction.atomic():
        case = _lock_case(principal=principal, case_id=wave.case_id)
        wave = DemandWave.objects.select_for_update().get(pk=wave.pk, airline=principal.airline)
        current = wave.status_at(now)
        if current == DemandStatus.EXPIRED:
            if wave.status == DemandStatus.PENDING_APPROVAL:
                _store_expired(principal=principal, case=case, wave=wave)
            refusal = conflict_problem(
                slug="demand-expired",
                title="The demand wave expired before it was resolved",
                detail=(
                    f"{wave.urn} waited for approval until {wave.expires_at.isoformat()} and expired; "
                    "ask for its passengers again with a new wave."
                ),
                currentStatus=DemandStatus.EXPIRED,
            )
        elif current in RESOLVED_DEMAND_STATUSES:
            refusal = conflict_problem(
                slug="demand-already-resolved",
                title="The demand wave is already resolved",
                detail=f"{wave.urn} is already {current}{_by(wave)}; it can be resolved once.",
                currentStatus=current,
            )
        else:
            before = {"status": wave.status, "version": wave.version}
            DemandWave.objects.filter(pk=wave.pk).update(
                status=target,
                resolved_by=principal.operator_urn,
                resolved_at=now,
                resolution_reason=reason,
                version=F("version") + 1,
                updated_at=Now(),
            )
            wave.refresh_from_db()
            audit.record(
                principal=principal,
                action="demand.approved" if target == DemandStatus.APPROVED else "demand.rejected",
                entity_urn=wave.urn,
                case_urn=case.urn,
                reason=reason,
                before=before,
                after={"status": wave.status, "version": wave.version, "rooms": wave.rooms, "people": wave.people},
            )
            _case_status_refresh(principal=principal, case=case)
    # Raised after the block so the EXPIRED write commits with the refusal (unless an outer transaction,
    # such as an Idempotency-Key claim, rolls the whole request back; the wave reads EXPIRED regardless).
    if refusal is not None:
        raise refusal
    return wave


def _by(wave: DemandWave) -> str:
    return f" by {wave.resolved_by}" if wave.resolved_by else ""


def demand_approve(*, principal: Principal, wave: DemandWave, reason: str) -> DemandWave:
    """Approve a PENDING_APPROVAL wave (its passengers may then be allocated). 409 ``demand-expired`` for a
    wave past its TTL (stored EXPIRED then), ``demand-already-resolved`` (with ``currentStatus``) for one
    approved, rejected or allocated already. The wave row is locked: of two concurrent approvals one wins and
    the other gets the 409. Audited (``demand.approved``), announced with ``case:updated``."""
    return _demand_resolve(principal=principal, wave=wave, target=DemandStatus.APPROVED, reason=reason)


def demand_reject(*, principal: Principal, wave: DemandWave, reason: str) -> DemandWave:
    """Reject a PENDING_APPROVAL wave: its passengers may be asked for again (the refusals of
    :func:`demand_approve`). Audited (``demand.rejected``), announced with ``case:updated``."""
    return _demand_resolve(principal=principal, wave=wave, target=DemandStatus.REJECTED, reason=reason)
