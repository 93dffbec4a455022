"""What the review services share: constants, problems, the item lock, the OCC save, the FSM step."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import structlog
from django.conf import settings
from django.db.models import F
from django.utils import timezone
from django_fsm import can_proceed

from nexa.platform.auth import Principal
from nexa.platform.models import TenantSettings
from nexa.platform.problems import Problem, conflict_problem
from nexa.platform.roles import Role
from nexa.platform.tenancy import get_for_principal
from nexa.platform.urns import parse_urn
from review.models import (
    ReviewCategory,
    ReviewItem,
    ReviewResolution,
)

logger = structlog.get_logger(__name__)

SYSTEM_REVIEW_ACTOR = "urn:nexa:system:review"
SYSTEM_SLA_ACTOR = "urn:nexa:system:sla"
SWEEP_BATCH = 500
PAGE_MAX_ATTEMPTS = 5
PAGE_BACKOFF_MAX_SECONDS = 300
PAGE_TIMEOUT_SECONDS = 5.0
DEFAULT_CLAIM_LEASE_SECONDS = 900
ATTEMPTED_HOTELS_MAX = 50
REASON_MAX_LENGTH = 2000

# What each resolution does to the affected sub-cases still in MANUAL_REVIEW (docs/review.md):
# back to GROUPED, so demand/allocation picks them up again; cancelled; or left as the booking left them
# (REBOOKED/OVERRIDDEN are reached through the rebook/override actions, which book them themselves).
RESOLUTION_SUBCASE_TRANSITION: dict[str, str | None] = {
    ReviewResolution.NO_ACTION: "return_to_grouped",
    ReviewResolution.RELAXED: "return_to_grouped",
    ReviewResolution.SPLIT: "return_to_grouped",
    ReviewResolution.CANCELLED: "cancel",
    ReviewResolution.REBOOKED: None,
    ReviewResolution.OVERRIDDEN: None,
}

# The failure events and the categories each may carry (anything else falls back to the first).
ALLOCATION_CATEGORIES = (
    ReviewCategory.ALLOCATION_FAILED,
    ReviewCategory.POLICY_VIOLATION,
    ReviewCategory.MIXED_TIER_GROUP,
    ReviewCategory.DATA_INCOMPLETE,
)
BOOKING_CATEGORIES = (ReviewCategory.BOOKING_FAILED, ReviewCategory.PARTIAL_FULFILLMENT, ReviewCategory.PAYMENT_FAILED)
SAGA_FAILED, ALLOCATION_FAILED, BOOKING_FAILED = "saga:failed", "allocation:failed", "booking:failed"
FAILURE_EVENTS = (SAGA_FAILED, ALLOCATION_FAILED, BOOKING_FAILED)


def claim_lease() -> dt.timedelta:
    return dt.timedelta(seconds=getattr(settings, "NEXA_REVIEW_CLAIM_LEASE_SECONDS", DEFAULT_CLAIM_LEASE_SECONDS))


def sla_minutes(*, airline: str, priority: str) -> int:
    """The airline's SLA for ``priority`` (TenantSettings), else the environment's default."""
    field = f"sla_{priority.lower()}_minutes"
    configured = TenantSettings.objects.filter(airline=airline).values_list(field, flat=True).first()
    if configured:
        return int(configured)
    return int(getattr(settings, f"NEXA_REVIEW_SLA_{priority.upper()}_MINUTES"))


def system_principal(airline: str) -> Principal:
    return Principal(airline=airline, role=Role.ADMIN, operator_urn=SYSTEM_REVIEW_ACTOR, subject="system:review")


def _iso(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z") if value else None


# --- problems ------------------------------------------------------------------------------------------


def _illegal_transition(item: ReviewItem, action: str) -> Problem:
    allowed = sorted(t.name for t in item.get_available_state_transitions())
    return conflict_problem(
        slug="illegal-transition",
        title="Not possible in the item's current state",
        detail=f"{item.urn} is {item.state}; {action!r} is not possible from there.",
        currentState=item.state,
        allowedTransitions=allowed,
        version=item.version,
    )


def _claimed_by_other(item: ReviewItem) -> Problem:
    return conflict_problem(
        slug="review-claimed",
        title="Another operator holds this item",
        detail=f"{item.urn} is claimed by {item.assigned_to} until {_iso(item.claimed_until)}.",
        assignedTo=item.assigned_to,
        claimedUntil=_iso(item.claimed_until),
    )


def _not_claimed(item: ReviewItem) -> Problem:
    return conflict_problem(
        slug="review-not-claimed",
        title="Claim the item first",
        detail=f"{item.urn} is not claimed by you; claim it before acting on it.",
        assignedTo=item.assigned_to or None,
    )


# --- shared steps --------------------------------------------------------------------------------------


def _lock_item(*, principal: Principal, review_urn: str) -> ReviewItem:
    urn = parse_urn(review_urn, "review")
    return get_for_principal(
        ReviewItem.objects.select_for_update(of=("self",)).select_related("case"), principal, id=urn.id
    )


def _live_holder(item: ReviewItem, now: dt.datetime) -> str | None:
    if item.assigned_to and item.claimed_until is not None and item.claimed_until > now:
        return item.assigned_to
    return None


def _require_claimer(item: ReviewItem, principal: Principal, now: dt.datetime) -> None:
    """Only the claimer acts on an item. A claimer whose lease lapsed still may, as long as nobody else
    claimed it since (a claim by anyone else replaces ``assigned_to``)."""
    if item.assigned_to == principal.operator_urn:
        return
    if _live_holder(item, now):
        raise _claimed_by_other(item)
    raise _not_claimed(item)


def _snapshot(item: ReviewItem) -> dict[str, Any]:
    return {
        "state": item.state,
        "priority": item.priority,
        "assignedTo": item.assigned_to or None,
        "claimedUntil": _iso(item.claimed_until),
        "version": item.version,
    }


def _save(item: ReviewItem, changes: Mapping[str, Any]) -> ReviewItem:
    """Write ``changes`` with the OCC check (the row lock makes a mismatch a bug, never a race lost)."""
    expected = item.version
    changes = {**changes, "updated_at": timezone.now()}
    updated = ReviewItem.objects.filter(pk=item.pk, version=expected).update(**changes, version=F("version") + 1)
    if not updated:
        current = ReviewItem.objects.filter(pk=item.pk).values_list("version", flat=True).first()
        raise conflict_problem(
            slug="version-conflict",
            title="The item changed since you read it",
            detail=f"{item.urn} is at version {current}, not {expected}.",
            version=current,
        )
    for name, value in changes.items():
        setattr(item, name, value)
    item.version = expected + 1
    return item


def _apply(item: ReviewItem, action: str) -> None:
    """The FSM transition in memory (``claim``, ``escalate``, ``resolve``), or a 409."""
    method = getattr(item, action)
    if not can_proceed(method):
        raise _illegal_transition(item, action)
    method()
