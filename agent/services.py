"""Commands of the agent domain: triage a review item, and the operator-in-the-loop on its proposals.

* :func:`agent_triage` — classify the item's failure, gather options through the allow-listed tools,
  write the top 3 on the item (through ``review.services.review_item_recommendations_set``) and one
  :class:`~agent.models.AgentAction` proposal per recommendation; the run is recorded (:class:`AgentRun`).
* :func:`agent_triage_case` — the same for each open item of a case.
* :func:`agent_triage_on_created` — the ``review:created`` consumer's work: only when the airline enabled
  the agent (``TenantSettings.agent_enabled``), once per event.
* :func:`agent_action_approve`, :func:`agent_action_reject`, :func:`agent_action_execute` — an operator's
  decision. Approve quotes the ``planHash`` the operator saw; execute is the approver's, after approval,
  and calls the review service a human would call (rebook, relax, split, override).

The agent never books, pays, cancels or notifies by itself: every effect is an operator's execute.
Proposals expire lazily: past ``expiresAt`` an action reads EXPIRED (:func:`effective_state`) and a command
on it is a 409; a later triage of the item writes the EXPIRED state down.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

import structlog
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django_fsm import can_proceed

from agent import planners, ranking, tools
from agent.models import AgentAction, AgentActionKind, AgentActionState, AgentRun, AgentTrigger
from audit import services as audit
from cases import selectors as case_selectors
from nexa.platform.auth import Principal
from nexa.platform.models import TenantSettings
from nexa.platform.problems import Problem, conflict_problem
from nexa.platform.roles import Role
from nexa.platform.tenancy import get_for_principal
from nexa.platform.urns import InvalidUrn, format_urn, new_id, parse_urn
from review import selectors as review_selectors
from review import services as review_services
from review.models import ReviewItem, ReviewState

logger = structlog.get_logger(__name__)

SYSTEM_AGENT_ACTOR = "urn:nexa:system:agent"
REASON_MAX_LENGTH = 2000
RECOMMENDATION_ACTION = {"rebook": "rebook", "relax": "relaxPolicy", "split": "split", "override": "override"}
# The review service each action executes through, with the arguments it takes from the action's params.
EXECUTORS: dict[str, tuple[Any, tuple[str, ...]]] = {
    AgentActionKind.REBOOK: (review_services.review_item_rebook, ("hotel_urn",)),
    AgentActionKind.OVERRIDE: (review_services.review_item_override, ("hotel_urn", "provider_offer_id")),
    AgentActionKind.RELAX: (review_services.review_item_relax, ("fields",)),
    AgentActionKind.SPLIT: (review_services.review_item_split, ("into",)),
}
_PARAM_NAMES = {"hotel_urn": "hotelUrn", "provider_offer_id": "providerOfferId", "fields": "fields", "into": "into"}


def agent_principal(airline: str) -> Principal:
    return Principal(airline=airline, role=Role.ADMIN, operator_urn=SYSTEM_AGENT_ACTOR, subject="system:agent")


def proposal_ttl() -> dt.timedelta:
    return dt.timedelta(minutes=settings.NEXA_AGENT_PROPOSAL_TTL_MINUTES)


# --- the plan hash -----------------------------------------------------------------------------------------


def item_facts(item: ReviewItem) -> dict[str, Any]:
    """The facts of the item a plan rests on. Not its ``version``: a claim or an escalation bumps that
    without changing what the plan is about; a new attempt, another action taken on the item (a human's
    rebook), or its resolution does change these."""
    return {
        "reviewUrn": item.urn,
        "category": item.category,
        "resolved": item.state == ReviewState.RESOLVED,
        "attemptedHotels": item.attempted_hotels,
        "affectedSubCaseUrns": item.affected_subcase_urns,
        "affectedGroupUrns": item.affected_group_urns,
        "reservationUrns": item.reservation_urns,
        "failure": item.failure,
        "actions": len(item.actions or []),
    }


def plan_hash(*, action: str, params: dict[str, Any], item: ReviewItem) -> str:
    canonical = json.dumps(
        {"action": action, "params": params, "item": item_facts(item)},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def effective_state(action: AgentAction, now: dt.datetime | None = None) -> str:
    """The state as read: a PROPOSED or APPROVED action past ``expires_at`` is EXPIRED."""
    now = now or timezone.now()
    if action.state in (AgentActionState.PROPOSED, AgentActionState.APPROVED) and action.expires_at <= now:
        return AgentActionState.EXPIRED
    return action.state


# --- triage --------------------------------------------------------------------------------------------------


@dataclass
class Triage:
    item: ReviewItem
    run: AgentRun
    classification: dict[str, Any]
    recommendations: list[dict[str, Any]]
    proposals: list[AgentAction]


def _money(option: ranking.Option) -> dict[str, str] | None:
    if option.cost is None:
        return None
    return {"amount": str(option.cost), "currency": option.currency or ""}


def _recommendation(option: ranking.Option, *, rank: int, urn: str, expires_at: dt.datetime, digest: str):
    entry: dict[str, Any] = {"action": RECOMMENDATION_ACTION[option.action]}
    if option.hotel_urn:
        entry["hotelUrn"] = option.hotel_urn
        entry["hotelName"] = option.hotel_name
    if option.action == AgentActionKind.RELAX:
        fields = option.params["fields"]
        entry["fields"] = sorted(fields)
        entry["value"] = next(iter(fields.values())) if len(fields) == 1 else fields
    if option.action == AgentActionKind.OVERRIDE:
        entry["providerOfferId"] = option.params["providerOfferId"]
    if option.action == AgentActionKind.SPLIT:
        entry["into"] = option.params["into"]
    entry.update(
        {
            "reason": "; ".join(option.reasons),
            "source": "agent",
            "rank": rank,
            "compliance": ranking.COMPLIANCE_LABEL[option.compliance],
            "fresh": option.fresh,
            "distanceKm": option.distance_km,
            "estimatedCost": _money(option),
            "agentActionUrn": urn,
            "planHash": digest,
            "expiresAt": expires_at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        }
    )
    return entry


def _rationale(option: ranking.Option) -> str:
    return "; ".join(option.reasons)[:REASON_MAX_LENGTH]


def _expire_stale(item: ReviewItem, now: dt.datetime) -> None:
    """A new triage replaces the item's open proposals: those still PROPOSED expire, and any past their
    time are written down EXPIRED (APPROVED ones stay: their approver may still execute them, and the plan
    hash check refuses them if the item has changed)."""
    AgentAction.objects.filter(item=item, state=AgentActionState.PROPOSED).update(
        state=AgentActionState.EXPIRED, version=F("version") + 1, updated_at=now
    )
    AgentAction.objects.filter(item=item, state=AgentActionState.APPROVED, expires_at__lte=now).update(
        state=AgentActionState.EXPIRED, version=F("version") + 1, updated_at=now
    )


def agent_triage(
    *,
    principal: Principal,
    review_urn: str,
    trigger: str = AgentTrigger.OPERATOR,
    source_event_urn: str = "",
    planner: planners.Planner | None = None,
) -> Triage:
    """Triage one unresolved item: classify, propose, rank, write (recommendations + proposals + run)."""
    item = review_selectors.review_item_get(principal=principal, review_urn=review_urn)
    if item.state == ReviewState.RESOLVED:
        raise conflict_problem(
            slug="review-resolved",
            title="The item is resolved",
            detail=f"{item.urn} is RESOLVED; there is nothing left to triage.",
            currentState=item.state,
        )
    planner = planner or planners.planner()
    situation = tools.situation_of(principal=principal, item=item)
    toolbox = tools.ToolBox(principal=principal, situation=situation)
    # The planner runs outside the write transaction: the search takes up to its timeout, and must not
    # hold the item's row lock meanwhile.
    plan = planner.plan(situation, toolbox)
    now = timezone.now()
    expires_at = now + proposal_ttl()
    ids = [new_id() for _ in plan.options]
    with transaction.atomic():
        run = AgentRun(
            airline=item.airline,
            item=item,
            item_version=item.version,
            trigger=trigger,
            source_event_urn=source_event_urn,
            actor=principal.operator_urn,
            planner=plan.planner[:40],
            cause=plan.classification["cause"],
            confidence=plan.classification["confidence"],
            tool_calls=toolbox.calls,
            refusals=toolbox.refusals,
            transcript=plan.transcript,
            error=plan.error,
        )
        run.save(force_insert=True)  # the unique event URN: a concurrent delivery of the same event loses here
        # The hash is over the item's facts, which writing the recommendations does not change.
        digests = [plan_hash(action=o.action, params=o.params, item=item) for o in plan.options]
        recommendations = [
            _recommendation(option, rank=rank, urn=format_urn("agent-action", ident), expires_at=expires_at, digest=d)
            for rank, (option, ident, d) in enumerate(zip(plan.options, ids, digests, strict=True), start=1)
        ]
        item = review_services.review_item_recommendations_set(
            principal=principal, review_urn=item.urn, recommendations=recommendations
        )
        _expire_stale(item, now)
        proposals = [
            AgentAction(
                id=ident,
                airline=item.airline,
                item=item,
                run=run,
                rank=rank,
                action=option.action,
                params=option.params,
                rationale=_rationale(option),
                estimated_cost=_money(option),
                plan_hash=digest,
                item_version=item.version,
                expires_at=expires_at,
                created_at=now,
                updated_at=now,
            )
            for rank, (option, ident, digest) in enumerate(zip(plan.options, ids, digests, strict=True), start=1)
        ]
        AgentAction.objects.bulk_create(proposals)
        run.recommendations = recommendations
        run.save(update_fields=["recommendations"])
        audit.record(
            principal=principal,
            action="agent.triaged",
            entity_urn=item.urn,
            case_urn=item.case.urn,
            after={
                "trigger": trigger,
                "planner": plan.planner,
                "classification": plan.classification,
                "toolCalls": [call["tool"] for call in toolbox.calls],
                "refusedTools": [refusal["tool"] for refusal in toolbox.refusals],
                "proposals": [p.urn for p in proposals],
                "error": plan.error or None,
            },
        )
        if plan.transcript:
            audit.record(
                principal=principal,
                action="agent.model_exchanged",
                entity_urn=item.urn,
                case_urn=item.case.urn,
                after={"planner": plan.planner, "transcript": plan.transcript, "error": plan.error or None},
            )
    return Triage(item, run, plan.classification, recommendations, proposals)


def agent_triage_case(*, principal: Principal, case_urn: str, planner: planners.Planner | None = None) -> list[Triage]:
    """Each unresolved item of the case, the most urgent (soonest SLA due) first. Another airline's case
    is a 404, as a case with no open item answers nothing."""
    case_selectors.case_get(principal=principal, case_urn=case_urn)
    items = review_selectors.review_items_list(principal=principal, case_urn=case_urn, unresolved_only=True)
    return [
        agent_triage(principal=principal, review_urn=item.urn, planner=planner)
        for item in items.order_by("sla_due_at", "id")
    ]


def agent_triage_on_created(*, event_urn: str, airline: str, review_urn: str) -> Triage | None:
    """The ``review:created`` consumer: triage as the system when the airline enabled the agent. Once per
    item (at-least-once delivery: a redelivery, or an item already triaged automatically, is a no-op)."""
    if not TenantSettings.objects.filter(airline=airline, agent_enabled=True).exists():
        return None
    if AgentRun.objects.filter(source_event_urn=event_urn).exists():
        return None
    try:
        item_id = parse_urn(review_urn, "review").id
    except InvalidUrn:
        return None
    if AgentRun.objects.filter(item_id=item_id, trigger=AgentTrigger.ITEM_CREATED).exists():
        return None
    try:
        return agent_triage(
            principal=agent_principal(airline),
            review_urn=review_urn,
            trigger=AgentTrigger.ITEM_CREATED,
            source_event_urn=event_urn,
        )
    except IntegrityError:
        return None  # a concurrent delivery of the same event triaged it
    except Problem as problem:
        if problem.status_code in (404, 409):  # gone, or resolved before the agent got to it
            return None
        raise


# --- the operator in the loop ---------------------------------------------------------------------------------


def _lock_action(*, principal: Principal, agent_action_urn: str) -> AgentAction:
    urn = parse_urn(agent_action_urn, "agent-action")
    return get_for_principal(
        AgentAction.objects.select_for_update(of=("self",)).select_related("item", "item__case"), principal, id=urn.id
    )


def _snapshot(action: AgentAction) -> dict[str, Any]:
    return {"state": action.state, "version": action.version, "planHash": action.plan_hash}


def _not_in_state(action: AgentAction, verb: str, state: str) -> Problem:
    allowed = {
        AgentActionState.PROPOSED: ["approve", "reject"],
        AgentActionState.APPROVED: ["execute"],
    }.get(state, [])
    slug = "agent-action-expired" if state == AgentActionState.EXPIRED else "illegal-transition"
    return conflict_problem(
        slug=slug,
        title="Expired" if state == AgentActionState.EXPIRED else "Not possible in the action's current state",
        detail=f"{action.urn} is {state}; {verb!r} is not possible from there.",
        currentState=state,
        allowedTransitions=allowed,
        expiresAt=action.expires_at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
    )


def _check_open(action: AgentAction, verb: str, now: dt.datetime) -> None:
    state = effective_state(action, now)
    method = getattr(action, verb)
    if state != action.state or not can_proceed(method):
        raise _not_in_state(action, verb, state)


def _plan_changed(action: AgentAction) -> Problem:
    return conflict_problem(
        slug="plan-changed",
        title="The plan no longer matches the item",
        detail=f"{action.item.urn} changed since {action.urn} was proposed; triage the item again.",
        planHash=action.plan_hash,
    )


def _check_plan(action: AgentAction) -> None:
    item = ReviewItem.objects.select_related("case").get(pk=action.item_id)
    if plan_hash(action=action.action, params=action.params, item=item) != action.plan_hash:
        raise _plan_changed(action)


def _write(action: AgentAction, changes: dict[str, Any]) -> AgentAction:
    expected = action.version
    changes = {**changes, "updated_at": timezone.now()}
    updated = AgentAction.objects.filter(pk=action.pk, version=expected).update(**changes, version=F("version") + 1)
    if not updated:  # the row lock makes this a bug, never a race lost
        raise conflict_problem(slug="version-conflict", title="The action changed", detail=action.urn, version=None)
    for name, value in changes.items():
        setattr(action, name, value)
    action.version = expected + 1
    return action


def _recorded(principal: Principal, action: AgentAction, verb: str, before: dict, reason: str = "", **after) -> None:
    audit.record(
        principal=principal,
        action=f"agent.action_{verb}",
        entity_urn=action.urn,
        case_urn=action.item.case.urn,
        reason=reason,
        before=before,
        after={**_snapshot(action), "reviewUrn": action.item.urn, "action": action.action, **after},
    )


def agent_action_approve(
    *, principal: Principal, agent_action_urn: str, plan_hash_seen: str, reason: str = ""
) -> AgentAction:
    """PROPOSED → APPROVED by the operator, who quotes the plan hash they saw: a different hash, or a plan
    that no longer matches the item (it changed since), is a 409 ``plan-changed``; an expired proposal is a
    409 ``agent-action-expired``."""
    with transaction.atomic():
        now = timezone.now()
        action = _lock_action(principal=principal, agent_action_urn=agent_action_urn)
        _check_open(action, "approve", now)
        if plan_hash_seen != action.plan_hash:
            raise conflict_problem(
                slug="plan-changed",
                title="The plan hash does not match",
                detail=f"{action.urn}'s plan hash is not the one quoted; read the proposal again.",
                planHash=action.plan_hash,
            )
        _check_plan(action)
        before = _snapshot(action)
        action.approve()
        action = _write(
            action,
            {
                "state": action.state,
                "approved_by": principal.operator_urn,
                "approved_at": now,
                "decision_reason": reason or "",
            },
        )
        _recorded(principal, action, "approved", before, reason)
    return action


def agent_action_reject(*, principal: Principal, agent_action_urn: str, reason: str) -> AgentAction:
    """PROPOSED → REJECTED, with the operator's reason (audited)."""
    with transaction.atomic():
        now = timezone.now()
        action = _lock_action(principal=principal, agent_action_urn=agent_action_urn)
        _check_open(action, "reject", now)
        before = _snapshot(action)
        action.reject()
        action = _write(
            action, {"state": action.state, "rejected_by": principal.operator_urn, "decision_reason": reason}
        )
        _recorded(principal, action, "rejected", before, reason)
    return action


def _review_call(action: AgentAction) -> tuple[Any, dict[str, Any]]:
    service, arguments = EXECUTORS[action.action]
    params = action.params or {}
    return service, {argument: params[_PARAM_NAMES[argument]] for argument in arguments}


def _problem_json(problem: Problem) -> dict[str, Any]:
    return {
        "status": problem.status_code,
        "type": problem.slug,
        "title": problem.title,
        "detail": str(problem.detail),
        **{k: v for k, v in (getattr(problem, "extensions", None) or {}).items() if k != "errors"},
    }


def agent_action_execute(*, principal: Principal, agent_action_urn: str) -> AgentAction:
    """APPROVED → EXECUTED | FAILED, by the operator who approved it (anyone else: 403), through the review
    service a human would call, as that operator. The operator holds the item for it: when they have not
    claimed it, it is claimed for them first (someone else's live claim: that 409, nothing changes).

    The review service refusing (a 4xx problem: the hotel is full now, the split is not a partition …) is
    the action FAILED with the problem as its ``result`` (answered 200: the decision is recorded); an outage
    or bug (5xx, any other exception) propagates and leaves the action APPROVED, to be retried."""
    with transaction.atomic():
        now = timezone.now()
        action = _lock_action(principal=principal, agent_action_urn=agent_action_urn)
        _check_open(action, "execute", now)
        if action.approved_by != principal.operator_urn:
            raise Problem(
                status=403,
                slug="not-the-approver",
                title="Only the approving operator executes",
                detail=f"{action.urn} was approved by {action.approved_by}; only they may execute it.",
                extensions={"approvedBy": action.approved_by},
            )
        _check_plan(action)
        service, arguments = _review_call(action)
        item = action.item
        if item.assigned_to != principal.operator_urn:
            item = review_services.review_item_claim(principal=principal, review_urn=item.urn)
        before = _snapshot(action)
        reason = f"agent proposal {action.urn} (rank {action.rank}): {action.rationale}"[:REASON_MAX_LENGTH]
        try:
            with transaction.atomic():
                item = service(
                    principal=principal, review_urn=item.urn, reason=reason, agent_action_urn=action.urn, **arguments
                )
        except Problem as problem:
            if problem.status_code >= 500:
                raise
            action.fail()
            result = {"problem": _problem_json(problem)}
            verb = "failed"
        else:
            action.execute()
            result = {"reviewUrn": item.urn, "state": item.state, "version": item.version,
                      "resolution": item.resolution or None}  # fmt: skip
            verb = "executed"
        action = _write(
            action, {"state": action.state, "executed_by": principal.operator_urn, "executed_at": now, "result": result}
        )
        _recorded(principal, action, verb, before, reason, result=result)
    return action
