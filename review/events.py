"""Events of the review domain, declared in the event registry (:mod:`nexa.platform.events`).

``review:created``, ``review:claimed``, ``review:resolved``, ``review:escalated``, ``review:rebooked``,
``review:overridden``, ``review:relaxed``, ``review:split``, ``review:recommended`` go to the case room
with one payload shape (URNs, enums, an operator URN and instants: no personal data).

Audience INTERNAL, not CLIENT: spec 000's server-event table is the exact allow-list of what sockets
and the SSE stream carry (``tests/cases/test_events.py`` holds it), and it has no review events. They
reach the outbox (and so any consumer, such as the exception agent) now; making them client events is
a decision for spec 000's table (docs/decisions.md, "Issue 13 — review items").
"""

from typing import Any

from nexa.platform import events as registry
from nexa.platform.events import Annotated, Audience, Room, TypedDict, Urn
from nexa.platform.outbox import publish

REVIEW_CREATED = "review:created"
REVIEW_CLAIMED = "review:claimed"
REVIEW_RESOLVED = "review:resolved"
REVIEW_ESCALATED = "review:escalated"
REVIEW_REBOOKED = "review:rebooked"
REVIEW_OVERRIDDEN = "review:overridden"
REVIEW_RELAXED = "review:relaxed"
REVIEW_SPLIT = "review:split"
REVIEW_RECOMMENDED = "review:recommended"
REVIEW_EVENTS = (
    REVIEW_CREATED,
    REVIEW_CLAIMED,
    REVIEW_RESOLVED,
    REVIEW_ESCALATED,
    REVIEW_REBOOKED,
    REVIEW_OVERRIDDEN,
    REVIEW_RELAXED,
    REVIEW_SPLIT,
    REVIEW_RECOMMENDED,
)


class ReviewChanged(TypedDict):
    reviewUrn: Annotated[str, Urn("review")]
    caseUrn: Annotated[str, Urn("case")]
    category: str
    priority: str
    state: str
    assignedTo: str | None
    resolution: str | None
    slaDueAt: str
    version: int


_DESCRIPTIONS = {
    REVIEW_CREATED: "A manual-review item was created for a failure automation could not solve",
    REVIEW_CLAIMED: "An operator claimed (or was assigned) a review item",
    REVIEW_RESOLVED: "A review item was resolved; its sub-cases went back into the normal flow",
    REVIEW_ESCALATED: "A review item's priority was raised one level",
    REVIEW_REBOOKED: "An operator rebooked a review item's passengers at a hotel (room sagas started)",
    REVIEW_OVERRIDDEN: "An operator recorded a manual booking for a review item's passengers",
    REVIEW_RELAXED: "The case's policy was relaxed from a review item and its passengers re-allocated",
    REVIEW_SPLIT: "A review item's passenger group was split into new groups",
    REVIEW_RECOMMENDED: "A review item's recommendations were (re)written by the exception agent",
}
for _name in REVIEW_EVENTS:
    registry.declare(
        _name,
        payload=ReviewChanged,
        audience=Audience.INTERNAL,
        rooms=[Room.CASE],
        description=_DESCRIPTIONS[_name],
    )


def _iso(value) -> str:
    return value.isoformat().replace("+00:00", "Z")


def review_payload(item) -> dict[str, Any]:
    return {
        "reviewUrn": item.urn,
        "caseUrn": item.case.urn,
        "category": item.category,
        "priority": item.priority,
        "state": item.state,
        "assignedTo": item.assigned_to or None,
        "resolution": item.resolution or None,
        "slaDueAt": _iso(item.sla_due_at),
        "version": item.version,
    }


def publish_review_event(event: str, item) -> None:
    """Inside the transaction that changed the item (the outbox delivers after commit)."""
    publish(
        event,
        review_payload(item),
        registry.rooms_for(event, case_urn=item.case.urn, airline=item.airline),
        airline=item.airline,
    )
