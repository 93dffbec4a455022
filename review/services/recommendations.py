"""The item's recommendations, written by the exception agent (docs/agent.md).

The agent app sits above review in the layers: it calls this service; review never imports the agent.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from audit import services as audit
from nexa.platform.auth import Principal
from nexa.platform.problems import validation_problem
from review import events
from review.models import ReviewItem, ReviewState
from review.services._common import _illegal_transition, _lock_item, _save

RECOMMENDATIONS_MAX = 3
RECOMMENDATION_ACTIONS = ("rebook", "relaxPolicy", "split", "override")


def _checked(recommendations: Any) -> list[dict[str, Any]]:
    errors = []
    if not isinstance(recommendations, list) or len(recommendations) > RECOMMENDATIONS_MAX:
        errors.append({"field": "recommendations", "message": f"a list of at most {RECOMMENDATIONS_MAX}"})
        raise validation_problem(errors)
    for index, entry in enumerate(recommendations):
        if not isinstance(entry, dict):
            errors.append({"field": f"recommendations[{index}]", "message": "an object"})
            continue
        if entry.get("action") not in RECOMMENDATION_ACTIONS:
            errors.append(
                {"field": f"recommendations[{index}].action", "message": "rebook, relaxPolicy, split or override"}
            )
        if not entry.get("source"):
            errors.append({"field": f"recommendations[{index}].source", "message": "who recommends it (e.g. agent)"})
        if not str(entry.get("reason") or "").strip():
            errors.append({"field": f"recommendations[{index}].reason", "message": "the reasoning, in words"})
    if errors:
        raise validation_problem(errors)
    return [dict(entry) for entry in recommendations]


def review_item_recommendations_set(
    *, principal: Principal, review_urn: str, recommendations: list[dict[str, Any]]
) -> ReviewItem:
    """Replace the item's ranked recommendations (spec 001: ``[{action, hotelUrn?, fields?, value?, reason,
    source}]``, at most three, most viable first). Audited (``review.recommended``), ``review:recommended``.
    A RESOLVED item is a 409: nothing is left to recommend."""
    checked = _checked(recommendations)
    with transaction.atomic():
        item = _lock_item(principal=principal, review_urn=review_urn)
        if item.state == ReviewState.RESOLVED:
            raise _illegal_transition(item, "recommend")
        before = {"recommendations": item.recommendations, "version": item.version}
        item = _save(item, {"recommendations": checked})
        audit.record(
            principal=principal,
            action="review.recommended",
            entity_urn=item.urn,
            case_urn=item.case.urn,
            before=before,
            after={"recommendations": checked, "version": item.version},
        )
        events.publish_review_event(events.REVIEW_RECOMMENDED, item)
    return item
