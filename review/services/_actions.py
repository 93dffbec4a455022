"""What the item's actions (relax, split, …) share: who may act, and the record an action leaves on the item."""

from __future__ import annotations

import datetime as dt
from typing import Any

from audit import services as audit
from nexa.platform.auth import Principal
from review import events
from review.models import ReviewItem, ReviewState
from review.services._common import (
    _apply,
    _claimed_by_other,
    _illegal_transition,
    _iso,
    _live_holder,
    _save,
    _snapshot,
    claim_lease,
)


def _may_act(item: ReviewItem, principal: Principal, now: dt.datetime, *, action: str) -> None:
    """The check alone (no write): 409 for a resolved item or for someone else's live claim. Actions that
    call a provider run it before the call, and :func:`_actor_holds` again under the row lock."""
    if item.state == ReviewState.RESOLVED:
        raise _illegal_transition(item, action)
    holder = _live_holder(item, now)
    if holder and holder != principal.operator_urn:
        raise _claimed_by_other(item)


def _actor_holds(item: ReviewItem, principal: Principal, now: dt.datetime, *, action: str) -> ReviewItem:
    """Before an action: the item must be unresolved (else 409 ``illegal-transition``); a live claim by someone
    else is a 409 ``review-claimed`` naming ``assignedTo``; an item nobody holds (OPEN, ESCALATED, or a lapsed
    claim of someone else) is claimed for the actor here, in the action's transaction (audited
    ``review.claimed``, ``review:claimed``). The claimer acting keeps the claim as it is."""
    _may_act(item, principal, now, action=action)
    if item.assigned_to == principal.operator_urn and item.state == ReviewState.CLAIMED:
        return item
    before = _snapshot(item)
    _apply(item, "claim")
    item = _save(
        item, {"state": item.state, "assigned_to": principal.operator_urn, "claimed_until": now + claim_lease()}
    )
    audit.record(
        principal=principal,
        action="review.claimed",
        entity_urn=item.urn,
        case_urn=item.case.urn,
        reason=f"claimed to {action}",
        before=before,
        after=_snapshot(item),
    )
    events.publish_review_event(events.REVIEW_CLAIMED, item)
    return item


def _action_entry(
    *,
    action: str,
    params: dict[str, Any],
    reason: str,
    principal: Principal,
    now: dt.datetime,
    agent_action_urn: str | None,
    result: dict[str, Any],
) -> dict[str, Any]:
    """One entry of ``ReviewItem.actions``: ``{action, params, reason, by, at, agentActionUrn, result}``."""
    return {
        "action": action,
        "params": params,
        "reason": reason,
        "by": principal.operator_urn,
        "at": _iso(now),
        "agentActionUrn": agent_action_urn or None,
        "result": result,
    }


def _record_action(
    item: ReviewItem, entry: dict[str, Any], *, agent_action_urn: str | None, extra: dict[str, Any] | None = None
) -> ReviewItem:
    """Append ``entry`` to the item's actions (OCC save, version bump); an agent action that acted on the item
    is kept as the accepted one (reports: share resolved by agent recommendation)."""
    changes: dict[str, Any] = {"actions": [*item.actions, entry], **(extra or {})}
    if agent_action_urn:
        changes["accepted_agent_action_urn"] = agent_action_urn
    return _save(item, changes)
