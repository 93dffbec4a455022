"""``relax``: a relaxation of the resolved policy for the item's case only, then the item's passengers are
allocated again under it (spec 001 § Operator workflow, step 3; docs/review.md § Relax)."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from audit import services as audit
from cases import services as case_services
from cases.models import SubCase
from nexa.platform.auth import Principal
from nexa.platform.problems import conflict_problem, validation_problem
from nexa.platform.urns import InvalidUrn, parse_urn
from review import events, relaxation
from review.models import PolicyRelaxation, ReviewCategory, ReviewItem
from review.selectors import relaxation_preview
from review.services._actions import _action_entry, _actor_holds, _record_action
from review.services._common import REASON_MAX_LENGTH, _lock_item, _snapshot

RELAX = "relax"
# A relaxation cannot place these: no policy to relax, a group the engine refuses whatever the rules, missing
# manifest data. Their actions are split (MIXED_TIER_GROUP), a policy or a manifest fix, then resolve.
NOT_RELAXABLE_CATEGORIES = (
    ReviewCategory.POLICY_VIOLATION,
    ReviewCategory.MIXED_TIER_GROUP,
    ReviewCategory.DATA_INCOMPLETE,
)
OUTCOME_ALLOCATED, OUTCOME_PARTIAL, OUTCOME_UNPLACED = "ALLOCATED", "PARTIALLY_ALLOCATED", "STILL_UNPLACEABLE"


def _item_tiers(item: ReviewItem) -> list[str]:
    ids = []
    for urn in item.affected_subcase_urns:
        try:
            ids.append(parse_urn(urn, "subcase").id)
        except InvalidUrn:
            continue
    return sorted(set(SubCase.objects.filter(case_id=item.case_id, pk__in=ids).values_list("tier", flat=True)))


def _validated(*, principal: Principal, item: ReviewItem, fields: dict[str, Any]) -> tuple[dict[str, Any], list]:
    """The relaxed rules and the preview per tier, or a 422: unknown or non-relaxable field, bad value, or a
    value that relaxes the effective rule of none of the item's tiers (a tightening, an equal value, a rule the
    policy does not set, another currency, no policy)."""
    changes = relaxation_preview(
        principal=principal, case_urn=item.case.urn, fields=fields, tiers=_item_tiers(item) or None
    )
    errors = []
    for rule in dict.fromkeys(change.rule for change in changes):
        of_rule = [change for change in changes if change.rule == rule]
        if not any(change.relaxes for change in of_rule):
            detail = "; ".join(
                f"{change.tier or 'any tier'}: {change.note} (now {change.current!r})" for change in of_rule
            )
            errors.append({"field": f"fields.{rule}", "message": f"does not relax the policy: {detail}"})
    if errors:
        raise validation_problem(errors, status=422)
    rules = {change.rule: change.proposed for change in changes}
    return rules, changes


def review_item_relax(
    *,
    principal: Principal,
    review_urn: str,
    fields: dict[str, Any],
    reason: str,
    agent_action_urn: str | None = None,
) -> ReviewItem:
    """Relax the policy for the item's case only and allocate the item's passengers in MANUAL_REVIEW again.

    One transaction: the item is locked; it must be unresolved and not held by anyone else (409; an item
    nobody holds is claimed for the actor); ``fields`` must relax (422, see :func:`_validated`); the category
    must be one a relaxation can help (409 ``relax-not-applicable``). Each rule becomes a
    :class:`~review.models.PolicyRelaxation` (policy resolution shows it for this case only); then
    :func:`cases.services.subcases_reallocate` allocates the passengers again — the placed ones become
    ALLOCATED in a new allocation (book it with book-rooms); the rest stay in MANUAL_REVIEW, without a new
    item. The item gets an ``actions`` entry (the new allocation's URN and the outcome in ``result``), stays
    unresolved (resolve RELAXED after), is audited ``review.relaxed`` and publishes ``review:relaxed``."""
    if not isinstance(reason, str) or not reason.strip():
        raise validation_problem([{"field": "reason", "message": "must be a non-blank string"}])
    normalised, errors = relaxation.normalise_fields(fields)
    if errors:
        raise validation_problem(errors, status=422)
    with transaction.atomic():
        now = timezone.now()
        item = _lock_item(principal=principal, review_urn=review_urn)
        before = _snapshot(item)
        item = _actor_holds(item, principal, now, action=RELAX)
        if item.category in NOT_RELAXABLE_CATEGORIES:
            raise conflict_problem(
                slug="relax-not-applicable",
                title="A relaxation cannot solve this item",
                detail=f"{item.urn} is {item.category}: relaxing the policy places nobody "
                "(split a mixed-tier group, activate a policy or fix the manifest, then resolve).",
                category=item.category,
            )
        rules, changes = _validated(principal=principal, item=item, fields=normalised)
        PolicyRelaxation.objects.bulk_create(
            PolicyRelaxation(
                airline=item.airline,
                case=item.case,
                item=item,
                rule=rule,
                value=value,
                reason=reason[:REASON_MAX_LENGTH],
                created_by=principal.operator_urn,
                agent_action_urn=agent_action_urn or "",
            )
            for rule, value in rules.items()
        )
        outcome = case_services.subcases_reallocate(
            principal=principal,
            case=item.case,
            sub_case_urns=item.affected_subcase_urns,
            demand_urn=item.demand_urn or None,
            reason=f"{item.urn} relaxed {', '.join(rules)}: {reason}"[:REASON_MAX_LENGTH],
        )
        if outcome.allocation is None:
            result_outcome = OUTCOME_UNPLACED
        elif outcome.unallocated:
            result_outcome = OUTCOME_PARTIAL
        else:
            result_outcome = OUTCOME_ALLOCATED
        result = {
            "outcome": result_outcome,
            "allocationUrn": outcome.allocation.urn if outcome.allocation else None,
            "demandUrn": outcome.demand_urn,
            "allocatedSubCaseUrns": outcome.placed,
            "unallocated": outcome.unallocated,
            "ruleChanges": [change.as_dict() for change in changes],
        }
        entry = _action_entry(
            action=RELAX,
            params={"fields": rules},
            reason=reason,
            principal=principal,
            now=now,
            agent_action_urn=agent_action_urn,
            result=result,
        )
        item = _record_action(item, entry, agent_action_urn=agent_action_urn)
        audit.record(
            principal=principal,
            action="review.relaxed",
            entity_urn=item.urn,
            case_urn=item.case.urn,
            reason=reason,
            before=before,
            after={
                **_snapshot(item),
                "fields": rules,
                "outcome": result_outcome,
                "allocationUrn": result["allocationUrn"],
            },
        )
        events.publish_review_event(events.REVIEW_RELAXED, item)
    return item
