"""Request parsing and response shapes of the policies API. Bodies are validated by the services
(policies.rules), whose rules the schemas below state exactly."""

from typing import Any

from rest_framework import serializers

from nexa.platform.inputs import PG_INTEGER_MAX
from nexa.platform.openapi import urn_pattern, with_schema
from nexa.platform.urns import InvalidUrn, parse_urn
from policies.generator import DESCRIPTION_MAX_LENGTH
from policies.models import Cause, Policy, PolicyStatus, PolicyVersion, Tier
from policies.rules import NAME_SCHEMA, NON_BLANK, RULES_PATCH_SCHEMA, RULES_SCHEMA, SCOPE_SCHEMA
from policies.selectors import SPECIFICITY_ORDER, Resolution, specificity, specificity_label

REASON_SCHEMA = {"type": "string", "maxLength": 1000, "description": "Why (kept in the audit log)."}


def _iso(value):
    return value.isoformat().replace("+00:00", "Z") if value else None


# --- requests ----------------------------------------------------------------------------------------


class PolicyCreateSerializer(serializers.Serializer):
    name = with_schema(serializers.JSONField(), NAME_SCHEMA)
    scope = with_schema(serializers.JSONField(required=False, default=dict), SCOPE_SCHEMA)
    rules = with_schema(serializers.JSONField(), RULES_SCHEMA)


class PolicyGenerateSerializer(serializers.Serializer):
    description = with_schema(
        serializers.JSONField(),
        {
            "type": "string",
            "pattern": NON_BLANK,
            "maxLength": DESCRIPTION_MAX_LENGTH,
            "description": "English or Spanish, e.g. 'Business class gets a 4-star within 15 km, up to 180 EUR a "
            "night, dinner 35 EUR; families stay together'.",
            "example": "Business class gets a 4-star within 15 km, up to 180 EUR a night, dinner 35 EUR; families "
            "stay together",
        },
    )
    name = with_schema(serializers.JSONField(required=False), NAME_SCHEMA)


class PolicyPatchSerializer(serializers.Serializer):
    version = serializers.IntegerField(
        min_value=1, max_value=PG_INTEGER_MAX, help_text="The version you read (optimistic concurrency)."
    )
    changes = with_schema(
        serializers.JSONField(),
        {
            "type": "object",
            "properties": {"name": NAME_SCHEMA, "rules": RULES_PATCH_SCHEMA},
            "additionalProperties": False,
            "minProperties": 1,
            "description": "name and/or rules (merged: a null rule is removed). The scope is not patched.",
        },
    )


class PolicyTransitionSerializer(serializers.Serializer):
    reason = with_schema(
        serializers.CharField(required=False, allow_blank=True, default="", max_length=1000), REASON_SCHEMA
    )


def _present(data) -> dict[str, Any]:
    """Query parameters sent empty (``?tier=``) are absent."""
    return {key: value for key, value in data.items() if value != ""}


class PolicyResolveQuerySerializer(serializers.Serializer):
    airport = serializers.RegexField(
        r"^[A-Z]{3}\Z", required=False, error_messages={"invalid": "must be an IATA airport code such as MAD"}
    )
    tier = serializers.ChoiceField(choices=Tier.values, required=False)
    cause = serializers.ChoiceField(choices=Cause.values, required=False)
    caseUrn = serializers.CharField(required=False)  # noqa: N815 - wire name

    def __init__(self, *, query, **kwargs):
        super().__init__(data=_present(query), **kwargs)

    def validate_caseUrn(self, value):  # noqa: N802
        try:
            parse_urn(value, "case")
        except InvalidUrn as error:
            raise serializers.ValidationError(error.message) from None
        return value


class PolicyVersionQuerySerializer(serializers.Serializer):
    # Query strings are text; the platform's IntegerField is strict about JSON types, so digits are read here.
    version = serializers.RegexField(
        r"^[0-9]{1,10}\Z", required=False, error_messages={"invalid": f"must be an integer from 1 to {PG_INTEGER_MAX}"}
    )

    def validate_version(self, value: str) -> int:
        number = int(value)
        if not 1 <= number <= PG_INTEGER_MAX:
            raise serializers.ValidationError(f"must be an integer from 1 to {PG_INTEGER_MAX}")
        return number

    def __init__(self, *, query, **kwargs):
        super().__init__(data=_present({"version": query.get("version", "")}), **kwargs)


# --- responses ---------------------------------------------------------------------------------------

_NULLABLE_STRING = {"type": "string", "nullable": True}
GENERATION_ITEM = {
    "type": "object",
    "properties": {
        "value": {"description": "The rule's (or scope field's) value, as in rules/scope."},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "source": {"type": "string", "description": "The words of the description it came from."},
    },
    "required": ["value", "confidence", "source"],
}
GENERATION_SCHEMA = {
    "type": "object",
    "nullable": True,
    "description": "For a generated draft: what the generator read, rule by rule (null when written by hand).",
    "properties": {
        "generator": {"type": "string", "enum": ["deterministic", "hosted"]},
        "rules": {"type": "object", "additionalProperties": GENERATION_ITEM},
        "scope": {"type": "object", "additionalProperties": GENERATION_ITEM},
        "unread": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["generator", "rules", "scope", "unread"],
}


class PolicySerializer(serializers.Serializer):
    """A policy at one version (its current one unless ``?version=`` asked for another)."""

    urn = with_schema(serializers.CharField(), {"type": "string", "pattern": urn_pattern("policy")})
    airline = serializers.CharField()
    name = serializers.CharField()
    scope = with_schema(serializers.JSONField(), SCOPE_SCHEMA)
    rules = with_schema(serializers.JSONField(), RULES_SCHEMA)
    status = serializers.ChoiceField(choices=PolicyStatus.values, help_text="The policy's status now.")
    version = serializers.IntegerField(help_text="The version these name and rules belong to.")
    currentVersion = serializers.IntegerField()  # noqa: N815
    source = serializers.ChoiceField(choices=["MANUAL", "GENERATED"])
    generation = with_schema(serializers.JSONField(), GENERATION_SCHEMA)
    createdBy = serializers.CharField()  # noqa: N815
    createdAt = serializers.DateTimeField()  # noqa: N815
    updatedAt = serializers.DateTimeField()  # noqa: N815
    activatedAt = serializers.DateTimeField(allow_null=True)  # noqa: N815


def policy_data(policy: Policy, version: PolicyVersion | None = None) -> dict[str, Any]:
    return {
        "urn": policy.urn,
        "airline": policy.airline,
        "name": version.name if version else policy.name,
        "scope": policy.scope,
        "rules": version.rules if version else policy.rules,
        "status": policy.status,
        "version": version.version if version else policy.version,
        "currentVersion": policy.version,
        "source": policy.source,
        "generation": policy.generation,
        "createdBy": version.created_by if version else policy.created_by,
        "createdAt": _iso(version.created_at if version else policy.created_at),
        "updatedAt": _iso(policy.updated_at),
        "activatedAt": _iso(policy.activated_at),
    }


_CANDIDATE = {
    "type": "object",
    "properties": {
        "urn": {"type": "string", "pattern": urn_pattern("policy")},
        "name": {"type": "string"},
        "scope": SCOPE_SCHEMA,
        "specificity": {"type": "string", "enum": list(SPECIFICITY_ORDER)},
        "score": {"type": "integer", "minimum": 0, "maximum": 7},
        "chosen": {"type": "boolean"},
    },
    "required": ["urn", "name", "scope", "specificity", "score", "chosen"],
}
WHY_SCHEMA = {
    "type": "object",
    "properties": {
        "order": {
            "type": "array",
            "items": {"type": "string", "enum": list(SPECIFICITY_ORDER)},
            "description": "The specificity order, most specific first.",
        },
        "candidates": {"type": "array", "items": _CANDIDATE, "description": "Every ACTIVE policy that matched."},
        "chosen": {"type": "string", "enum": list(SPECIFICITY_ORDER)},
        "explanation": {"type": "string"},
    },
    "required": ["order", "candidates", "chosen", "explanation"],
}
CONTEXT_SCHEMA = {
    "type": "object",
    "properties": {
        "airport": _NULLABLE_STRING,
        "tier": _NULLABLE_STRING,
        "cause": _NULLABLE_STRING,
        "caseUrn": _NULLABLE_STRING,
    },
    "required": ["airport", "tier", "cause", "caseUrn"],
    "description": "The context resolved for (the case's airport and cause fill what the query left out).",
}
RELAXATION_SCHEMA = {
    "type": "object",
    "properties": {
        "rule": {"type": "string"},
        "value": {},
        "reason": {"type": "string"},
        "source": {"type": "string"},
    },
    "required": ["rule", "value", "reason", "source"],
}


class PolicyResolutionSerializer(serializers.Serializer):
    policy = PolicySerializer()
    effectiveRules = with_schema(serializers.JSONField(), RULES_SCHEMA)  # noqa: N815
    relaxations = with_schema(
        serializers.JSONField(),
        {
            "type": "array",
            "items": RELAXATION_SCHEMA,
            "description": "Case-level relaxations applied (manual review's relax action, for this case only).",
        },
    )
    context = with_schema(serializers.JSONField(), CONTEXT_SCHEMA)
    why = with_schema(serializers.JSONField(), WHY_SCHEMA)


def resolution_data(resolution: Resolution) -> dict[str, Any]:
    chosen = resolution.policy
    candidates = [
        {
            "urn": policy.urn,
            "name": policy.name,
            "scope": policy.scope,
            "specificity": specificity_label(policy.scope),
            "score": specificity(policy.scope),
            "chosen": policy.pk == chosen.pk,
        }
        for policy in resolution.candidates
    ]
    label = specificity_label(chosen.scope)
    others = len(candidates) - 1
    explanation = f"{chosen.name} ({chosen.urn}) is the most specific active policy that matches: {label}" + (
        f", ahead of {others} less specific candidate(s)." if others else ", the only candidate."
    )
    return {
        "policy": policy_data(chosen),
        "effectiveRules": resolution.effective_rules,
        "relaxations": [
            {"rule": r.rule, "value": r.value, "reason": r.reason, "source": r.source} for r in resolution.relaxations
        ],
        "context": resolution.context,
        "why": {
            "order": list(SPECIFICITY_ORDER),
            "candidates": candidates,
            "chosen": label,
            "explanation": explanation,
        },
    }
