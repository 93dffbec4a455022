"""Policy compliance for the hotel search from ``policies`` (issue 11).

``booking`` sits above ``policies`` (ARCHITECTURE §2), so it calls
``policies.selectors.policy_resolve(*, principal, airport, tier, cause, case_urn=None)``; ``booking.apps``
registers :func:`rules_from_policies` as the search's policy source. The effective rules (a resolution's
``effective_rules``, or a mapping carrying them directly or under ``rules`` / ``effectiveRules``) give
``maxDistanceKm``, ``minStars``, ``maxNightlyRate {amount, currency}``, ``maxOccupancy`` and
``accessibleRoomForPrm``. A resolution that finds no policy (a 404 problem) means "no policy": ``None``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from booking.hotel_search import SearchRules, register_policy_rules_source
from booking.vendors import Money
from nexa.platform.problems import Problem
from policies.selectors import policy_resolve


def _get(source: Any, *names: str) -> Any:
    for name in names:
        if isinstance(source, dict) and name in source:
            return source[name]
        if not isinstance(source, dict) and hasattr(source, name):
            return getattr(source, name)
    return None


def rules_from_resolution(resolved: Any) -> SearchRules | None:
    if resolved is None:
        return None
    rules = _get(resolved, "effectiveRules", "effective_rules", "rules") or resolved
    rate = _get(rules, "maxNightlyRate", "max_nightly_rate")
    money = None
    if rate:
        money = Money(Decimal(str(_get(rate, "amount"))), str(_get(rate, "currency")).upper())
    distance = _get(rules, "maxDistanceKm", "max_distance_km")
    stars = _get(rules, "minStars", "min_stars")
    occupancy = _get(rules, "maxOccupancy", "max_occupancy")
    if isinstance(occupancy, dict):  # policies store {perRoom, familyException}
        occupancy = occupancy.get("perRoom")
    policy = _get(resolved, "urn", "policyUrn", "policy_urn", "policy")
    if policy is not None and not isinstance(policy, str):
        policy = _get(policy, "urn")
    return SearchRules(
        max_distance_km=float(distance) if distance is not None else None,
        min_stars=int(stars) if stars is not None else None,
        max_nightly_rate=money,
        max_occupancy=int(occupancy) if occupancy is not None else None,
        accessible_room_for_prm=bool(_get(rules, "accessibleRoomForPrm", "accessible_room_for_prm")),
        policy_urn=policy if isinstance(policy, str) else None,
    )


def rules_from_policies(*, principal, airport, tier, cause, case_urn=None) -> SearchRules | None:
    try:
        resolved = policy_resolve(principal=principal, airport=airport, tier=tier, cause=cause, case_urn=case_urn)
    except Problem as problem:
        if problem.status_code == 404:
            return None
        raise
    return rules_from_resolution(resolved)


def register() -> None:
    """Plug ``policies`` into the hotel search (see the module docstring)."""
    register_policy_rules_source(rules_from_policies)
