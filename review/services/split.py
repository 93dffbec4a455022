"""``split``: the item's passenger group becomes new groups (spec 001 § Operator workflow, step 3, "Split a
mixed-tier group"; docs/review.md § Split)."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from audit import services as audit
from cases import services as case_services
from nexa.platform.auth import Principal
from nexa.platform.problems import validation_problem
from review import events
from review.models import ReviewItem
from review.services._actions import _action_entry, _actor_holds, _record_action
from review.services._common import _lock_item, _snapshot

SPLIT = "split"


def review_item_split(
    *,
    principal: Principal,
    review_urn: str,
    into: list[list[str]],
    reason: str,
    agent_action_urn: str | None = None,
) -> ReviewItem:
    """Split the item's affected group(s) into the groups of ``into`` (``[[subCaseUrn, …], …]``, every passenger
    of the group exactly once; a passenger missing, listed twice or not of the group is a 422 naming them).

    One transaction: the item is locked; it must be unresolved and not held by anyone else (409; an item
    nobody holds is claimed for the actor); :func:`cases.services.passenger_group_split` replaces the groups
    (audited, ``subcase:state-changed`` per passenger; the passengers keep their status). The item's affected
    groups become the new ones, an ``actions`` entry records old and new groups, the item stays unresolved
    (resolve SPLIT after: its passengers in MANUAL_REVIEW go back to GROUPED for a new demand), is audited
    ``review.split`` and publishes ``review:split``."""
    if not isinstance(reason, str) or not reason.strip():
        raise validation_problem([{"field": "reason", "message": "must be a non-blank string"}])
    with transaction.atomic():
        now = timezone.now()
        item = _lock_item(principal=principal, review_urn=review_urn)
        before = _snapshot(item)
        item = _actor_holds(item, principal, now, action=SPLIT)
        groups, dissolved = case_services.passenger_group_split(
            principal=principal,
            case_id=item.case_id,
            group_urns=item.affected_group_urns,
            into=into,
            reason=f"{item.urn} split: {reason}",
        )
        new_groups = [
            {"groupUrn": group.urn, "label": group.label, "mixedTier": group.mixed_tier, "subCaseUrns": members}
            for group, members in zip(groups, into, strict=True)
        ]
        entry = _action_entry(
            action=SPLIT,
            params={"into": into},
            reason=reason,
            principal=principal,
            now=now,
            agent_action_urn=agent_action_urn,
            result={"dissolvedGroupUrns": dissolved, "groups": new_groups},
        )
        item = _record_action(
            item,
            entry,
            agent_action_urn=agent_action_urn,
            extra={
                "affected_groups": [group.label for group in groups],
                "affected_group_urns": [group.urn for group in groups],
            },
        )
        audit.record(
            principal=principal,
            action="review.split",
            entity_urn=item.urn,
            case_urn=item.case.urn,
            reason=reason,
            before={**before, "groupUrns": dissolved},
            after={**_snapshot(item), "groups": new_groups},
        )
        events.publish_review_event(events.REVIEW_SPLIT, item)
    return item
