"""Events of the policies domain.

``policy:activated`` is internal (no Socket.IO room: consumers are Celery tasks registered with the
outbox, e.g. a cache of resolved rules), declared in the event registry (:mod:`nexa.platform.events`).
"""

from typing import Any

from nexa.platform import events as registry
from nexa.platform.events import Annotated, Audience, TypedDict, Urn
from nexa.platform.outbox import publish

POLICY_ACTIVATED = "policy:activated"


class PolicyActivatedPayload(TypedDict):
    policyUrn: Annotated[str, Urn("policy")]
    version: int
    scope: dict[str, str]
    archivedPolicyUrn: str | None
    activatedBy: str


registry.declare(
    POLICY_ACTIVATED,
    payload=PolicyActivatedPayload,
    audience=Audience.INTERNAL,
    description="A policy became the ACTIVE one of its scope (the previous one, if any, was archived)",
)


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
