"""The console's review item page and its actions (spec 001 § Operator workflow, docs/agent.md).

Each action is a form posted by htmx that calls the SAME service its API route calls, as the signed-in
operator's principal (:func:`nexa.console.views.console_view`): claim, rebook, relax, split, override and resolve
from ``review.services``; triage, approve, reject and execute from ``agent.services``. The bodies are checked by
the API routes' own serializers, so a bad field is refused exactly as the API refuses it. Every route is
OPS_SUPERVISOR+ like its API route; the page shows no action button to a lower role.

A success answers the item's re-rendered body (swapped into ``#review-item``); a refusal answers the problem
(re-targeted to ``#review-message`` with ``HX-Retarget``, so the item the operator was reading stays on screen):
a 409 says who holds the item (``assignedTo``), who approved a proposal (``approvedBy``) or what changed (the
plan, an expiry), and offers to reload.
"""

import json
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from agent import services as agent_services
from agent.api.serializers import ApproveRequestSerializer, RejectRequestSerializer
from agent.models import AgentAction, AgentActionState
from cases import selectors as case_selectors
from nexa.console.views import _operator_names, _render, console_view
from nexa.platform.auth import Principal
from nexa.platform.context import current_correlation_urn
from nexa.platform.problems import (
    Problem,
    _flatten_validation_errors,
    not_found_problem,
    validation_problem,
)
from nexa.platform.roles import Role
from nexa.platform.urns import InvalidUrn, format_urn, parse_urn
from review import selectors as review_selectors
from review import services as review_services
from review.api.actions_booking import ReviewOverrideSerializer, ReviewRebookSerializer
from review.api.actions_policy import ReviewRelaxSerializer, ReviewSplitSerializer
from review.api.serializers import ReviewResolveSerializer
from review.models import ReviewResolution, ReviewState
from review.relaxation import RELAXABLE_RULES

REASON_FIELD_MAX = 2000
# Which extension of a 409 names the person or thing in the way, and how the page says it.
_IN_THE_WAY = ("assignedTo", "approvedBy")


def _reason(request: HttpRequest) -> str:
    return request.POST.get("reason", "").strip()[:REASON_FIELD_MAX]


def _valid(serializer_class, data: dict[str, Any]) -> dict[str, Any]:
    """The API route's own checks, refused as the API refuses them: a 400 naming each field (the platform's
    flattening of a serializer's errors, which the API's exception handler applies under /v1 only)."""
    body = serializer_class(data=data)
    if not body.is_valid():
        raise validation_problem(_flatten_validation_errors(body.errors))
    return body.validated_data


def _review_problem(request: HttpRequest, problem: Problem) -> HttpResponse:
    """A refusal as the page shows it: the problem message (console/_problem.html) plus, for a 409, who holds
    the item or approved the proposal by name, the state the item or proposal is in now, and Reload."""
    extensions = problem.extensions or {}
    holder = next((extensions[key] for key in _IN_THE_WAY if extensions.get(key)), None)
    names = _operator_names(request.principal) if holder else {}
    context = {
        "problem": problem,
        "detail": problem.detail_text,
        "errors": extensions.get("errors") or [],
        "correlation": current_correlation_urn(),
        "reload": problem.status_code == 409,
        "holder": holder,
        "holder_name": names.get(holder, holder),
        "holder_role": "approver" if "approvedBy" in extensions and "assignedTo" not in extensions else "claimer",
        "current_state": extensions.get("currentState"),
        "claimed_until": parse_datetime(extensions.get("claimedUntil") or ""),
    }
    if not request.headers.get("HX-Request"):  # a form posted without JavaScript: the message as a page
        return _render(request, "console/review_problem_page.html", context, status=problem.status_code)
    response = _render(request, "console/review_problem.html", context, status=problem.status_code)
    response["HX-Retarget"] = "#review-message"
    response["HX-Reswap"] = "innerHTML show:top"
    return response


def review_action(view: Callable) -> Callable:
    """An OPS_SUPERVISOR+ POST on the item page whose refusals show as :func:`_review_problem`."""

    @wraps(view)
    def wrapped(request: HttpRequest, principal: Principal, *args, **kwargs) -> HttpResponse:
        try:
            return view(request, principal, *args, **kwargs)
        except InvalidUrn as error:  # a URL edited by hand: nothing of that name (the API says 400 urn)
            return _review_problem(request, not_found_problem(error.message))
        except Problem as problem:
            return _review_problem(request, problem)

    return require_POST(console_view(min_role=Role.OPS_SUPERVISOR)(wrapped))


# --- reading the item ---------------------------------------------------------------------------------------


def _passengers(principal: Principal, item) -> list:
    ids = []
    for urn in item.affected_subcase_urns or ():
        try:
            ids.append(parse_urn(urn, "subcase").id)
        except InvalidUrn:
            continue
    sub_cases = case_selectors.case_manifest(principal=principal, case=item.case).filter(id__in=ids)
    return list(sub_cases.select_related("group").order_by("group__label", "last_name", "first_name", "id"))


def _proposals(item, passengers: list) -> list[dict[str, Any]]:
    """The item's agent proposals still worth showing (the latest triage's, and any approved or decided since),
    best rank first, each with the state it reads now (a proposal past its time reads EXPIRED) and the
    recommendation the triage wrote on the item for it (distance, compliance, freshness)."""
    now = timezone.now()
    recommendations = {r.get("agentActionUrn"): r for r in item.recommendations or () if r.get("agentActionUrn")}
    names = {sub.urn: f"{sub.last_name}, {sub.first_name} ({sub.tier})" for sub in passengers}
    actions = AgentAction.objects.filter(item=item).order_by("-created_at", "rank")[:12]
    latest_run = None
    shown = []
    for action in actions:
        latest_run = latest_run or action.run_id
        state = agent_services.effective_state(action, now)
        if action.run_id != latest_run and state in (AgentActionState.EXPIRED, AgentActionState.REJECTED):
            continue
        split = [[names.get(urn, urn) for urn in group] for group in (action.params or {}).get("into") or ()]
        shown.append(
            {"action": action, "state": state, "recommendation": recommendations.get(action.urn, {}), "split": split}
        )
    return sorted(shown, key=lambda row: (row["action"].run_id != latest_run, row["action"].rank))


def _item_context(
    request: HttpRequest, principal: Principal, review_urn: str, note: str = "", answer: bool = False
) -> dict[str, Any]:
    item = review_selectors.review_item_get(principal=principal, review_urn=review_urn)
    passengers = _passengers(principal, item)
    now = timezone.now()
    holder = item.assigned_to if item.claimed_until and item.claimed_until > now else ""
    hotels = {h.get("hotelUrn") for h in item.attempted_hotels or () if h.get("hotelUrn")}
    hotels |= {r.get("hotelUrn") for r in item.recommendations or () if r.get("hotelUrn")}
    tiers = sorted({sub.tier for sub in passengers})  # the split form starts from one new group per tier
    return {
        "item": item,
        "now": now,
        "note": note,
        "answer": answer,  # an action's answer also replaces the message above the item (out of band)
        "resolved": item.state == ReviewState.RESOLVED,
        "holder": holder,
        "mine": item.assigned_to == principal.operator_urn and item.state == ReviewState.CLAIMED,
        "passengers": passengers,
        "split_rows": [(sub, tiers.index(sub.tier) + 1) for sub in passengers],
        "split_slots": range(1, max(2, len(tiers)) + 1),
        "proposals": _proposals(item, passengers),
        "recommendations": item.recommendations or [],
        "operator_names": _operator_names(principal),
        "resolutions": ReviewResolution.values,
        "relaxable": RELAXABLE_RULES,
        "hotel_choices": sorted(hotels),
        "actions_history": [{**entry, "at": parse_datetime(entry.get("at") or "")} for entry in item.actions or ()],
    }


@require_GET
@console_view(min_role=Role.OPS_SUPERVISOR)
def review_item(request: HttpRequest, principal: Principal, review_urn: str) -> HttpResponse:
    """The item as GET /v1/manual-review/{urn} reads it (its selector; another airline's item is a 404)."""
    try:
        parse_urn(review_urn, "review")
    except InvalidUrn as error:
        raise not_found_problem(error.message) from None
    return _render(request, "console/review_item.html", _item_context(request, principal, review_urn))


def _answer(request: HttpRequest, principal: Principal, review_urn: str, note: str) -> HttpResponse:
    return _render(
        request, "console/review_item_body.html", _item_context(request, principal, review_urn, note, answer=True)
    )


# --- the review actions (review.services, as POST /v1/manual-review/{urn}/… calls them) --------------------


@review_action
def review_claim(request: HttpRequest, principal: Principal, review_urn: str) -> HttpResponse:
    item = review_services.review_item_claim(principal=principal, review_urn=review_urn)
    until = timezone.localtime(item.claimed_until).strftime("%H:%M")
    return _answer(request, principal, review_urn, _("Claimed: the item is yours until %(until)s.") % {"until": until})


@review_action
def review_rebook(request: HttpRequest, principal: Principal, review_urn: str) -> HttpResponse:
    body = _valid(ReviewRebookSerializer, {"hotelUrn": request.POST.get("hotel_urn", ""), "reason": _reason(request)})
    review_services.review_item_rebook(
        principal=principal, review_urn=review_urn, hotel_urn=body["hotelUrn"], reason=body["reason"]
    )
    return _answer(request, principal, review_urn, _("Rebooking started: the room sagas are running."))


@review_action
def review_override(request: HttpRequest, principal: Principal, review_urn: str) -> HttpResponse:
    body = _valid(
        ReviewOverrideSerializer,
        {
            "hotelUrn": request.POST.get("hotel_urn", ""),
            "providerOfferId": request.POST.get("provider_offer_id", ""),
            "reason": _reason(request),
        },
    )
    review_services.review_item_override(
        principal=principal,
        review_urn=review_urn,
        hotel_urn=body["hotelUrn"],
        provider_offer_id=body["providerOfferId"],
        reason=body["reason"],
    )
    return _answer(request, principal, review_urn, _("Manual booking recorded."))


def _relax_value(raw: str) -> Any:
    """A number, or JSON for the object rules (``{"amount": "150.00", "currency": "EUR"}``); the service
    names a bad value."""
    raw = raw.strip()
    try:
        return json.loads(raw)
    except ValueError:
        return raw


@review_action
def review_relax(request: HttpRequest, principal: Principal, review_urn: str) -> HttpResponse:
    rule = request.POST.get("rule", "")
    body = _valid(
        ReviewRelaxSerializer,
        {"fields": {rule: _relax_value(request.POST.get("value", ""))}, "reason": _reason(request)},
    )
    item = review_services.review_item_relax(
        principal=principal, review_urn=review_urn, fields=body["fields"], reason=body["reason"]
    )
    outcome = (item.actions[-1].get("result") or {}).get("outcome", "") if item.actions else ""
    return _answer(request, principal, review_urn, _("Relaxed for this case: %(outcome)s.") % {"outcome": outcome})


@review_action
def review_split(request: HttpRequest, principal: Principal, review_urn: str) -> HttpResponse:
    """One select per passenger names the new group it goes to; the groups are the ``into`` of the API."""
    groups: dict[str, list[str]] = {}
    for key, value in request.POST.items():
        if key.startswith("group:") and value:
            groups.setdefault(value, []).append(key.removeprefix("group:"))
    into = [groups[key] for key in sorted(groups)]
    body = _valid(ReviewSplitSerializer, {"into": into, "reason": _reason(request)})
    review_services.review_item_split(
        principal=principal, review_urn=review_urn, into=body["into"], reason=body["reason"]
    )
    return _answer(request, principal, review_urn, _("Group split."))


@review_action
def review_resolve(request: HttpRequest, principal: Principal, review_urn: str) -> HttpResponse:
    body = _valid(
        ReviewResolveSerializer, {"resolution": request.POST.get("resolution", ""), "reason": _reason(request)}
    )
    item = review_services.review_item_resolve(
        principal=principal, review_urn=review_urn, resolution=body["resolution"], reason=body["reason"]
    )
    return _answer(request, principal, review_urn, _("Resolved: %(resolution)s.") % {"resolution": item.resolution})


# --- the agent (agent.services, as POST /v1/agent/… calls them) --------------------------------------------


@review_action
def review_triage(request: HttpRequest, principal: Principal, review_urn: str) -> HttpResponse:
    triage = agent_services.agent_triage(principal=principal, review_urn=review_urn)
    note = _("The agent proposes %(n)s option(s) (%(cause)s).") % {
        "n": len(triage.proposals),
        "cause": triage.classification.get("cause", ""),
    }
    return _answer(request, principal, review_urn, note)


def _action_item_urn(principal: Principal, agent_action_urn: str) -> str:
    """The item a proposal belongs to, read within the principal's airline (another airline's: 404)."""
    item_id = (
        AgentAction.objects.filter(id=parse_urn(agent_action_urn, "agent-action").id, airline=principal.airline)
        .values_list("item_id", flat=True)
        .first()
    )
    if item_id is None:
        raise not_found_problem(agent_action_urn)
    return review_selectors.review_item_get(principal=principal, review_urn=format_urn("review", item_id)).urn


@review_action
def agent_approve(request: HttpRequest, principal: Principal, agent_action_urn: str) -> HttpResponse:
    review_urn = _action_item_urn(principal, agent_action_urn)
    body = _valid(ApproveRequestSerializer, {"planHash": request.POST.get("plan_hash", "")})
    agent_services.agent_action_approve(
        principal=principal, agent_action_urn=agent_action_urn, plan_hash_seen=body["planHash"], reason=_reason(request)
    )
    return _answer(request, principal, review_urn, _("Proposal approved: only you may execute it."))


@review_action
def agent_reject(request: HttpRequest, principal: Principal, agent_action_urn: str) -> HttpResponse:
    review_urn = _action_item_urn(principal, agent_action_urn)
    body = _valid(RejectRequestSerializer, {"reason": _reason(request)})
    agent_services.agent_action_reject(principal=principal, agent_action_urn=agent_action_urn, reason=body["reason"])
    return _answer(request, principal, review_urn, _("Proposal rejected."))


@review_action
def agent_execute(request: HttpRequest, principal: Principal, agent_action_urn: str) -> HttpResponse:
    review_urn = _action_item_urn(principal, agent_action_urn)
    action = agent_services.agent_action_execute(principal=principal, agent_action_urn=agent_action_urn)
    if action.state == AgentActionState.FAILED:
        problem = (action.result or {}).get("problem") or {}
        note = _("The proposal failed: %(detail)s") % {"detail": problem.get("detail") or problem.get("title", "")}
    else:
        note = _("Proposal executed.")
    return _answer(request, principal, review_urn, note)
