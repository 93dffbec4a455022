"""Reads of the policies domain, always tenant-scoped, and the resolution of "which policy applies".

Resolution (``policy_resolve``): the ACTIVE policies of the airline whose every scope field is absent
or equal to the context are the candidates; the most specific wins. Specificity is a score —
airport 4, tier 2, cause 1 — so airport+tier+cause (7) beats airport+tier (6) beats airport+cause (5)
beats airport (4) beats tier+cause (3) beats tier (2) beats cause (1) beats the airline default (0).
One ACTIVE policy per scope (a unique index) means no two candidates ever tie.

Two hooks let higher layers feed the resolution without ``policies`` importing them:

* **case context** (:func:`case_context_register`): ``caseUrn`` is turned into ``{airport, cause}``
  by a lookup the ``cases`` app registers at ready (``cases/policy_context.py``). Unknown or another
  airline's case: the hook returns None and the resolve is a 404.
* **relaxations** (:func:`relaxation_register`): case-level relaxations (manual review's "relax")
  adjust the effective rules of one case. The review app registers one (``review.selectors.case_relaxations``).
"""

from dataclasses import dataclass, field
from typing import Any, Protocol

from django.db.models import Q, QuerySet

from nexa.platform.auth import Principal
from nexa.platform.problems import Problem, not_found_problem
from nexa.platform.tenancy import for_principal, get_for_principal
from nexa.platform.urns import parse_urn
from policies.models import Policy, PolicyStatus, PolicyVersion

# Re-exported for other apps (they import only services, selectors, events and models): manual review's
# relax validates a proposed rule value exactly as a policy's own rules are validated.
from policies.rules import RULE_SCHEMAS as RULE_SCHEMAS
from policies.rules import validate_rules as validate_rules

SPECIFICITY_WEIGHTS = {"airport": 4, "tier": 2, "cause": 1}
SPECIFICITY_ORDER = (
    "airport+tier+cause",
    "airport+tier",
    "airport+cause",
    "airport",
    "tier+cause",
    "tier",
    "cause",
    "default",
)


# --- hooks ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CaseContext:
    airport: str
    cause: str
    tier: str | None = None


class CaseContextLookup(Protocol):
    def __call__(self, *, principal: Principal, case_urn: str) -> CaseContext | None: ...


@dataclass(frozen=True)
class Relaxation:
    """One rule of one case changed from what the policy says: ``value`` replaces the policy's."""

    rule: str
    value: Any
    reason: str
    source: str  # e.g. the review item's URN


class RelaxationSource(Protocol):
    def __call__(self, *, principal: Principal, case_urn: str, policy: Policy) -> list[Relaxation]: ...


_case_context_lookups: list[CaseContextLookup] = []
_relaxation_sources: list[RelaxationSource] = []


def case_context_register(lookup: CaseContextLookup) -> CaseContextLookup:
    """Install the caseUrn → context lookup (``cases`` calls this from its ``AppConfig.ready``). Idempotent."""
    if lookup not in _case_context_lookups:
        _case_context_lookups.append(lookup)
    return lookup


def relaxation_register(source: RelaxationSource) -> RelaxationSource:
    """Install a source of case-level relaxations (the review app's, at ready). Idempotent."""
    if source not in _relaxation_sources:
        _relaxation_sources.append(source)
    return source


def relaxation_unregister(source: RelaxationSource) -> None:
    if source in _relaxation_sources:
        _relaxation_sources.remove(source)


def _case_context(*, principal: Principal, case_urn: str) -> CaseContext:
    for lookup in tuple(_case_context_lookups):
        context = lookup(principal=principal, case_urn=case_urn)
        if context is not None:
            return context
    raise not_found_problem()


# --- reads ------------------------------------------------------------------------------------------


def policy_get(*, principal: Principal, policy_urn: str) -> Policy:
    """The policy, or a 404 problem (also another airline's); a malformed URN is a 400."""
    urn = parse_urn(policy_urn, "policy")
    return get_for_principal(Policy.objects.all(), principal, id=urn.id)


def policy_version_get(*, principal: Principal, policy: Policy, version: int) -> PolicyVersion:
    """One immutable version of ``policy`` (404 when it never had it)."""
    return get_for_principal(PolicyVersion.objects.all(), principal, policy=policy, version=version)


def policies_active(*, principal: Principal) -> QuerySet[Policy]:
    return for_principal(Policy.objects.filter(status=PolicyStatus.ACTIVE), principal)


def policies_list(*, principal: Principal, status: str | None = None) -> QuerySet[Policy]:
    queryset = for_principal(Policy.objects.all(), principal)
    return queryset.filter(status=status) if status else queryset


def specificity(scope: dict[str, str]) -> int:
    return sum(weight for name, weight in SPECIFICITY_WEIGHTS.items() if scope.get(name))


def specificity_label(scope: dict[str, str]) -> str:
    return "+".join(name for name in SPECIFICITY_WEIGHTS if scope.get(name)) or "default"


@dataclass
class Resolution:
    policy: Policy
    context: dict[str, str | None]
    candidates: list[Policy]
    effective_rules: dict[str, Any]
    relaxations: list[Relaxation] = field(default_factory=list)


def no_policy_matches(context: dict[str, str | None]) -> Problem:
    described = ", ".join(f"{key}={value}" for key, value in context.items() if value) or "no context"
    return Problem(
        status=404,
        slug="no-policy-matches",
        title="No policy matches",
        detail=f"No active policy of your airline applies to {described} (POLICY_VIOLATION); activate a default "
        "policy (scope {}) or one for this scope.",
    )


def policy_resolve(
    *,
    principal: Principal,
    airport: str | None = None,
    tier: str | None = None,
    cause: str | None = None,
    case_urn: str | None = None,
) -> Resolution:
    """The ACTIVE policy that applies to the context, the candidates that matched (most specific
    first) and the effective rules. Explicit ``airport``/``cause`` win over the case's."""
    if case_urn:
        case = _case_context(principal=principal, case_urn=case_urn)
        airport = airport or case.airport
        cause = cause or case.cause
        tier = tier or case.tier
    context = {"airport": airport, "tier": tier, "cause": cause, "caseUrn": case_urn}
    condition = Q()
    for name, value in (("scope_airport", airport), ("scope_tier", tier), ("scope_cause", cause)):
        condition &= Q(**{name: ""}) | Q(**{name: value}) if value else Q(**{name: ""})
    candidates = sorted(
        policies_active(principal=principal).filter(condition),
        key=lambda policy: specificity(policy.scope),
        reverse=True,
    )
    if not candidates:
        raise no_policy_matches(context)
    chosen = candidates[0]
    rules = dict(chosen.rules)
    relaxations: list[Relaxation] = []
    if case_urn:
        for source in tuple(_relaxation_sources):
            relaxations.extend(source(principal=principal, case_urn=case_urn, policy=chosen))
        for relaxation in relaxations:
            rules[relaxation.rule] = relaxation.value
    return Resolution(
        policy=chosen, context=context, candidates=candidates, effective_rules=rules, relaxations=relaxations
    )
