"""Events of the policies domain.

``policy:activated`` is internal (no Socket.IO room: consumers are Celery tasks registered with the
outbox, e.g. a cache of resolved rules). :data:`EVENTS` declares each event once — name, payload
schema, audience — in the shape issue 10's event registry takes, so it can be registered there.
"""

from typing import Any, TypedDict

from nexa.platform.outbox import publish

POLICY_ACTIVATED = "policy:activated"


class PolicyActivatedPayload(TypedDict):
    policyUrn: str
    version: int
    scope: dict[str, str]
    archivedPolicyUrn: str | None
    activatedBy: str


EVENTS: dict[str, dict[str, Any]] = {
    POLICY_ACTIVATED: {
        "audience": "internal",
        "payload": PolicyActivatedPayload,
        "schema": {
            "type": "object",
            "properties": {
                "policyUrn": {"type": "string"},
                "version": {"type": "integer"},
                "scope": {"type": "object"},
                "archivedPolicyUrn": {"type": ["string", "null"]},
                "activatedBy": {"type": "string"},
            },
            "required": ["policyUrn", "version", "scope", "archivedPolicyUrn", "activatedBy"],
        },
    },
}


def policy_activated_payload(
    *, policy_urn: str, version: int, scope: dict[str, str], archived_policy_urn: str | None, activated_by: str
) -> PolicyActivatedPayload:
    return {
        "policyUrn": policy_urn,
        "version": version,
        "scope": dict(scope),
        "archivedPolicyUrn": archived_policy_urn,
        "activatedBy": activated_by,
    }


def publish_policy_activated(*, airline: str, **fields: Any) -> None:
    """Call inside the activating transaction (the outbox delivers after commit). Internal: no rooms."""
    publish(POLICY_ACTIVATED, dict(policy_activated_payload(**fields)), [], airline=airline)
