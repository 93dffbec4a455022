"""The SLA sweep (beat task on the `sla` queue) and the signed on-call pages it sends."""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

import httpx
import structlog
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from audit import services as audit
from nexa.platform.auth import Principal
from nexa.platform.models import TenantSettings
from nexa.platform.roles import Role
from review import events, paging
from review.models import (
    PageStatus,
    PageTrigger,
    ReviewItem,
    ReviewPage,
    ReviewState,
)
from review.services._common import (
    PAGE_BACKOFF_MAX_SECONDS,
    PAGE_MAX_ATTEMPTS,
    PAGE_TIMEOUT_SECONDS,
    SWEEP_BATCH,
    SYSTEM_SLA_ACTOR,
    _iso,
)
from review.services.items import _escalation_audit, _escalation_of

logger = structlog.get_logger(__name__)

# --- the SLA sweep and the on-call pages -------------------------------------------------------------------


def sla_principal(airline: str) -> Principal:
    """The sweep acts as this principal (audit actor ``urn:nexa:system:sla``)."""
    return Principal(airline=airline, role=Role.ADMIN, operator_urn=SYSTEM_SLA_ACTOR, subject="system:sla")


def breached_items(*, now: dt.datetime):
    """Unresolved items whose SLA due time has passed, most overdue first: the partial index
    ``review_item_sla_open_idx`` answers it (its condition is the query's ``NOT (state = 'RESOLVED')``)."""
    return ReviewItem.objects.filter(sla_due_at__lte=now).exclude(state=ReviewState.RESOLVED).order_by("sla_due_at")


def review_sla_sweep(*, now: dt.datetime | None = None, limit: int = SWEEP_BATCH) -> list[str]:
    """Escalate every unresolved item whose SLA is breached, once per breach, and page the on-call.

    One transaction per batch: the breached items are claimed with ``FOR UPDATE SKIP LOCKED`` (two sweeps
    never take the same item; an operator's write in progress is taken next time) through the partial index
    on ``sla_due_at`` of unresolved items, so resolved items cost nothing. Escalating moves ``sla_due_at``
    forward, which is what makes a breach page exactly once. The items are written with one UPDATE per
    (new priority, due time), and the pages, the audit rows (one per item) and the ``review:escalated``
    events (one per item) with one INSERT each.
    Returns the escalated items' URNs."""
    now = now or timezone.now()
    sla_cache: dict[tuple[str, str], int] = {}  # one settings read per airline and priority per sweep
    with transaction.atomic():
        breached = list(
            breached_items(now=now).select_for_update(skip_locked=True, of=("self",)).select_related("case")[:limit]
        )
        pages, batches, audit_rows = [], {}, []
        for item in breached:
            reason = f"{item.priority} SLA breached at {_iso(item.sla_due_at)}"
            before, page = _escalation_of(item, now=now, trigger=PageTrigger.SLA_BREACH, sla_cache=sla_cache)
            pages.append(page)
            batches.setdefault((item.priority, item.sla_due_at), []).append(item.pk)
            audit_rows.append(
                _escalation_audit(
                    item, page, before, principal=sla_principal(item.airline), action="review.sla_breached",
                    reason=reason,
                )
            )  # fmt: skip
        # One INSERT each for the audit rows and the events (one per item: a row per INSERT was ~90 % of the
        # sweep's time, bench/review.py); the same rows the manual escalation writes one at a time.
        audit.record_many(audit_rows)
        events.publish_review_events(events.REVIEW_ESCALATED, breached)
        for (priority, due), ids in batches.items():
            ReviewItem.objects.filter(pk__in=ids).update(
                state=ReviewState.ESCALATED,
                priority=priority,
                sla_due_at=due,
                escalations=F("escalations") + 1,
                version=F("version") + 1,
                updated_at=now,
            )
        ReviewPage.objects.bulk_create(pages)
    return [item.urn for item in breached]


def page_max_attempts() -> int:
    return int(getattr(settings, "NEXA_REVIEW_PAGE_MAX_ATTEMPTS", PAGE_MAX_ATTEMPTS))


def page_backoff_seconds(attempt: int) -> float:
    """2, 4, 8 … s after the n-th failed attempt, at most 5 minutes."""
    return float(min(PAGE_BACKOFF_MAX_SECONDS, 2**attempt))


def page_body(page: ReviewPage) -> dict[str, Any]:
    item = page.item
    return {
        "type": "review.sla_breached" if page.trigger == PageTrigger.SLA_BREACH else "review.escalated",
        "pageId": str(page.id),
        "airline": page.airline,
        "reviewUrn": item.urn,
        "caseUrn": item.case.urn,
        "category": item.category,
        "priority": page.priority_after,
        "previousPriority": page.priority_before,
        "slaDueAt": _iso(page.sla_due_at_before),
        "state": item.state,
        "assignedTo": item.assigned_to or None,
        "escalations": item.escalations,
        "link": f"/v1/manual-review/{item.urn}",
    }


def review_page_deliver(*, page_id: str) -> float | None:
    """One delivery attempt of a page: POST the signed body to the airline's alerting webhook and log it.
    Returns the seconds to wait before the next attempt, or ``None`` when the page is settled (DELIVERED,
    FAILED after ``page_max_attempts()``, SKIPPED when the airline has no webhook, or already settled).

    The page row stays locked during the call (bounded by ``PAGE_TIMEOUT_SECONDS``), so two deliveries of the
    same page never run at once; a receiver may still see a retry of an attempt whose answer was lost, and
    dedupes on ``pageId``."""
    with transaction.atomic():
        page = (
            ReviewPage.objects.select_for_update(of=("self",)).select_related("item__case").filter(pk=page_id).first()
        )
        if page is None or page.status != PageStatus.PENDING:
            return None
        tenant = TenantSettings.objects.filter(airline=page.airline).first()
        url = tenant.alert_webhook_url if tenant else ""
        at = timezone.now()
        if not url:
            page.status = PageStatus.SKIPPED
            page.log = [*page.log, {"at": _iso(at), "url": "", "status": None, "error": "no alerting webhook"}]
            page.save(update_fields=["status", "log"])
            logger.warning("review_page_skipped", page_id=str(page.id), airline=page.airline)
            return None
        body = json.dumps(page_body(page), separators=(",", ":"), sort_keys=True).encode("utf-8")
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            paging.TIMESTAMP_HEADER: str(timestamp),
            paging.SIGNATURE_HEADER: paging.sign(secret=tenant.alert_webhook_secret, timestamp=timestamp, body=body),
            "X-Nexa-Page-Id": str(page.id),
        }
        started = time.monotonic()
        status, error = None, ""
        try:
            response = httpx.post(url, content=body, headers=headers, timeout=PAGE_TIMEOUT_SECONDS)
            status = response.status_code
            if not 200 <= status < 300:
                error = response.text[:200]
        except httpx.HTTPError as failure:
            error = f"{type(failure).__name__}: {failure}"[:300]
        attempt = {"at": _iso(at), "url": url, "status": status, "error": error, "ms": _elapsed_ms(started)}
        page.attempts += 1
        page.log = [*page.log, attempt]
        wait = None
        if status is not None and 200 <= status < 300:
            page.status, page.delivered_at = PageStatus.DELIVERED, timezone.now()
        elif page.attempts >= page_max_attempts():
            page.status = PageStatus.FAILED
        else:
            wait = page_backoff_seconds(page.attempts)
        page.save(update_fields=["status", "attempts", "log", "delivered_at"])
        log = logger.warning if page.status == PageStatus.FAILED else logger.info
        log(
            "review_page_attempt", page_id=str(page.id), airline=page.airline, attempt=page.attempts,
            http_status=status, error=error or None, page_status=page.status,
        )  # fmt: skip
    return wait


def _elapsed_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
