"""Reads of the review domain. Every query is scoped to the principal's airline: another airline's item
is not found (a 404 problem), and a filter naming another airline's case simply matches nothing."""

from typing import Any

from django.db.models import QuerySet

from nexa.platform.auth import Principal
from nexa.platform.tenancy import for_principal, get_for_principal
from nexa.platform.urns import parse_urn
from review import reports
from review.models import UNRESOLVED_STATES, ReviewItem, ReviewPage


def review_item_get(*, principal: Principal, review_urn: str) -> ReviewItem:
    """The item, or a 404 problem (also for another airline's); a malformed URN is a 400."""
    urn = parse_urn(review_urn, "review")
    return get_for_principal(ReviewItem.objects.select_related("case"), principal, id=urn.id)


def review_items_list(
    *,
    principal: Principal,
    state: str | None = None,
    category: str | None = None,
    priority: str | None = None,
    case_urn: str | None = None,
    assigned_to: str | None = None,
    unresolved_only: bool = False,
) -> QuerySet[ReviewItem]:
    """The airline's items, filtered; the caller orders them (by ``sla_due_at``, ``id``).
    ``unresolved_only`` (the booking queue without a ``state`` filter) leaves RESOLVED items out."""
    # No select_related("case"): a listed item renders its case as a URN from case_id (bench/review.py).
    items = for_principal(ReviewItem.objects.all(), principal)
    if state is not None:
        items = items.filter(state=state)
    elif unresolved_only:
        items = items.filter(state__in=UNRESOLVED_STATES)
    if category is not None:
        items = items.filter(category=category)
    if priority is not None:
        items = items.filter(priority=priority)
    if case_urn is not None:
        items = items.filter(case_id=parse_urn(case_urn, "case").id)
    if assigned_to is not None:
        items = items.filter(assigned_to=assigned_to)
    return items


def review_page_id_for(*, review_urn: str, version: int) -> str | None:
    """The page an escalation wrote (from its ``review:escalated`` event), or None (a page-less event)."""
    page_id = (
        ReviewPage.objects.filter(item_id=parse_urn(review_urn, "review").id, item_version=version)
        .values_list("id", flat=True)
        .first()
    )
    return str(page_id) if page_id else None


def review_weekly_report(
    *, principal: Principal, week: str, progress: reports.Progress | None = None
) -> dict[str, Any]:
    """The weekly ops report of the principal's airline over the items created in ISO ``week`` (``2026-W48``,
    UTC); a bad week is a 400 problem naming ``week``. See :mod:`review.reports`."""
    try:
        iso_week = reports.parse_iso_week(week)
    except ValueError as error:
        raise reports.week_problem(str(error)) from None
    return reports.weekly_report(principal=principal, week=iso_week, progress=progress)
