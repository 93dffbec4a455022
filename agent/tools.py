"""The exception agent's tools: an explicit allow-list, every one read-only (spec 000 § Exception agent).

* ``classify_failure`` — the failure's cause from the item's category, the attempted hotels' reasons and
  the failing domain's facts (:func:`classify`).
* ``search_hotels`` — alternate hotels inside and outside the current policy, through the hotel search the
  allocation uses (``booking.services.hotels_search``: every vendor and the contracts, each offer checked
  against the resolved policy). It reserves nothing; the search is recorded as every search is.
* ``relaxation_cost`` — what relaxing the policy for this case costs: nights x rooms x rate delta; given the
  ``fields``, whether the relax action would accept them (``review.selectors.relaxation_preview``).

:class:`ToolBox` is the only way a planner reaches them. A tool name outside :data:`ALLOWED_TOOLS` is
refused — never executed — and audited (``agent.tool_refused``); each allowed call is audited
(``agent.tool_called``) and kept on the run. The agent has no tool that books, pays, cancels or notifies.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import structlog
from django.utils import timezone

from agent import ranking
from agent.models import FailureCause
from audit import services as audit
from booking import services as booking_services
from cases.models import Allocation, DemandWave, SubCase
from nexa.platform.auth import Principal
from nexa.platform.problems import Problem
from nexa.platform.urns import InvalidUrn, parse_urn
from policies.selectors import policy_resolve
from review import selectors as review_selectors
from review.models import ReviewCategory, ReviewItem

logger = structlog.get_logger(__name__)

CLASSIFY_FAILURE, SEARCH_HOTELS, RELAXATION_COST = "classify_failure", "search_hotels", "relaxation_cost"
ALLOWED_TOOLS = (CLASSIFY_FAILURE, SEARCH_HOTELS, RELAXATION_COST)
RELAXABLE_FIELDS = ("maxDistanceKm", "minStars", "maxNightlyRate")
SEARCH_OCCUPANCY = 2  # as the allocation's search: rooms for two, the groups' rooms counted from it
PRM_NEEDS = frozenset({"WHEELCHAIR", "MEDICAL"})

# The causes the classifier names (and a hosted model may name; anything else is replaced by ours).
NO_AVAILABILITY = FailureCause.NO_AVAILABILITY.value
POLICY_TOO_STRICT = FailureCause.POLICY_TOO_STRICT.value
PROVIDER_ERROR = FailureCause.PROVIDER_ERROR.value
PAYMENT_REFUSED = FailureCause.PAYMENT_REFUSED.value
NO_POLICY = FailureCause.NO_POLICY.value
MIXED_TIER = FailureCause.MIXED_TIER.value
DATA_INCOMPLETE = FailureCause.DATA_INCOMPLETE.value
UNKNOWN = FailureCause.UNKNOWN.value
CAUSES = tuple(FailureCause.values)

_FULL_WORDS = ("full", "not_enough_rooms", "not-enough-rooms", "sold", "no-availability", "no_availability",
               "unavailable-rooms", "no rooms", "no-rooms")  # fmt: skip
_PAYMENT_WORDS = ("payment", "card", "declined", "psp")
_PROVIDER_WORDS = ("timeout", "error", "unavailable", "circuit", "5xx", "503", "502", "500")
_POLICY_WORDS = ("policy", "compliant", "maxdistance", "minstars", "maxnightly")


# --- the item's facts, read once per triage -------------------------------------------------------------


@dataclass
class Situation:
    """What the tools know of the item: its facts and the stay the affected groups need."""

    item: ReviewItem
    airport: str
    case_urn: str
    check_in: dt.date
    nights: int
    rooms_needed: int
    accessible: bool
    tiers: dict[str, list[str]]  # tier → the affected sub-case URNs of that tier
    refused_hotels: set[str]
    baseline_rate: Decimal | None  # the most the policy pays per night (its maxNightlyRate), if known
    policy_limits: dict[str, Any] = field(default_factory=dict)


def _wave_of(item: ReviewItem) -> DemandWave | None:
    for urn, lookup in ((item.allocation_urn, "allocation"), (item.demand_urn, "demand")):
        if not urn:
            continue
        try:
            ident = parse_urn(urn, lookup).id
        except InvalidUrn:
            continue
        if lookup == "allocation":
            allocation = Allocation.objects.filter(pk=ident, airline=item.airline).select_related("demand").first()
            if allocation is not None:
                return allocation.demand
        else:
            wave = DemandWave.objects.filter(pk=ident, airline=item.airline).first()
            if wave is not None:
                return wave
    return None


def _policy_limits(*, principal: Principal, item: ReviewItem, tier: str | None) -> dict[str, Any]:
    try:
        resolved = policy_resolve(principal=principal, tier=tier, case_urn=item.case.urn)
    except Problem:
        return {}  # no policy resolves (or none can be read): no limits to quote
    return dict(resolved.effective_rules or {})


def situation_of(*, principal: Principal, item: ReviewItem) -> Situation:
    ids = []
    for urn in item.affected_subcase_urns:
        try:
            ids.append(parse_urn(urn, "subcase").id)
        except InvalidUrn:
            continue
    subs = list(SubCase.objects.filter(case_id=item.case_id, id__in=ids).order_by("created_at", "id"))
    tiers: dict[str, list[str]] = {}
    for sub in subs:
        tiers.setdefault(sub.tier, []).append(sub.urn)
    wave = _wave_of(item)
    case = item.case
    check_in = wave.check_in if wave else max(case.flight_date, timezone.now().date())
    limits = _policy_limits(principal=principal, item=item, tier=subs[0].tier if subs else None)
    rate = limits.get("maxNightlyRate")
    baseline = None
    if isinstance(rate, dict) and rate.get("amount") is not None:
        try:
            baseline = Decimal(str(rate["amount"]))
        except InvalidOperation:
            baseline = None
    return Situation(
        item=item,
        airport=case.airport,
        case_urn=case.urn,
        check_in=check_in,
        nights=wave.nights if wave else 1,
        rooms_needed=max(1, math.ceil(len(subs) / SEARCH_OCCUPANCY)),
        accessible=any(set(sub.special_needs or ()) & PRM_NEEDS for sub in subs),
        tiers=tiers,
        refused_hotels={h["hotelUrn"] for h in item.attempted_hotels if h.get("hotelUrn")},
        baseline_rate=baseline,
        policy_limits=limits,
    )


# --- the tools themselves (pure over the situation, or read-only) --------------------------------------


def classify(*, category: str, attempted_hotels: list[dict[str, Any]], failure: dict[str, Any],
             reason: str = "") -> dict[str, Any]:  # fmt: skip
    """The failure's cause and a confidence in [0, 1], with the evidence it rests on."""
    fixed = {
        ReviewCategory.PAYMENT_FAILED: (PAYMENT_REFUSED, 0.9, "the PSP refused the payment"),
        ReviewCategory.POLICY_VIOLATION: (NO_POLICY, 0.95, "no policy matched the case context"),
        ReviewCategory.MIXED_TIER_GROUP: (MIXED_TIER, 0.95, "the group's passengers span several tiers"),
        ReviewCategory.DATA_INCOMPLETE: (DATA_INCOMPLETE, 0.95, "the manifest lacks required fields"),
    }
    if category in fixed:
        cause, confidence, evidence = fixed[category]
        return {"cause": cause, "confidence": confidence, "evidence": [evidence]}
    votes: Counter[str] = Counter()
    evidence = []
    for hotel in attempted_hotels:
        text = f"{hotel.get('reason') or ''} {hotel.get('providerError') or ''}".lower()
        if any(word in text for word in _FULL_WORDS):
            votes[NO_AVAILABILITY] += 1
        elif any(word in text for word in _PAYMENT_WORDS):
            votes[PAYMENT_REFUSED] += 1
        elif hotel.get("providerError") or any(word in text for word in _PROVIDER_WORDS):
            votes[PROVIDER_ERROR] += 1
        else:
            votes[UNKNOWN] += 1
        evidence.append(f"{hotel.get('hotelUrn') or 'a hotel'}: {hotel.get('reason') or 'no reason given'}")
    for attempt in (failure or {}).get("attempts") or []:
        if isinstance(attempt, dict) and attempt.get("code"):
            code = str(attempt["code"]).lower()
            votes[PAYMENT_REFUSED if any(w in code for w in _PAYMENT_WORDS) else PROVIDER_ERROR] += 1
            evidence.append(f"{attempt.get('step') or 'a step'}: {attempt['code']}")
    text = (reason or "").lower()
    if not votes and category == ReviewCategory.ALLOCATION_FAILED:
        if any(word in text.replace(" ", "") for word in _POLICY_WORDS):
            return {"cause": POLICY_TOO_STRICT, "confidence": 0.7, "evidence": [reason]}
        return {"cause": NO_AVAILABILITY, "confidence": 0.6, "evidence": [reason or "nothing could be allocated"]}
    if not votes:
        return {"cause": UNKNOWN, "confidence": 0.3, "evidence": [reason or "the failure gave no facts"]}
    cause, count = votes.most_common(1)[0]
    confidence = round(min(0.95, 0.5 + 0.45 * count / sum(votes.values())), 2)
    return {"cause": cause, "confidence": confidence, "evidence": evidence[:10]}


def _money(amount: Decimal, currency: str | None) -> dict[str, str]:
    return {"amount": str(Decimal(amount).quantize(Decimal("0.01"))), "currency": currency or ""}


def _offer_view(row: dict[str, Any]) -> dict[str, Any]:
    rate = row.get("rateInAirlineCurrency") or row.get("nightlyRate")
    return {
        "offerId": row["offerId"],
        "hotelUrn": row.get("hotelUrn"),
        "name": row.get("name"),
        "source": row.get("source"),
        "stars": row.get("stars"),
        "distanceKm": row.get("distanceKm"),
        "nightlyRate": rate,
        "roomsAvailable": row.get("roomsAvailable"),
        "accessible": row.get("accessible"),
        "policyCompliant": row.get("policyCompliant"),
        "violations": row.get("violations") or [],
        "expiresAt": row.get("expiresAt"),
    }


# --- the allow-list -------------------------------------------------------------------------------------


TOOL_SPECS = [
    {
        "type": "function",
        "function": {
            "name": CLASSIFY_FAILURE,
            "description": "Classify the review item's failure cause from its category, attempted hotels and facts.",
            "parameters": {"type": "object", "properties": {}, "additionalProperties": False},
        },
    },
    {
        "type": "function",
        "function": {
            "name": SEARCH_HOTELS,
            "description": "Search alternate hotels for the affected groups' stay, inside and/or outside the "
            "current policy (each offer says policyCompliant and which rules it violates). Read-only.",
            "parameters": {
                "type": "object",
                "properties": {"scope": {"type": "string", "enum": ["inside", "outside", "all"]}},
                "additionalProperties": False,
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": RELAXATION_COST,
            "description": "The cost of relaxing the policy for this case: nights x rooms x (nightlyRate - the "
            "policy's nightly cap), and the stay's total; with fields, whether that relaxation loosens the "
            "case's policy (ruleChanges per tier).",
            "parameters": {
                "type": "object",
                "properties": {
                    "nightlyRate": {"type": "string", "description": "decimal, airline currency"},
                    "fields": {"type": "object", "description": 'e.g. {"maxDistanceKm": 40}'},
                },
                "required": ["nightlyRate"],
                "additionalProperties": False,
            },
        },
    },
]


@dataclass
class ToolBox:
    """The planner's only door to the tools. Every call is kept (``calls``, ``refusals``) for the run."""

    principal: Principal
    situation: Situation
    calls: list[dict[str, Any]] = field(default_factory=list)
    refusals: list[dict[str, Any]] = field(default_factory=list)
    _search: dict[str, Any] | None = None

    @property
    def searched_offers(self) -> list[dict[str, Any]] | None:
        """The search's offers once ``search_hotels`` has run (None before)."""
        return None if self._search is None else self._search["offers"]

    def call(self, name: str, arguments: Any = None) -> dict[str, Any]:
        arguments = arguments if isinstance(arguments, dict) else {}
        item = self.situation.item
        if name not in ALLOWED_TOOLS:
            self.refusals.append({"tool": str(name)[:100], "arguments": arguments})
            audit.record(
                principal=self.principal,
                action="agent.tool_refused",
                entity_urn=item.urn,
                case_urn=self.situation.case_urn,
                reason=f"{name!r} is not on the agent's tool allow-list",
                after={"tool": str(name)[:100], "arguments": arguments, "allowed": list(ALLOWED_TOOLS)},
            )
            logger.warning("agent_tool_refused", tool=name, review_urn=item.urn)
            return {
                "error": "tool-refused",
                "detail": f"{name!r} is not an allowed tool",
                "allowed": list(ALLOWED_TOOLS),
            }
        try:
            answer = getattr(self, f"_{name}")(arguments)
            ok = True
        except Problem as problem:  # a search no vendor answered: the planner works without it
            answer, ok = {"error": problem.slug, "detail": str(problem.detail)}, False
        self.calls.append({"tool": name, "arguments": arguments, "ok": ok, "summary": _summary(name, answer)})
        audit.record(
            principal=self.principal,
            action="agent.tool_called",
            entity_urn=item.urn,
            case_urn=self.situation.case_urn,
            after={"tool": name, "arguments": arguments, "ok": ok, "summary": _summary(name, answer)},
        )
        return answer

    def _classify_failure(self, arguments: dict[str, Any]) -> dict[str, Any]:
        item = self.situation.item
        return classify(
            category=item.category, attempted_hotels=item.attempted_hotels, failure=item.failure, reason=item.reason
        )

    def _search_hotels(self, arguments: dict[str, Any]) -> dict[str, Any]:
        if self._search is None:
            s = self.situation
            found = booking_services.hotels_search(
                principal=self.principal,
                airport=None,
                case_urn=s.case_urn,
                check_in=s.check_in,
                nights=s.nights,
                rooms=1,
                occupancy=SEARCH_OCCUPANCY,
                accessible=s.accessible,
            )
            self._search = {
                "searchUrn": found["searchUrn"],
                "offers": [_offer_view(row) for row in found["offers"]],
                "partialFailures": found.get("partialFailures", []),
            }
        scope = arguments.get("scope") or "all"
        offers = self._search["offers"]
        if scope == "inside":
            offers = [o for o in offers if o["policyCompliant"]]
        elif scope == "outside":
            offers = [o for o in offers if not o["policyCompliant"]]
        return {
            "searchUrn": self._search["searchUrn"],
            "checkIn": str(self.situation.check_in),
            "nights": self.situation.nights,
            "roomsNeeded": self.situation.rooms_needed,
            "offers": offers,
            "partialFailures": self._search["partialFailures"],
        }

    def _relaxation_cost(self, arguments: dict[str, Any]) -> dict[str, Any]:
        try:
            nightly = Decimal(str(arguments.get("nightlyRate")))
        except InvalidOperation:
            return {"error": "invalid-arguments", "detail": "nightlyRate must be a decimal"}
        s = self.situation
        cost = ranking.relaxation_cost(nights=s.nights, rooms=s.rooms_needed, nightly=nightly, baseline=s.baseline_rate)
        answer: dict[str, Any] = {
            "nights": s.nights,
            "rooms": s.rooms_needed,
            "baselineRate": str(s.baseline_rate) if s.baseline_rate is not None else None,
            **{key: str(value) for key, value in cost.items()},
        }
        fields = arguments.get("fields")
        if isinstance(fields, dict) and fields:
            # The relax action's own check (read-only): which policy rules it would loosen, per tier.
            try:
                changes = review_selectors.relaxation_preview(
                    principal=self.principal, case_urn=s.case_urn, fields=fields, tiers=sorted(s.tiers) or None
                )
            except Problem as problem:
                answer.update(relaxes=False, ruleChanges=[], detail=str(problem.detail))
            else:
                answer.update(
                    relaxes=any(change.relaxes for change in changes),
                    ruleChanges=[change.as_dict() for change in changes],
                )
        return answer


def _summary(name: str, answer: dict[str, Any]) -> dict[str, Any]:
    """What the run keeps of an answer (the search's offers are in its own HotelSearch record)."""
    if name == SEARCH_HOTELS and "offers" in answer:
        return {"searchUrn": answer["searchUrn"], "offers": len(answer["offers"])}
    return answer
