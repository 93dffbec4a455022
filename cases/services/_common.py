"""Shared steps of the cases commands: the problems they raise and the locked-case helpers every
use case builds on (lock the case row, apply one FSM transition with its OCC check, re-derive the case
status). Private to :mod:`cases.services`."""

from typing import Any

from django.db.models import Count, F
from django.db.models.functions import Now
from django_fsm import can_proceed

from audit import services as audit
from cases import events
from cases.models import Case, PassengerGroup, SubCase, SubCaseStatus, derive_case_status
from cases.services.guards import _guard_subcase_write
from nexa.platform.auth import Principal
from nexa.platform.problems import Problem, conflict_problem, not_found_problem
from nexa.platform.urns import InvalidUrn, format_urn, parse_urn

# --- problems ----------------------------------------------------------------------------------------


def _version_conflict(*, sub_case_urn: str, current_version: int | None, expected_version: int) -> Problem:
    return conflict_problem(
        slug="version-conflict",
        title="The sub-case changed since you read it",
        detail=(
            f"{sub_case_urn} is at version {current_version}, not {expected_version}; "
            "reload it and retry with the current version."
        ),
        version=current_version,
    )


def _illegal_transition(*, sub_case: SubCase, transition: str) -> Problem:
    allowed = sorted(t.name for t in sub_case.get_available_status_transitions())
    return conflict_problem(
        slug="illegal-transition",
        title="Transition not allowed from the current status",
        detail=(
            f"{sub_case.urn} is {sub_case.status}; {transition!r} is not possible from there. "
            f"Allowed: {', '.join(allowed) or 'none (final status)'}."
        ),
        currentStatus=sub_case.status,
        allowedTransitions=allowed,
        version=sub_case.version,
    )


# --- shared steps --------------------------------------------------------------------------------------


def _lock_case(*, principal: Principal, case_id) -> Case:
    """The case row, locked for this transaction; 404 unless it belongs to the principal's airline."""
    try:
        return Case.objects.select_for_update().get(pk=case_id, airline=principal.airline)
    except Case.DoesNotExist:
        raise not_found_problem() from None


def _subcase_counts(case_id) -> dict[str, int]:
    counts = {status.value: 0 for status in SubCaseStatus}
    for row in SubCase.objects.filter(case_id=case_id).order_by().values("status").annotate(n=Count("id")):
        counts[row["status"]] = row["n"]
    return counts


def _case_status_refresh(*, principal: Principal, case: Case, reason: str = "") -> Case:
    """Re-derive the locked case's status from its sub-cases; bump its version when the status
    changes (audited), and announce ``case:updated`` with the current counts either way."""
    counts = _subcase_counts(case.pk)
    status = derive_case_status(counts)
    if status != case.status:
        previous_status, previous_version = case.status, case.version
        Case.objects.filter(pk=case.pk).update(status=status, version=F("version") + 1, updated_at=Now())
        case.status, case.version = status, case.version + 1
        audit.record(
            principal=principal,
            action="case.status_changed",
            entity_urn=case.urn,
            case_urn=case.urn,
            reason=reason,
            before={"status": previous_status, "version": previous_version},
            after={"status": status, "version": case.version},
        )
    events.publish_case_updated(
        case_urn=case.urn, airline=case.airline, status=case.status, version=case.version, counts=counts
    )
    return case


def _transition_locked(
    *,
    principal: Principal,
    case: Case,
    sub_case: SubCase,
    transition: str,
    expected_version: int,
    reason: str = "",
    fencing_token: int | None = None,
    group: PassengerGroup | None = None,
    guarded: bool = True,
) -> SubCase:
    """Apply one FSM transition with an OCC version check; the caller holds the case row lock and
    re-derives the case status afterwards. ``group`` (for ``mark_grouped``) sets the membership.
    ``guarded=False`` skips the write guards (entity locks): only the saga's failure-to-review path
    passes it (docs/decisions.md)."""
    if sub_case.version != expected_version:
        raise _version_conflict(
            sub_case_urn=sub_case.urn, current_version=sub_case.version, expected_version=expected_version
        )
    if not can_proceed(getattr(sub_case, transition)):
        raise _illegal_transition(sub_case=sub_case, transition=transition)
    if guarded:
        _guard_subcase_write(principal=principal, sub_case=sub_case, fencing_token=fencing_token)

    before = {"status": sub_case.status, "version": sub_case.version}
    getattr(sub_case, transition)()  # the FSM method: sets the new status in memory
    changes: dict[str, Any] = {"status": sub_case.status}
    if group is not None:
        before["groupUrn"] = format_urn("group", sub_case.group_id) if sub_case.group_id else None
        changes["group"] = group
    updated = SubCase.objects.filter(pk=sub_case.pk, version=expected_version).update(
        **changes, version=F("version") + 1, updated_at=Now()
    )
    if not updated:
        current = SubCase.objects.filter(pk=sub_case.pk).values_list("version", flat=True).first()
        raise _version_conflict(sub_case_urn=sub_case.urn, current_version=current, expected_version=expected_version)
    sub_case.version = expected_version + 1
    after: dict[str, Any] = {"status": sub_case.status, "version": sub_case.version, "transition": transition}
    if group is not None:
        sub_case.group = group
        after["groupUrn"] = group.urn
    _transition_recorded(
        principal=principal, case=case, sub_case=sub_case, transition=transition, reason=reason, before=before,
        after=after,
    )  # fmt: skip
    return sub_case


def _transition_recorded(
    *, principal: Principal, case: Case, sub_case: SubCase, transition: str, reason: str, before: dict, after: dict
) -> None:
    """What every applied transition leaves behind: its audit row and ``subcase:state-changed``."""
    audit.record(
        principal=principal,
        action=f"subcase.{transition}",
        entity_urn=sub_case.urn,
        case_urn=case.urn,
        reason=reason,
        before=before,
        after=after,
    )
    events.publish_subcase_state_changed(
        sub_case_urn=sub_case.urn,
        case_urn=case.urn,
        airline=case.airline,
        status=sub_case.status,
        version=sub_case.version,
    )


def _subcases_in_review(*, principal: Principal, case: Case, sub_case_urns: list[str]) -> list[SubCase]:
    """The named passengers of the case still in MANUAL_REVIEW, in manifest order, with their group (what a
    review action acts on; malformed URNs and passengers that moved on are left out)."""
    ids = []
    for urn in sub_case_urns:
        try:
            ids.append(parse_urn(urn, "subcase").id)
        except InvalidUrn:
            continue
    return list(
        SubCase.objects.filter(
            case_id=case.pk, airline=principal.airline, pk__in=ids, status=SubCaseStatus.MANUAL_REVIEW
        )
        .select_related("group")
        .order_by("created_at", "id")
    )
