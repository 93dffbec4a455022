"""Celery tasks of the agent domain: the thin outbox consumer of ``review:created`` (registered in
``AgentConfig.ready``). Review never imports the agent: it learns of new items only through this event."""

from celery import shared_task

from agent import services
from nexa.platform.context import bound_context
from review import events

QUEUE = "default"
REVIEW_CREATED = events.REVIEW_CREATED
TRIAGE_ON_CREATED = "agent.tasks.agent_triage_on_review_created"


@shared_task(name=TRIAGE_ON_CREATED, acks_late=True, ignore_result=True, queue=QUEUE)
def agent_triage_on_review_created(
    *, event_id: str, payload: dict, airline: str, correlation_urn: str = "", **_
) -> str | None:
    """Triage the new item when the airline enabled the agent; idempotent by the event's URN."""
    with bound_context(correlation_urn=correlation_urn or None):
        triage = services.agent_triage_on_created(
            event_urn=event_id, airline=airline, review_urn=str((payload or {}).get("reviewUrn") or "")
        )
    return triage.run.item.urn if triage is not None else None
