"""Passenger groups: (re)grouping a case's passengers, automatically or as given."""

from collections.abc import Sequence

from django.db import transaction

from audit import services as audit
from cases import grouping
from cases.models import GROUPABLE_SUBCASE_STATUSES, Case, PassengerGroup, SubCase, SubCaseStatus
from cases.services._common import _case_status_refresh, _lock_case, _transition_locked
from nexa.platform.auth import Principal
from nexa.platform.problems import conflict_problem, validation_problem
from nexa.platform.urns import InvalidUrn, format_urn, parse_urn

# --- passenger groups ---------------------------------------------------------------------------------


def _explicit_groups(groups: object, *, by_id: dict, case: Case) -> tuple[list[list[SubCase]], list[dict[str, str]]]:
    """Parse ``[[subcase_urn, …], …]`` against the case's sub-cases; (groups, errors)."""
    errors: list[dict[str, str]] = []
    if not isinstance(groups, list) or not groups:
        return [], [{"field": "groups", "message": "must be a non-empty list of lists of sub-case URNs"}]
    parsed: list[list[SubCase]] = []
    seen: dict = {}
    for index, members in enumerate(groups):
        where = f"groups[{index}]"
        if not isinstance(members, list) or not members:
            errors.append({"field": where, "message": "must be a non-empty list of sub-case URNs"})
            continue
        group: list[SubCase] = []
        for position, raw in enumerate(members):
            field_name = f"{where}[{position}]"
            try:
                urn = parse_urn(raw, "subcase")
            except InvalidUrn as error:
                errors.append({"field": field_name, "message": error.message})
                continue
            sub_case = by_id.get(urn.id)
            if sub_case is None:
                errors.append({"field": field_name, "message": f"{raw} is not a passenger of {case.urn}"})
            elif urn.id in seen:
                errors.append({"field": field_name, "message": f"{raw} is already in {seen[urn.id]}"})
            else:
                seen[urn.id] = where
                group.append(sub_case)
        parsed.append(group)
    return parsed, errors


def _traveller(sub_case: SubCase) -> grouping.Traveller:
    return grouping.Traveller(
        key=sub_case.pk, pnr=sub_case.pnr, tier=sub_case.tier, special_needs=frozenset(sub_case.special_needs)
    )


def passenger_groups_create(
    *, principal: Principal, case: Case, groups: Sequence[Sequence[str]] | None = None
) -> list[PassengerGroup]:
    """(Re)group the case's passengers; returns the groups created, in label order.

    ``groups=None`` groups automatically (one group per PNR, see :mod:`cases.grouping`). Explicit
    ``[[subcase_urn, …], …]`` groups are taken as given (each URN of this case, each passenger
    once, an unaccompanied minor only with their own PNR); every other passenger still PENDING or
    GROUPED is grouped automatically. Previous groups of the affected passengers are replaced.
    Only PENDING/GROUPED passengers may be (re)grouped: touching anyone further along — directly
    or by dissolving a group they belong to — is a 409. Each grouped sub-case goes through the
    ``mark_grouped`` transition (version bump, audit row, ``subcase:state-changed``).
    """
    with transaction.atomic():
        case = _lock_case(principal=principal, case_id=case.pk)
        sub_cases = list(
            SubCase.objects.filter(case_id=case.pk)
            .exclude(status=SubCaseStatus.CANCELLED)
            .order_by("created_at", "id")
            .only("id", "case_id", "airline", "group_id", "pnr", "tier", "special_needs", "status", "version")
        )
        by_id = {sub_case.pk: sub_case for sub_case in sub_cases}

        explicit: list[list[SubCase]] = []
        if groups is not None:
            explicit, errors = _explicit_groups(groups, by_id=by_id, case=case)
            for index, group in enumerate(explicit):
                minor = grouping.unaccompanied_minor_with_strangers([_traveller(s) for s in group])
                if minor is not None:
                    errors.append(
                        {
                            "field": f"groups[{index}]",
                            "message": f"{format_urn('subcase', minor.key)} is an unaccompanied minor and may "
                            "only be grouped with passengers of their own PNR",
                        }
                    )
            if errors:
                raise validation_problem(errors)

        named = [sub_case for group in explicit for sub_case in group]
        too_late = [s for s in named if s.status not in GROUPABLE_SUBCASE_STATUSES]
        named_ids = {s.pk for s in named}
        rest = [s for s in sub_cases if s.status in GROUPABLE_SUBCASE_STATUSES and s.pk not in named_ids]
        scope_ids = named_ids | {s.pk for s in rest}
        replaced_group_ids = {by_id[pk].group_id for pk in scope_ids if by_id[pk].group_id}
        # Dissolving a group also regroups its other members: they must still be groupable too.
        too_late += [s for s in sub_cases if s.group_id in replaced_group_ids and s.pk not in scope_ids]
        if too_late:
            listed = ", ".join(f"{s.urn} ({s.status})" for s in too_late[:10])
            raise conflict_problem(
                slug="regroup-not-allowed",
                title="Passengers past grouping cannot be regrouped",
                detail=f"Regrouping is allowed only while passengers are PENDING or GROUPED: {listed}.",
                subCaseUrns=[s.urn for s in too_late],
            )
        if not scope_ids:
            raise conflict_problem(
                slug="nothing-to-group",
                title="No passenger can be grouped",
                detail=f"{case.urn} has no passengers that are PENDING or GROUPED.",
            )

        partition = explicit + [
            [by_id[t.key] for t in group] for group in grouping.automatic_groups([_traveller(s) for s in rest])
        ]
        dissolved = PassengerGroup.objects.filter(pk__in=replaced_group_ids).order_by("created_at", "id")
        created = _groups_replace(principal=principal, case=case, dissolved=list(dissolved), partition=partition)
        for group, members in zip(created, partition, strict=True):
            for sub_case in members:
                _transition_locked(
                    principal=principal,
                    case=case,
                    sub_case=sub_case,
                    transition="mark_grouped",
                    expected_version=sub_case.version,
                    group=group,
                )
        _case_status_refresh(principal=principal, case=case)
    return created


def _groups_replace(
    *,
    principal: Principal,
    case: Case,
    dissolved: Sequence[PassengerGroup],
    partition: Sequence[Sequence[SubCase]],
    reason: str = "",
    created_facts: dict | None = None,
) -> list[PassengerGroup]:
    """Dissolve ``dissolved`` and create one group per part of ``partition``, labelled after the case's
    highest remaining label; each dissolution and creation audited (``group.dissolved``, ``group.created``
    with ``created_facts`` added). The members' sub-cases are the caller's to move into their new group."""
    for old in dissolved:
        audit.record(
            principal=principal,
            action="group.dissolved",
            entity_urn=old.urn,
            case_urn=case.urn,
            reason=reason,
            before={"label": old.label, "mixedTier": old.mixed_tier},
        )
    PassengerGroup.objects.filter(pk__in=[old.pk for old in dissolved]).delete()
    remaining_labels = PassengerGroup.objects.filter(case_id=case.pk).values_list("label", flat=True)
    next_number = max((grouping.label_number(label) for label in remaining_labels), default=0) + 1
    created = PassengerGroup.objects.bulk_create(
        PassengerGroup(
            case=case,
            airline=case.airline,
            label=grouping.group_label(next_number + index),
            mixed_tier=grouping.is_mixed_tier([_traveller(s) for s in members]),
        )
        for index, members in enumerate(partition)
    )
    for group, members in zip(created, partition, strict=True):
        audit.record(
            principal=principal,
            action="group.created",
            entity_urn=group.urn,
            case_urn=case.urn,
            reason=reason,
            after={
                "label": group.label,
                "mixedTier": group.mixed_tier,
                "subCaseUrns": [s.urn for s in members],
                **(created_facts or {}),
            },
        )
    return created
