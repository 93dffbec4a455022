"""Reads of the review domain. Every query is scoped to the principal's airline: another airline's item
is not found (a 404 problem), and a filter naming another airline's case simply matches nothing."""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet

from cases import selectors as case_selectors
from cases.models import SubCase, SubCaseStatus
from nexa.platform.auth import Principal
from nexa.platform.problems import Problem, validation_problem
from nexa.platform.tenancy import for_principal, get_for_principal
from nexa.platform.urns import InvalidUrn, format_urn, parse_urn
from policies.models import Policy
from policies.selectors import Relaxation, policy_resolve
from review import relaxation
from review.models import UNRESOLVED_STATES, PolicyRelaxation, ReviewItem, ReviewPage


def review_item_get(*, principal: Principal, review_urn: str) -> ReviewItem:
    """The item, or a 404 problem (also for another airline's); a malformed URN is a 400."""
    urn = parse_urn(review_urn, "review")
    return get_for_principal(ReviewItem.objects.select_related("case"), principal, id=urn.id)


def review_items_list(
    *,
    principal: Principal,
    state: str | None = None,
    category: str | None = None,
    priority: str | None = None,
    case_urn: str | None = None,
    assigned_to: str | None = None,
    unresolved_only: bool = False,
) -> QuerySet[ReviewItem]:
    """The airline's items, filtered; the caller orders them (by ``sla_due_at``, ``id``).
    ``unresolved_only`` (the booking queue without a ``state`` filter) leaves RESOLVED items out."""
    items = for_principal(ReviewItem.objects.select_related("case"), principal)
    if state is not None:
        items = items.filter(state=state)
    elif unresolved_only:
        items = items.filter(state__in=UNRESOLVED_STATES)
    if category is not None:
        items = items.filter(category=category)
    if priority is not None:
        items = items.filter(priority=priority)
    if case_urn is not None:
        items = items.filter(case_id=parse_urn(case_urn, "case").id)
    if assigned_to is not None:
        items = items.filter(assigned_to=assigned_to)
    return items


def review_page_id_for(*, review_urn: str, version: int) -> str | None:
    """The page an escalation wrote (from its ``review:escalated`` event), or None (a page-less event)."""
    page_id = (
        ReviewPage.objects.filter(item_id=parse_urn(review_urn, "review").id, item_version=version)
        .values_list("id", flat=True)
        .first()
    )
    return str(page_id) if page_id else None


# --- policy relaxations (the relax action) --------------------------------------------------------------


def case_relaxations(*, principal: Principal, case_urn: str, policy: Policy) -> list[Relaxation]:
    """The relaxation source ``review/apps.py`` registers with policy resolution: for one case, each relaxed
    rule's loosest stored value that is looser than ``policy``'s own rule (a relaxation never tightens the
    policy of another tier of the case). Another airline's or an unknown case has none."""
    try:
        case_id = parse_urn(case_urn, "case").id
    except InvalidUrn:
        return []
    rows = PolicyRelaxation.objects.filter(airline=principal.airline, case_id=case_id).order_by("created_at", "id")
    best: dict[str, Relaxation] = {}
    for row in rows:
        if not relaxation.relaxes(row.rule, row.value, policy.rules.get(row.rule)):
            continue
        if row.rule in best and not relaxation.relaxes(row.rule, row.value, best[row.rule].value):
            continue
        best[row.rule] = Relaxation(
            rule=row.rule, value=row.value, reason=row.reason, source=format_urn("review", row.item_id)
        )
    return list(best.values())


@dataclass(frozen=True)
class RuleChange:
    """What relaxing ``rule`` to ``proposed`` would do to the policy resolving for ``tier`` in the case."""

    tier: str | None
    policy_urn: str | None  # None: no policy resolves for the tier (nothing to relax)
    rule: str
    current: Any  # the effective value now (the policy's, or an earlier relaxation's)
    proposed: Any
    relaxes: bool
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "tier": self.tier,
            "policyUrn": self.policy_urn,
            "rule": self.rule,
            "current": self.current,
            "proposed": self.proposed,
            "relaxes": self.relaxes,
            "note": self.note,
        }


def relaxation_preview(
    *, principal: Principal, case_urn: str, fields: dict[str, Any], tiers: Iterable[str | None] | None = None
) -> list[RuleChange]:
    """Read-only: which policy rules a relax of ``fields`` would change for the case, per tier (the exception
    agent prices a relaxation with it; the relax action validates with it). ``tiers`` defaults to the tiers
    of the case's passengers in MANUAL_REVIEW (the case without a tier when there are none). A field that is
    unknown, not relaxable or of a bad value is a 422 naming it; the case is the principal's airline's (404)."""
    case = case_selectors.case_get(principal=principal, case_urn=case_urn)
    proposed, errors = relaxation.normalise_fields(fields)
    if errors:
        raise validation_problem(errors, status=422)
    if tiers is None:
        in_review = SubCase.objects.filter(case=case, status=SubCaseStatus.MANUAL_REVIEW)
        tiers = sorted(set(in_review.values_list("tier", flat=True))) or [None]
    changes = []
    for tier in dict.fromkeys(tiers):
        try:
            resolved = policy_resolve(principal=principal, tier=tier, case_urn=case.urn)
        except Problem as problem:
            if problem.status_code != 404:
                raise
            for rule, value in proposed.items():
                changes.append(RuleChange(tier, None, rule, None, value, False, "no policy resolves for the tier"))
            continue
        for rule, value in proposed.items():
            current = resolved.effective_rules.get(rule)
            note = relaxation.comparable(rule, value, current) or ""
            loosens = relaxation.relaxes(rule, value, current)
            if not note and not loosens:
                note = "not looser than the current value"
            changes.append(RuleChange(tier, resolved.policy.urn, rule, current, value, loosens, note))
    return changes
