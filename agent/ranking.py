"""Viability ranking of the agent's options (pure: no database, no clock but the one passed in).

An option is one thing an operator could do about a review item: rebook the groups at a hotel, relax one
rule of the policy so a hotel becomes compliant, override the policy with a manual booking, or split a
group. Options are ranked by, in this order (issue 13, docs/agent.md § Ranking):

1. **Policy compliance** — compliant as the policy stands (0), compliant once one rule is relaxed for this
   case (1), not compliant (2). A compliant hotel 18 km away beats a cheaper one at 45 km outside a 25 km
   limit.
2. **Availability freshness** — a quote still valid with enough rooms (fresh) beats one whose quote has
   expired, that lacks rooms for the groups, or whose hotel just refused this item (stale).
3. **Cost** — the stay's total in the airline's currency (an option without a cost, a split, costs 0).
4. **Distance** — from the airport.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

COMPLIANT, RELAXABLE, NON_COMPLIANT = 0, 1, 2
COMPLIANCE_LABEL = {COMPLIANT: "policy-compliant", RELAXABLE: "compliant once relaxed", NON_COMPLIANT: "outside policy"}
TOP = 3


@dataclass
class Option:
    action: str  # rebook | relax | split | override (the agent action; the recommendation says relaxPolicy)
    params: dict[str, Any]
    compliance: int = COMPLIANT
    fresh: bool = True
    cost: Decimal | None = None  # the stay's total
    nightly: Decimal | None = None  # the nightly rate, airline currency
    currency: str | None = None
    distance_km: float | None = None
    hotel_urn: str | None = None
    hotel_name: str | None = None
    reasons: list[str] = field(default_factory=list)  # the facts behind the option, in words

    def key(self) -> tuple:
        return (
            self.compliance,
            not self.fresh,
            self.cost if self.cost is not None else Decimal(0),
            self.distance_km if self.distance_km is not None else 0.0,
            self.action,
            self.hotel_urn or "",
        )


def rank(options: list[Option], *, limit: int = TOP) -> list[Option]:
    """The ``limit`` most viable options; of several with the same action at the same hotel (one per vendor
    offer), only the most viable is kept."""
    seen: set[tuple[str, str]] = set()
    ranked = []
    for option in sorted(options, key=Option.key):
        identity = (option.action, option.hotel_urn or json.dumps(option.params, sort_keys=True, default=str))
        if identity in seen:
            continue
        seen.add(identity)
        ranked.append(option)
        if len(ranked) == limit:
            break
    return ranked


def is_fresh(*, expires_at: dt.datetime | None, rooms_available: int | None, rooms_needed: int,
             refused: bool, now: dt.datetime) -> bool:  # fmt: skip
    """A quote is fresh while it is valid, offers the rooms the groups need, and its hotel has not just
    refused this item (an attempted hotel that answered full or errored)."""
    if refused:
        return False
    if expires_at is not None and expires_at <= now:
        return False
    return rooms_available is None or rooms_available >= rooms_needed


def stay_cost(*, nights: int, rooms: int, nightly: Decimal) -> Decimal:
    return (Decimal(nights) * Decimal(rooms) * nightly).quantize(Decimal("0.01"))


def relaxation_cost(*, nights: int, rooms: int, nightly: Decimal, baseline: Decimal | None) -> dict[str, Decimal]:
    """What relaxing the policy for this case costs: nights x rooms x (the relaxed hotel's rate - the rate
    the policy would have paid, ``baseline``; never negative), and the stay's total at that hotel."""
    delta = max(nightly - baseline, Decimal(0)) if baseline is not None else Decimal(0)
    return {
        "nightlyDelta": delta.quantize(Decimal("0.01")),
        "totalDelta": stay_cost(nights=nights, rooms=rooms, nightly=delta),
        "total": stay_cost(nights=nights, rooms=rooms, nightly=nightly),
    }
