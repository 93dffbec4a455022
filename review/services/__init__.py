"""Commands of the review domain: every write to review items goes through one of these.

Each runs in one transaction: it locks the item row (``SELECT … FOR UPDATE``), applies one state-machine
transition (django-fsm) with a ``version`` check, writes an audit row and publishes its ``review:*``
event through the outbox. See docs/review.md for the lifecycle.

Modules: :mod:`._common` (constants, problems, the item lock, the OCC save), :mod:`.items` (the
lifecycle), :mod:`.sla` (the SLA sweep and the pages); the actions (rebook, relax, split, override) each
have their own module.

* :func:`review_item_open` — the system creates an item for one failure occurrence (idempotent by the
  outbox event's URN); :func:`review_item_from_event` maps the three failure events onto it.
* :func:`review_item_claim`, :func:`review_item_assign` — a lease on the item for one operator.
* :func:`review_item_resolve` — only the claimer; the affected sub-cases go back into the normal flow.
* :func:`review_item_escalate` — priority one level up (HIGH stays HIGH), state ESCALATED, a page.
* :func:`review_item_rebook`, :func:`review_item_override` (:mod:`.rebook`) — book the item's passengers at
  a hotel through the room sagas, or record the manual booking an operator confirmed by phone.
* :func:`review_item_relax` (:mod:`.relax`) — relax the policy for the item's case only, then allocate its
  passengers again; :func:`review_item_split` (:mod:`.split`) — split the item's group into new groups.
  Both claim an unheld item for the actor and append to ``ReviewItem.actions`` (:mod:`._actions`).
* :func:`review_item_recommendations_set` — the exception agent writes its ranked recommendations.
* :func:`review_sla_sweep` — the beat task's work: escalate every breached item once and page the on-call;
  :func:`review_page_deliver` — one signed delivery attempt of a page (``review/paging.py``).
"""

from review.services._common import (
    ALLOCATION_CATEGORIES,
    ALLOCATION_FAILED,
    ATTEMPTED_HOTELS_MAX,
    BOOKING_CATEGORIES,
    BOOKING_FAILED,
    DEFAULT_CLAIM_LEASE_SECONDS,
    FAILURE_EVENTS,
    PAGE_BACKOFF_MAX_SECONDS,
    PAGE_MAX_ATTEMPTS,
    PAGE_TIMEOUT_SECONDS,
    REASON_MAX_LENGTH,
    SAGA_FAILED,
    SWEEP_BATCH,
    SYSTEM_REVIEW_ACTOR,
    SYSTEM_SLA_ACTOR,
    claim_lease,
    sla_minutes,
    system_principal,
)
from review.services.items import (
    review_item_assign,
    review_item_claim,
    review_item_escalate,
    review_item_from_event,
    review_item_open,
    review_item_resolve,
)
from review.services.rebook import review_item_override, review_item_rebook
from review.services.recommendations import review_item_recommendations_set
from review.services.relax import NOT_RELAXABLE_CATEGORIES, review_item_relax
from review.services.sla import (
    breached_items,
    page_backoff_seconds,
    page_body,
    page_max_attempts,
    review_page_deliver,
    review_sla_sweep,
    sla_principal,
)
from review.services.split import review_item_split

__all__ = [
    "ALLOCATION_CATEGORIES",
    "ALLOCATION_FAILED",
    "ATTEMPTED_HOTELS_MAX",
    "BOOKING_CATEGORIES",
    "BOOKING_FAILED",
    "DEFAULT_CLAIM_LEASE_SECONDS",
    "FAILURE_EVENTS",
    "NOT_RELAXABLE_CATEGORIES",
    "PAGE_BACKOFF_MAX_SECONDS",
    "PAGE_MAX_ATTEMPTS",
    "PAGE_TIMEOUT_SECONDS",
    "REASON_MAX_LENGTH",
    "SAGA_FAILED",
    "SWEEP_BATCH",
    "SYSTEM_REVIEW_ACTOR",
    "SYSTEM_SLA_ACTOR",
    "breached_items",
    "claim_lease",
    "page_backoff_seconds",
    "page_body",
    "page_max_attempts",
    "review_item_assign",
    "review_item_claim",
    "review_item_escalate",
    "review_item_from_event",
    "review_item_open",
    "review_item_override",
    "review_item_rebook",
    "review_item_recommendations_set",
    "review_item_relax",
    "review_item_resolve",
    "review_item_split",
    "review_page_deliver",
    "review_sla_sweep",
    "sla_minutes",
    "sla_principal",
    "system_principal",
]
