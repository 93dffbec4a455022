"""Planners: the model adapters behind the exception agent, all with one contract.

``plan(situation, tools) -> Plan``: a classification ``{cause, confidence}`` and the options, ranked by
viability (:mod:`agent.ranking`). A planner reaches the world only through the :class:`~agent.tools.ToolBox`.

* :class:`DeterministicPlanner` — the default: classify, search, cost the relaxations, rank. No network,
  so tests, the demo and the benchmarks run it as production does.
* :class:`HostedPlanner` — used when ``NEXA_AGENT_MODEL_URL`` and ``NEXA_AGENT_MODEL_KEY`` are configured:
  an OpenAI-compatible chat/tool-calling endpoint (``POST {url}`` with ``messages`` and ``tools``) over
  httpx. The model asks for tools; the tool box answers (or refuses a tool off the allow-list); its final
  answer names options. Only options grounded in what the tools answered are kept (a hotel the search
  did not return is dropped), and they are ranked by the same viability order. Its prompts, tool calls and
  answers are kept on the run and audited. If the model fails (HTTP error, malformed answer, too many
  turns), the deterministic planner answers instead and the error is recorded.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

import httpx
import structlog
from django.conf import settings
from django.utils import timezone

from agent import ranking, tools
from agent.ranking import COMPLIANCE_LABEL, COMPLIANT, NON_COMPLIANT, RELAXABLE, Option
from review import services as review_services

logger = structlog.get_logger(__name__)

NO_HOTEL_CAUSES = (tools.DATA_INCOMPLETE,)  # fixing the manifest, not a hotel, is the way out


@dataclass
class Plan:
    planner: str
    classification: dict[str, Any]
    options: list[Option]  # ranked, at most ranking.TOP
    transcript: list[dict[str, Any]] = field(default_factory=list)
    error: str = ""


class Planner(Protocol):
    name: str

    def plan(self, situation: tools.Situation, toolbox: tools.ToolBox) -> Plan: ...


# --- options from what the tools answered ---------------------------------------------------------------


def _parse_instant(value: Any) -> dt.datetime | None:
    if not value:
        return None
    try:
        return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def _relaxed_value(name: str, offer: dict[str, Any]) -> Any:
    if name == "maxDistanceKm":
        return math.ceil(float(offer["distanceKm"]))
    if name == "minStars":
        return int(offer["stars"])
    return dict(offer["nightlyRate"])  # maxNightlyRate: {amount, currency}


def hotel_options(situation: tools.Situation, offers: list[dict[str, Any]],
                  now: dt.datetime | None = None) -> list[Option]:  # fmt: skip
    """Each offer of a catalogued hotel as the one option it allows: rebook when it is compliant, relax the
    one rule it breaks (when that is a relaxable rule and the item's category one a relaxation can help),
    else override (a manual booking)."""
    now = now or timezone.now()
    relaxable = situation.item.category not in review_services.NOT_RELAXABLE_CATEGORIES
    options = []
    for offer in offers:
        if not offer.get("hotelUrn") or not offer.get("nightlyRate"):
            continue  # a vendor-only hotel cannot be named to the review services
        try:
            nightly = Decimal(str(offer["nightlyRate"]["amount"]))
        except (InvalidOperation, KeyError, TypeError):
            continue
        currency = offer["nightlyRate"].get("currency")
        refused = offer["hotelUrn"] in situation.refused_hotels
        fresh = ranking.is_fresh(
            expires_at=_parse_instant(offer.get("expiresAt")),
            rooms_available=offer.get("roomsAvailable"),
            rooms_needed=situation.rooms_needed,
            refused=refused,
            now=now,
        )
        total = ranking.stay_cost(nights=situation.nights, rooms=situation.rooms_needed, nightly=nightly)
        violations = list(offer.get("violations") or [])
        facts = [
            f"{offer['distanceKm']:g} km" if offer.get("distanceKm") is not None else "distance unknown",
            f"{situation.rooms_needed} room(s) x {situation.nights} night(s) at {nightly} {currency}"
            f" = {total} {currency}",
            "quote fresh" if fresh else ("refused this item before" if refused else "availability stale"),
        ]
        common = {
            "fresh": fresh,
            "cost": total,
            "nightly": nightly,
            "currency": currency,
            "distance_km": offer.get("distanceKm"),
            "hotel_urn": offer["hotelUrn"],
            "hotel_name": offer.get("name"),
        }
        if offer.get("policyCompliant"):
            options.append(
                Option(
                    action="rebook",
                    params={"hotelUrn": offer["hotelUrn"]},
                    compliance=COMPLIANT,
                    reasons=[COMPLIANCE_LABEL[COMPLIANT], *facts],
                    **common,
                )
            )
        elif relaxable and len(violations) == 1 and violations[0] in tools.RELAXABLE_FIELDS:
            name = violations[0]
            value = _relaxed_value(name, offer)
            limit = situation.policy_limits.get(name)
            limit_text = f" (policy: {json.dumps(limit)})" if limit is not None else ""
            options.append(
                Option(
                    action="relax",
                    params={"fields": {name: value}},
                    compliance=RELAXABLE,
                    reasons=[
                        f"{name} → {json.dumps(value)}{limit_text} makes {offer.get('name')} compliant",
                        *facts,
                    ],
                    **common,
                )
            )
        else:
            options.append(
                Option(
                    action="override",
                    params={"hotelUrn": offer["hotelUrn"], "providerOfferId": offer["offerId"]},
                    compliance=NON_COMPLIANT,
                    reasons=[f"outside policy ({', '.join(violations) or 'unknown'})", *facts],
                    **common,
                )
            )
    return options


def split_options(situation: tools.Situation) -> list[Option]:
    """A group spanning several tiers, split by tier (each tier's policy then applies to its own group)."""
    if len(situation.tiers) < 2:
        return []
    into = [urns for _, urns in sorted(situation.tiers.items())]
    return [
        Option(
            action="split",
            params={"into": into},
            compliance=COMPLIANT,
            reasons=[f"split by tier ({', '.join(sorted(situation.tiers))}): each tier's policy applies to its group"],
        )
    ]


# --- the default: deterministic --------------------------------------------------------------------------


class DeterministicPlanner:
    name = "deterministic"

    def plan(self, situation: tools.Situation, toolbox: tools.ToolBox) -> Plan:
        classification = toolbox.call(tools.CLASSIFY_FAILURE, {})
        options = split_options(situation)
        if classification["cause"] not in NO_HOTEL_CAUSES:
            found = toolbox.call(tools.SEARCH_HOTELS, {"scope": "all"})
            options += hotel_options(situation, found.get("offers") or [])
        ranked = []
        for option in ranking.rank(options, limit=len(options)):
            if option.action == "relax":  # cost it, and keep it only if the relax action would accept it
                cost = toolbox.call(
                    tools.RELAXATION_COST, {"nightlyRate": str(option.nightly), "fields": option.params["fields"]}
                )
                if cost.get("relaxes") is False:
                    continue
                if "totalDelta" in cost:
                    option.reasons.append(f"relaxation costs {cost['totalDelta']} {option.currency} over the cap")
            ranked.append(option)
            if len(ranked) == ranking.TOP:
                break
        return Plan(
            planner=self.name,
            classification={"cause": classification["cause"], "confidence": classification["confidence"]},
            options=ranked,
        )


# --- the hosted model -------------------------------------------------------------------------------------


SYSTEM_PROMPT = (
    "You are the Nexa exception agent. A manual-review item describes a hotel allocation or booking that "
    "automation could not complete for stranded airline passengers. Use only the tools offered: "
    "classify_failure, search_hotels, relaxation_cost. You cannot book, pay, cancel or notify; an operator "
    'approves every proposal. When done, answer with JSON only: {"classification": {"cause": one of '
    + ", ".join(tools.CAUSES)
    + ', "confidence": 0..1}, "recommendations": [{"action": "rebook"|"relax"|"override"|"split", '
    '"hotelUrn": "…" (rebook, relax, override), "fields": ["maxDistanceKm"] (relax), "reason": "…"}]} '
    "with at most three recommendations, most viable first (policy compliance, fresh availability, cost, "
    "distance)."
)
MAX_TURNS = 6


class ModelError(Exception):
    pass


def _item_prompt(situation: tools.Situation) -> str:
    item = situation.item
    return json.dumps(
        {
            "reviewUrn": item.urn,
            "caseUrn": situation.case_urn,
            "category": item.category,
            "reason": item.reason,
            "attemptedHotels": item.attempted_hotels,
            "affectedGroups": item.affected_groups,
            "failure": item.failure,
            "stay": {
                "airport": situation.airport,
                "checkIn": str(situation.check_in),
                "nights": situation.nights,
                "roomsNeeded": situation.rooms_needed,
                "accessible": situation.accessible,
                "tiers": sorted(situation.tiers),
            },
            "policy": situation.policy_limits,
        },
        default=str,
    )


@dataclass
class HostedPlanner:
    url: str
    key: str
    model: str
    timeout: float
    name: str = "hosted"

    def __post_init__(self):
        self.name = f"hosted:{self.model}"[:40]

    def _ask(self, client: httpx.Client, messages: list[dict[str, Any]]) -> dict[str, Any]:
        try:
            response = client.post(
                self.url,
                json={"model": self.model, "messages": messages, "tools": tools.TOOL_SPECS, "tool_choice": "auto"},
                headers={"Authorization": f"Bearer {self.key}"},
                timeout=self.timeout,
            )
            response.raise_for_status()
            return response.json()["choices"][0]["message"]
        except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError) as error:
            raise ModelError(f"the model endpoint failed: {type(error).__name__}: {error}") from error

    def _converse(self, situation: tools.Situation, toolbox: tools.ToolBox, transcript: list[dict[str, Any]]):
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": _item_prompt(situation)},
        ]
        transcript.extend(messages)
        with httpx.Client() as client:
            for _ in range(MAX_TURNS):
                message = self._ask(client, messages)
                transcript.append({"role": "assistant", **{k: message.get(k) for k in ("content", "tool_calls")}})
                messages.append({"role": "assistant", **{k: message.get(k) for k in ("content", "tool_calls")}})
                calls = message.get("tool_calls") or []
                if not calls:
                    return _final_answer(message.get("content"))
                for call in calls:
                    function = call.get("function") or {}
                    try:
                        arguments = json.loads(function.get("arguments") or "{}")
                    except ValueError:
                        arguments = {}
                    answer = toolbox.call(str(function.get("name") or ""), arguments)
                    reply = {"role": "tool", "tool_call_id": call.get("id"), "content": json.dumps(answer, default=str)}
                    messages.append(reply)
                    transcript.append(reply)
        raise ModelError(f"no final answer after {MAX_TURNS} turns")

    def plan(self, situation: tools.Situation, toolbox: tools.ToolBox) -> Plan:
        transcript: list[dict[str, Any]] = []
        try:
            answer = self._converse(situation, toolbox, transcript)
        except ModelError as error:
            logger.warning("agent_model_failed", error=str(error), review_urn=situation.item.urn)
            fallback = DeterministicPlanner().plan(situation, toolbox)
            fallback.planner, fallback.transcript, fallback.error = self.name, transcript, str(error)
            return fallback
        classification = answer.get("classification") or {}
        ours = tools.classify(
            category=situation.item.category,
            attempted_hotels=situation.item.attempted_hotels,
            failure=situation.item.failure,
            reason=situation.item.reason,
        )
        cause = classification.get("cause") if classification.get("cause") in tools.CAUSES else ours["cause"]
        try:
            confidence = min(max(float(classification.get("confidence")), 0.0), 1.0)
        except (TypeError, ValueError):
            confidence = ours["confidence"]
        grounded = split_options(situation)
        if toolbox.searched_offers is not None:
            grounded += hotel_options(situation, toolbox.searched_offers)
        chosen = []
        for proposal in answer.get("recommendations") or []:
            if not isinstance(proposal, dict):
                continue
            match = next((o for o in grounded if _names(proposal, o)), None)
            if match is None:
                continue  # not grounded in what the tools answered: dropped
            if match.action == "relax":  # the relax action's own check, as the deterministic planner does
                cost = toolbox.call(
                    tools.RELAXATION_COST, {"nightlyRate": str(match.nightly), "fields": match.params["fields"]}
                )
                if cost.get("relaxes") is False:
                    continue
            if proposal.get("reason"):
                match.reasons = [str(proposal["reason"])[:500], *match.reasons]
            chosen.append(match)
        return Plan(
            planner=self.name,
            classification={"cause": cause, "confidence": round(confidence, 2)},
            options=ranking.rank(chosen),
            transcript=transcript,
        )


def _final_answer(content: Any) -> dict[str, Any]:
    text = str(content or "").strip()
    if text.startswith("```"):
        text = text.strip("`").removeprefix("json").strip()
    try:
        answer = json.loads(text)
    except ValueError as error:
        raise ModelError("the model's final answer is not JSON") from error
    if not isinstance(answer, dict):
        raise ModelError("the model's final answer is not a JSON object")
    return answer


def _names(proposal: dict[str, Any], option: Option) -> bool:
    action = proposal.get("action")
    if action == "relaxPolicy":
        action = "relax"
    if action != option.action:
        return False
    if action == "split":
        return True
    if proposal.get("hotelUrn") != option.hotel_urn:
        return False
    if action == "relax" and proposal.get("fields"):
        fields = proposal["fields"]
        named = set(fields) if isinstance(fields, list | dict) else {fields}
        return named == set(option.params["fields"])
    return True


def planner() -> Planner:
    """The hosted model when its endpoint and key are configured, else the deterministic planner."""
    url, key = settings.NEXA_AGENT_MODEL_URL, settings.NEXA_AGENT_MODEL_KEY
    if url and key:
        return HostedPlanner(
            url=url, key=key, model=settings.NEXA_AGENT_MODEL_NAME, timeout=settings.NEXA_AGENT_MODEL_TIMEOUT_SECONDS
        )
    return DeterministicPlanner()
