"""Sub-case transitions: an operator's move along the state machine, and the saga's failure path to
manual review."""

from django.db import transaction
from django_fsm import can_proceed

from cases import saga
from cases.models import SUBCASE_TRANSITIONS, SubCase
from cases.services._common import _case_status_refresh, _lock_case, _transition_locked
from nexa.platform.auth import Principal
from nexa.platform.problems import not_found_problem, validation_problem

# --- sub-cases -----------------------------------------------------------------------------------------


def subcase_transition(
    *,
    principal: Principal,
    sub_case: SubCase,
    transition: str,
    expected_version: int,
    reason: str = "",
    fencing_token: int | None = None,
) -> SubCase:
    """Move a sub-case along its state machine if it is still at ``expected_version``.

    409 ``illegal-transition`` (with ``status`` and ``allowedTransitions``) when the FSM forbids it,
    409 ``version-conflict`` (with the current ``version``) when someone moved it first. Then the
    case status is re-derived (its version bumps when it changes), and ``subcase:state-changed``
    and ``case:updated`` are published.
    """
    if transition not in SUBCASE_TRANSITIONS:
        raise validation_problem(
            [{"field": "transition", "message": f"must be one of {', '.join(SUBCASE_TRANSITIONS)}"}]
        )
    with transaction.atomic():
        case = _lock_case(principal=principal, case_id=sub_case.case_id)
        try:
            current = SubCase.objects.get(pk=sub_case.pk, airline=principal.airline)
        except SubCase.DoesNotExist:
            raise not_found_problem() from None
        current = _transition_locked(
            principal=principal,
            case=case,
            sub_case=current,
            transition=transition,
            expected_version=expected_version,
            reason=reason,
            fencing_token=fencing_token,
        )
        current.case = _case_status_refresh(principal=principal, case=case, reason=reason)
        current.refresh_from_db(fields=["updated_at"])
    return current


def subcase_send_to_review_by_system(*, airline: str, sub_case_id, reason: str) -> SubCase | None:
    """The saga's failure path: move the sub-case to MANUAL_REVIEW as the system principal, through
    the normal transition (OCC, audit, events, case status). Entity locks do not stop it: an
    operator's lock must not hide a failed payment (docs/decisions.md). A sub-case that cannot go to
    review (already there, closed, cancelled) is left as it is; returns ``None`` then."""

    principal = saga.system_principal(airline)
    with transaction.atomic():
        current = SubCase.objects.filter(pk=sub_case_id, airline=airline).first()
        if current is None:
            return None
        case = _lock_case(principal=principal, case_id=current.case_id)
        current = SubCase.objects.get(pk=sub_case_id)
        if not can_proceed(current.send_to_review):
            return None
        current = _transition_locked(
            principal=principal,
            case=case,
            sub_case=current,
            transition="send_to_review",
            expected_version=current.version,
            reason=reason,
            guarded=False,
        )
        _case_status_refresh(principal=principal, case=case, reason=reason)
    return current
