"""Splitting passenger groups into new ones (manual review's ``split``, docs/review.md § Split).

Unlike :func:`cases.services.groups.passenger_groups_create` (regrouping before allocation), a split also takes
passengers an allocation sent to MANUAL_REVIEW — the typical case is a MIXED_TIER_GROUP the engine refused —
and does not move them along the FSM: they keep their status (a review resolved SPLIT then returns them to
GROUPED, where a new demand and allocation take them, each new group under its own tier's policy).
"""

from collections.abc import Sequence

from django.db import transaction
from django.db.models import F
from django.db.models.functions import Now

from audit import services as audit
from cases import events, grouping
from cases.models import PassengerGroup, SubCase, SubCaseStatus
from cases.services._common import _case_status_refresh, _lock_case, _version_conflict
from cases.services.groups import _groups_replace, _traveller
from cases.services.guards import _guard_subcase_write
from nexa.platform.auth import Principal
from nexa.platform.problems import conflict_problem, validation_problem
from nexa.platform.urns import InvalidUrn, format_urn, parse_urn

# A split regroups passengers not yet given rooms: before allocation, or sent to review by it.
SPLITTABLE_SUBCASE_STATUSES = frozenset({SubCaseStatus.PENDING, SubCaseStatus.GROUPED, SubCaseStatus.MANUAL_REVIEW})


def _parse_into(into: object, *, members: dict, field: str) -> tuple[list[list[SubCase]], list[dict[str, str]]]:
    """``[[subcase_urn, …], …]`` against the members of the groups split: (new groups, errors). Every member
    exactly once; a URN that is no member, or is named twice, or a member left out is an error naming it."""
    if not isinstance(into, list) or len(into) < 2:
        return [], [{"field": field, "message": "must list at least two new groups, each a list of sub-case URNs"}]
    errors: list[dict[str, str]] = []
    parts: list[list[SubCase]] = []
    seen: dict = {}
    for index, urns in enumerate(into):
        where = f"{field}[{index}]"
        if not isinstance(urns, list) or not urns:
            errors.append({"field": where, "message": "must be a non-empty list of sub-case URNs"})
            continue
        part = []
        for position, raw in enumerate(urns):
            name = f"{where}[{position}]"
            try:
                urn = parse_urn(raw, "subcase")
            except InvalidUrn as error:
                errors.append({"field": name, "message": error.message})
                continue
            sub_case = members.get(urn.id)
            if sub_case is None:
                errors.append({"field": name, "message": f"{raw} is not a passenger of the group being split"})
            elif urn.id in seen:
                errors.append({"field": name, "message": f"{raw} is listed twice (also in {seen[urn.id]})"})
            else:
                seen[urn.id] = where
                part.append(sub_case)
        parts.append(part)
    for sub_case in members.values():
        if sub_case.pk not in seen:
            errors.append(
                {"field": field, "message": f"{sub_case.urn} of the group is missing: list every passenger once"}
            )
    return parts, errors


def passenger_group_split(
    *, principal: Principal, case_id, group_urns: Sequence[str], into: object, reason: str, field: str = "into"
) -> tuple[list[PassengerGroup], list[str]]:
    """Replace the groups ``group_urns`` of the case by new groups, one per entry of ``into`` (``[[subcase_urn,
    …], …]``, every member of those groups exactly once; else a 422 naming each passenger missing, duplicated or
    foreign). The members keep their status; each gets the new group with a version bump (OCC, write guards),
    an audit row ``subcase.regrouped`` and ``subcase:state-changed``; the old groups are dissolved and the new
    ones created, audited as :func:`passenger_groups_create` does. A member past grouping (ALLOCATED or later)
    is a 409 ``regroup-not-allowed``; an unaccompanied minor with strangers is a 422. Returns (the new groups,
    the dissolved groups' URNs)."""
    with transaction.atomic():
        case = _lock_case(principal=principal, case_id=case_id)
        group_ids = []
        for urn in group_urns:
            try:
                group_ids.append(parse_urn(urn, "group").id)
            except InvalidUrn:
                continue
        old_groups = list(PassengerGroup.objects.filter(case_id=case.pk, pk__in=group_ids).order_by("label"))
        members = {
            s.pk: s
            for s in SubCase.objects.filter(group__in=old_groups)
            .exclude(status=SubCaseStatus.CANCELLED)
            .order_by("created_at", "id")
        }
        if not members:
            raise conflict_problem(
                slug="nothing-to-split",
                title="No group to split",
                detail="The groups named have no passengers left (dissolved, or everyone cancelled).",
            )
        parts, errors = _parse_into(into, members=members, field=field)
        for index, part in enumerate(parts):
            minor = grouping.unaccompanied_minor_with_strangers([_traveller(s) for s in part])
            if minor is not None:
                errors.append(
                    {
                        "field": f"{field}[{index}]",
                        "message": f"{format_urn('subcase', minor.key)} is an unaccompanied minor and may only be "
                        "grouped with passengers of their own PNR",
                    }
                )
        if errors:
            raise validation_problem(errors, status=422)
        too_late = [s for s in members.values() if s.status not in SPLITTABLE_SUBCASE_STATUSES]
        if too_late:
            raise conflict_problem(
                slug="regroup-not-allowed",
                title="Passengers past grouping cannot be regrouped",
                detail="A split regroups passengers not yet given rooms (PENDING, GROUPED or MANUAL_REVIEW): "
                + ", ".join(f"{s.urn} ({s.status})" for s in too_late[:10]),
                subCaseUrns=[s.urn for s in too_late],
            )
        for sub_case in members.values():
            _guard_subcase_write(principal=principal, sub_case=sub_case, fencing_token=None)

        dissolved = [old.urn for old in old_groups]
        created = _groups_replace(
            principal=principal,
            case=case,
            dissolved=old_groups,
            partition=parts,
            reason=reason,
            created_facts={"splitFrom": dissolved},
        )
        for group, part in zip(created, parts, strict=True):
            for sub_case in part:
                _regroup(principal=principal, case=case, sub_case=sub_case, group=group, reason=reason)
        _case_status_refresh(principal=principal, case=case)
    return created, dissolved


def _regroup(*, principal: Principal, case, sub_case: SubCase, group: PassengerGroup, reason: str) -> None:
    expected, previous_group_id = sub_case.version, sub_case.group_id
    updated = SubCase.objects.filter(pk=sub_case.pk, version=expected).update(
        group=group, version=F("version") + 1, updated_at=Now()
    )
    if not updated:
        current = SubCase.objects.filter(pk=sub_case.pk).values_list("version", flat=True).first()
        raise _version_conflict(sub_case_urn=sub_case.urn, current_version=current, expected_version=expected)
    sub_case.version, sub_case.group = expected + 1, group
    audit.record(
        principal=principal,
        action="subcase.regrouped",
        entity_urn=sub_case.urn,
        case_urn=case.urn,
        reason=reason,
        before={"version": expected, "groupUrn": format_urn("group", previous_group_id) if previous_group_id else None},
        after={"status": sub_case.status, "version": sub_case.version, "groupUrn": group.urn},
    )
    events.publish_subcase_state_changed(
        sub_case_urn=sub_case.urn,
        case_urn=case.urn,
        airline=case.airline,
        status=sub_case.status,
        version=sub_case.version,
    )
