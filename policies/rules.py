"""A policy's scope and rules: their validation and, stated once beside it, their JSON Schema (the
OpenAPI schema must say exactly what the validator accepts).

Rules (all optional; unknown members are refused):

* ``maxDistanceKm``: number, 0 < x ≤ 1000
* ``minStars``: integer 1 to 5
* ``maxNightlyRate``: money ``{amount: "180.00", currency: "EUR"}``
* ``maxOccupancy``: ``{perRoom: 1 to 10, familyException: bool}`` (a family may share beyond perRoom)
* ``mealAllowance``: ``{breakfast?, lunch?, dinner?}``, each money
* ``transport``, ``accessibleRoomForPrm``: booleans
* ``regulation``: EU261, UK261, DOT, APPR or none
"""

import re
from decimal import Decimal
from typing import Any

from policies.models import Cause, Tier

REGULATIONS = ("EU261", "UK261", "DOT", "APPR", "none")
MEAL_PERIODS = ("breakfast", "lunch", "dinner")
MAX_DISTANCE_KM = 1000
MAX_PER_ROOM = 10
NAME_MAX_LENGTH = 200

_AMOUNT_PATTERN = r"^(?:[1-9][0-9]{0,4}(?:\.[0-9]{1,2})?|0\.(?:[1-9][0-9]?|0[1-9]))$"
_CURRENCY_PATTERN = r"^[A-Z]{3}$"
_AIRPORT_PATTERN = r"^[A-Z]{3}$"
NON_BLANK = r"[^\s\x1c-\x1f]"

MONEY_SCHEMA = {
    "type": "object",
    "properties": {
        "amount": {
            "type": "string",
            "pattern": _AMOUNT_PATTERN,
            "description": 'Positive, at most two decimals, below 100000, as a decimal string ("180.00").',
            "example": "180.00",
        },
        "currency": {"type": "string", "pattern": _CURRENCY_PATTERN, "example": "EUR"},
    },
    "required": ["amount", "currency"],
    "additionalProperties": False,
}

RULE_SCHEMAS: dict[str, dict] = {
    "maxDistanceKm": {
        "type": "number",
        "minimum": 0,
        "exclusiveMinimum": True,
        "maximum": MAX_DISTANCE_KM,
        "example": 15,
    },
    "minStars": {"type": "integer", "minimum": 1, "maximum": 5, "example": 4},
    "maxNightlyRate": MONEY_SCHEMA,
    "maxOccupancy": {
        "type": "object",
        "properties": {
            "perRoom": {"type": "integer", "minimum": 1, "maximum": MAX_PER_ROOM},
            "familyException": {"type": "boolean", "description": "A family stays together beyond perRoom."},
        },
        "required": ["perRoom"],
        "additionalProperties": False,
    },
    "mealAllowance": {
        "type": "object",
        "properties": {period: MONEY_SCHEMA for period in MEAL_PERIODS},
        "additionalProperties": False,
        "description": "Per meal period.",
    },
    "transport": {"type": "boolean"},
    "accessibleRoomForPrm": {"type": "boolean"},
    "regulation": {"type": "string", "enum": list(REGULATIONS)},
}
RULE_NAMES = tuple(RULE_SCHEMAS)

RULES_SCHEMA = {
    "type": "object",
    "properties": RULE_SCHEMAS,
    "additionalProperties": False,
    "example": {
        "maxDistanceKm": 15,
        "minStars": 4,
        "maxNightlyRate": {"amount": "180.00", "currency": "EUR"},
        "mealAllowance": {"dinner": {"amount": "35.00", "currency": "EUR"}},
        "maxOccupancy": {"perRoom": 2, "familyException": True},
        "transport": True,
        "regulation": "EU261",
    },
}
# In a patch, null removes a rule.
RULES_PATCH_SCHEMA = {
    "type": "object",
    "properties": {name: {**schema, "nullable": True} for name, schema in RULE_SCHEMAS.items()},
    "additionalProperties": False,
    "description": "Only the rules that change; null removes a rule.",
    "example": {"minStars": 3, "transport": None},
}
SCOPE_SCHEMA = {
    "type": "object",
    "properties": {
        "airport": {"type": "string", "pattern": _AIRPORT_PATTERN, "example": "MAD"},
        "tier": {"type": "string", "enum": list(Tier.values)},
        "cause": {"type": "string", "enum": list(Cause.values)},
    },
    "additionalProperties": False,
    "description": "An absent field matches anything; {} is the airline's default.",
    "example": {"airport": "MAD", "tier": "BUSINESS"},
}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _money(value: Any, field: str, errors: list[dict[str, str]]) -> dict[str, str] | None:
    if not isinstance(value, dict):
        errors.append({"field": field, "message": "must be an object {amount, currency}"})
        return None
    extra = sorted(set(value) - {"amount", "currency"})
    for name in extra:
        errors.append({"field": f"{field}.{name}", "message": "unknown member"})
    amount, currency = value.get("amount"), value.get("currency")
    ok = not extra
    if not isinstance(amount, str) or not re.match(_AMOUNT_PATTERN, amount):
        errors.append({"field": f"{field}.amount", "message": 'must be a positive decimal string such as "35.00"'})
        ok = False
    if not isinstance(currency, str) or not re.match(_CURRENCY_PATTERN, currency):
        errors.append({"field": f"{field}.currency", "message": "must be an ISO 4217 code such as EUR"})
        ok = False
    return {"amount": f"{Decimal(amount):.2f}", "currency": currency} if ok else None


def _rule(name: str, value: Any, field: str, errors: list[dict[str, str]]) -> Any:
    """The normalised value of one rule, or None after appending its errors."""
    before = len(errors)
    if name == "maxDistanceKm":
        if not _is_number(value) or not 0 < value <= MAX_DISTANCE_KM:
            errors.append({"field": field, "message": f"must be a number above 0 and at most {MAX_DISTANCE_KM}"})
            return None
        return int(value) if float(value).is_integer() else float(value)
    if name == "minStars":
        if (not _is_int(value) and not (isinstance(value, float) and value.is_integer())) or not 1 <= value <= 5:
            errors.append({"field": field, "message": "must be an integer from 1 to 5"})
            return None
        return int(value)
    if name == "maxNightlyRate":
        return _money(value, field, errors)
    if name == "maxOccupancy":
        if not isinstance(value, dict):
            errors.append({"field": field, "message": "must be an object {perRoom, familyException?}"})
            return None
        for extra in sorted(set(value) - {"perRoom", "familyException"}):
            errors.append({"field": f"{field}.{extra}", "message": "unknown member"})
        per_room = value.get("perRoom")
        if not (_is_int(per_room) or (isinstance(per_room, float) and per_room.is_integer())) or not (
            1 <= per_room <= MAX_PER_ROOM
        ):
            errors.append({"field": f"{field}.perRoom", "message": f"must be an integer from 1 to {MAX_PER_ROOM}"})
        family = value.get("familyException", False)
        if not isinstance(family, bool):
            errors.append({"field": f"{field}.familyException", "message": "must be a boolean"})
        return None if len(errors) > before else {"perRoom": int(per_room), "familyException": family}
    if name == "mealAllowance":
        if not isinstance(value, dict):
            errors.append({"field": field, "message": f"must be an object with {', '.join(MEAL_PERIODS)}"})
            return None
        meals = {}
        for period, money in value.items():
            if period not in MEAL_PERIODS:
                errors.append({"field": f"{field}.{period}", "message": f"must be one of {', '.join(MEAL_PERIODS)}"})
                continue
            meals[period] = _money(money, f"{field}.{period}", errors)
        return None if len(errors) > before else meals
    if name in ("transport", "accessibleRoomForPrm"):
        if not isinstance(value, bool):
            errors.append({"field": field, "message": "must be a boolean"})
            return None
        return value
    if name == "regulation":
        if value not in REGULATIONS:
            errors.append({"field": field, "message": f"must be one of {', '.join(REGULATIONS)}"})
            return None
        return value
    raise AssertionError(name)


def validate_rules(value: Any, *, field: str = "rules", patch: bool = False) -> tuple[dict, list[dict[str, str]]]:
    """(normalised rules, errors). With ``patch``, a null value means "remove this rule" and is kept."""
    errors: list[dict[str, str]] = []
    if not isinstance(value, dict):
        return {}, [{"field": field, "message": "must be an object"}]
    rules: dict[str, Any] = {}
    for name, raw in value.items():
        if name not in RULE_SCHEMAS:
            errors.append({"field": f"{field}.{name}", "message": f"unknown rule; rules are {', '.join(RULE_NAMES)}"})
            continue
        if patch and raw is None:
            rules[name] = None
            continue
        rules[name] = _rule(name, raw, f"{field}.{name}", errors)
    return rules, errors


def validate_scope(value: Any, *, field: str = "scope") -> tuple[dict[str, str], list[dict[str, str]]]:
    errors: list[dict[str, str]] = []
    if not isinstance(value, dict):
        return {}, [{"field": field, "message": "must be an object {airport?, tier?, cause?}"}]
    scope: dict[str, str] = {}
    for name, raw in value.items():
        if name == "airport":
            if not isinstance(raw, str) or not re.match(_AIRPORT_PATTERN, raw):
                errors.append({"field": f"{field}.airport", "message": "must be an IATA airport code such as MAD"})
                continue
        elif name == "tier":
            if raw not in Tier.values:
                errors.append({"field": f"{field}.tier", "message": f"must be one of {', '.join(Tier.values)}"})
                continue
        elif name == "cause":
            if raw not in Cause.values:
                errors.append({"field": f"{field}.cause", "message": f"must be one of {', '.join(Cause.values)}"})
                continue
        else:
            errors.append({"field": f"{field}.{name}", "message": "unknown member; scope has airport, tier, cause"})
            continue
        scope[name] = raw
    return scope, errors


def validate_name(value: Any, *, field: str = "name") -> tuple[str, list[dict[str, str]]]:
    if not isinstance(value, str) or not value.strip():
        return "", [{"field": field, "message": "must be a non-blank string"}]
    if len(value) > NAME_MAX_LENGTH:
        return "", [{"field": field, "message": f"at most {NAME_MAX_LENGTH} characters"}]
    return value.strip(), []


NAME_SCHEMA = {"type": "string", "pattern": NON_BLANK, "maxLength": NAME_MAX_LENGTH, "example": "IB Madrid business"}
