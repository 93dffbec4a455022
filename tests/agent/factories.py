"""Helpers of the agent tests: proposals as a triage writes them (the plan hash over the item's facts)."""

import datetime as dt

from django.utils import timezone

from agent import services
from agent.models import AgentAction, AgentActionState


def proposal(item, *, action="rebook", params=None, state=AgentActionState.PROPOSED, approved_by="",
             expires_in=dt.timedelta(minutes=30), rank=1) -> AgentAction:  # fmt: skip
    params = params if params is not None else {"hotelUrn": "urn:nexa:hotel:0190a0a0-0000-7000-8000-000000000001"}
    return AgentAction.objects.create(
        airline=item.airline,
        item=item,
        rank=rank,
        action=action,
        params=params,
        rationale="policy-compliant; 18 km; quote fresh",
        estimated_cost={"amount": "190.00", "currency": "EUR"},
        plan_hash=services.plan_hash(action=action, params=params, item=item),
        item_version=item.version,
        expires_at=timezone.now() + expires_in,
        state=state,
        approved_by=approved_by,
        approved_at=timezone.now() if approved_by else None,
    )
