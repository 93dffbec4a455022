"""Which policy rules a review ``relax`` may change, and whether a value relaxes a rule (pure functions).

Relaxable are the rules that decide whether a hotel room is compliant (``policies/rules.py`` names them):

* ``maxDistanceKm`` — a larger distance relaxes;
* ``minStars`` — fewer stars relax;
* ``maxNightlyRate`` — a higher amount in the same currency relaxes (another currency cannot be compared);
* ``maxOccupancy`` — ``{perRoom, familyException}``: more people per room, or allowing the family exception,
  relaxes (neither may go down).

The other rules (meals, transport, accessible rooms, regulation) are entitlements, not placement gates: relaxing
them would not place anyone, so they are refused (422). A rule the policy does not set at all is not a gate
either (nothing to relax). Used by the relax service (validation), the relaxation source policy resolution
calls (a stored relaxation applies only where it is looser than the resolving policy's own rule, so it never
tightens another tier's policy) and the read-only preview the exception agent prices a relaxation with.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from policies.selectors import validate_rules

RELAXABLE_RULES = ("maxDistanceKm", "minStars", "maxNightlyRate", "maxOccupancy")


def normalise_fields(fields: Any, *, field: str = "fields") -> tuple[dict[str, Any], list[dict[str, str]]]:
    """The proposed rules, normalised as a policy stores them, or the errors (unknown, not relaxable, bad value)."""
    if not isinstance(fields, dict) or not fields:
        return {}, [{"field": field, "message": f"must be a non-empty object of {', '.join(RELAXABLE_RULES)}"}]
    errors: list[dict[str, str]] = []
    candidates = {}
    for name, value in fields.items():
        if name not in RELAXABLE_RULES:
            errors.append(
                {
                    "field": f"{field}.{name}",
                    "message": f"not a relaxable rule; relaxable: {', '.join(RELAXABLE_RULES)}",
                }
            )
        else:
            candidates[name] = value
    rules, rule_errors = validate_rules(candidates, field=field)
    return ({} if errors or rule_errors else rules), errors + rule_errors


def _per_room(value: Any) -> int | None:
    if isinstance(value, dict):
        value = value.get("perRoom")
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _family(value: Any) -> bool:
    return bool(value.get("familyException")) if isinstance(value, dict) else False


def _amount(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value["amount"]))
    except (KeyError, TypeError, InvalidOperation):
        return None


def comparable(rule: str, proposed: Any, current: Any) -> str | None:
    """Why ``proposed`` cannot be compared with ``current`` at all, or None."""
    if current is None:
        return "the policy sets no such rule: there is nothing to relax"
    if rule == "maxNightlyRate":
        currency = current.get("currency") if isinstance(current, dict) else None
        if currency != proposed.get("currency"):
            return f"must be in {currency}, the policy's currency"
    return None


def relaxes(rule: str, proposed: Any, current: Any) -> bool:
    """True when ``proposed`` is strictly looser than ``current`` (the policy's value) for ``rule``."""
    if comparable(rule, proposed, current) is not None:
        return False
    if rule == "maxDistanceKm":
        return float(proposed) > float(current)
    if rule == "minStars":
        return int(proposed) < int(current)
    if rule == "maxNightlyRate":
        new, old = _amount(proposed), _amount(current)
        return new is not None and old is not None and new > old
    if rule == "maxOccupancy":
        new_per, old_per = _per_room(proposed), _per_room(current)
        if new_per is None or old_per is None:
            return False
        new_family, old_family = _family(proposed), _family(current)
        return new_per >= old_per and new_family >= old_family and (new_per > old_per or new_family > old_family)
    return False
