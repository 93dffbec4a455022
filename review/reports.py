"""The weekly ops report of manual review (spec 001 § Post-mortem): what an airline's review items of one ISO
week say about its policies, its providers and the exception agent.

**Which items.** The airline's items **created** in the ISO week, UTC: ``2026-W48`` is
``[2026-11-23T00:00Z, 2026-11-30T00:00Z)`` (Monday 00:00 UTC to the next Monday, half-open, as every time range
in the API). Their state is read when the report is made: an item of that week resolved later counts as
resolved; a report of a past week may therefore change until its last item is resolved.

**What is computed** (:func:`weekly_report`), in one pass over the items (``values()`` in chunks, never model
instances) plus a few bulk look-ups:

* ``byCategory``: per category (all seven, zeros included) ``created``, ``resolved`` (state RESOLVED) and
  ``open`` (OPEN, CLAIMED or ESCALATED: not yet resolved);
* ``mttrMinutes``: mean of ``resolvedAt - createdAt`` in minutes over the resolved items, overall and per
  category (``null`` when none was resolved);
* ``agentAcceptedShare``: resolved items whose ``accepted_agent_action_urn`` is set (an executed agent action
  acted on them) / resolved items, 0 to 1 (``null`` when none was resolved);
* ``topFailingPolicies``: the five policies (or uncovered scopes) with the most policy failures: an
  ALLOCATION_FAILED item counts against the policy it was allocated under — the ``policyUrn`` of its failure
  facts when the failing domain recorded one, else the ACTIVE policy that resolves now for the case's airport
  and cause and the passengers' tier (policies.selectors.policy_resolve, once per scope); a POLICY_VIOLATION
  item counts against its scope with ``policyUrn: null`` (no policy matched it);
* ``topFailingProviders``: the five providers with the most failed attempts: one failure per
  ``attemptedHotels`` entry, attributed to the entry's ``vendor`` when given, else the vendor of the FAILED
  reservation the attempt left at that hotel for the case (``contract`` for a contract room), else the catalog
  hotel's vendor when it names exactly one, else ``unknown``; with the count per ``reason`` (or, without one,
  the ``providerError`` code).

The route (``GET /v1/manual-review/reports/weekly``) and ``manage.py review_report`` both call
:func:`weekly_report`; :func:`report_csv_rows` is the CSV shape both write.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from booking.models import Hotel, Reservation, ReservationSource, ReservationStatus
from cases.models import Case, SubCase
from nexa.platform.auth import Principal
from nexa.platform.problems import Problem, validation_problem
from nexa.platform.urns import InvalidUrn, parse_urn
from policies import selectors as policy_selectors
from review.models import ReviewCategory, ReviewItem, ReviewState

TOP = 5
CHUNK = 2000
# The OpenAPI pattern states the same (review/api/reports.py); only "week 53 in a 52-week year" is left to
# the server (a calendar rule no pattern states).
WEEK_PATTERN = r"^[1-9][0-9]{3}-W(0[1-9]|[1-4][0-9]|5[0-3])$"
_WEEK = re.compile(r"^([1-9][0-9]{3})-W([0-9]{2})$")
LAST_INSTANT = dt.datetime.max.replace(tzinfo=dt.UTC)
POLICY_CATEGORIES = (ReviewCategory.ALLOCATION_FAILED, ReviewCategory.POLICY_VIOLATION)
UNKNOWN_PROVIDER = "unknown"
CONTRACT_PROVIDER = "contract"

Progress = Callable[[int], None]


@dataclass(frozen=True)
class IsoWeek:
    year: int
    week: int

    @property
    def label(self) -> str:
        return f"{self.year:04d}-W{self.week:02d}"

    @property
    def start(self) -> dt.datetime:
        return dt.datetime.combine(dt.date.fromisocalendar(self.year, self.week, 1), dt.time(), tzinfo=dt.UTC)

    @property
    def end(self) -> dt.datetime:
        start = self.start
        if start > LAST_INSTANT - dt.timedelta(days=7):  # 9999-W52 ends past the last representable instant
            return LAST_INSTANT
        return start + dt.timedelta(days=7)


def parse_iso_week(value: str | None) -> IsoWeek:
    """``2026-W48`` → the week; anything else (absent, ``2026-W99``, ``2026-W53`` in a 52-week year) raises
    ``ValueError`` with the message a user should read."""
    match = _WEEK.match((value or "").strip())
    if not match:
        raise ValueError("Give an ISO week as YYYY-Www, e.g. 2026-W48.")
    year, week = int(match[1]), int(match[2])
    try:
        dt.date.fromisocalendar(year, week, 1)
    except ValueError:
        raise ValueError(f"{year} has no ISO week {week} (weeks run from 01 to 52 or 53).") from None
    return IsoWeek(year, week)


def week_problem(message: str) -> Problem:
    """The 400 a bad ``week`` is (RFC 9457, naming the field)."""
    return validation_problem([{"field": "week", "message": message}])


def weekly_items(*, airline: str, week: IsoWeek):
    """The airline's items created in ``week`` (the report's population)."""
    return ReviewItem.objects.filter(airline=airline, created_at__gte=week.start, created_at__lt=week.end)


def weekly_item_count(*, airline: str, week: IsoWeek) -> int:
    return weekly_items(airline=airline, week=week).count()


def weekly_airlines(*, week: IsoWeek) -> list[str]:
    """Every airline with items created in ``week`` (the command without ``--airline``; never the API)."""
    rows = ReviewItem.objects.filter(created_at__gte=week.start, created_at__lt=week.end).order_by()
    return sorted(set(rows.values_list("airline", flat=True).distinct()))


# --- the report -------------------------------------------------------------------------------------------


_FIELDS = (
    "id",
    "case_id",
    "category",
    "state",
    "created_at",
    "resolved_at",
    "accepted_agent_action_urn",
    "attempted_hotels",
    "affected_subcase_urns",
    "failure",
)


def weekly_report(*, principal: Principal, week: IsoWeek, progress: Progress | None = None) -> dict[str, Any]:
    """The report of the principal's airline for ``week`` (module docstring). ``progress(n)`` is called
    after every ``n`` items read (the command's progress bar)."""
    created: Counter[str] = Counter()
    resolved: Counter[str] = Counter()
    minutes: dict[str, float] = defaultdict(float)
    accepted = 0
    policy_facts: list[dict[str, Any]] = []
    attempts: list[tuple[Any, dict[str, Any]]] = []
    rows = weekly_items(airline=principal.airline, week=week).order_by().values(*_FIELDS)
    read = 0
    for row in rows.iterator(chunk_size=CHUNK):
        category = row["category"]
        created[category] += 1
        if row["state"] == ReviewState.RESOLVED and row["resolved_at"] is not None:
            resolved[category] += 1
            minutes[category] += (row["resolved_at"] - row["created_at"]).total_seconds() / 60
            accepted += bool(row["accepted_agent_action_urn"])
        if category in POLICY_CATEGORIES:
            policy_facts.append(row)
        for entry in row["attempted_hotels"] or ():
            if isinstance(entry, dict):
                attempts.append((row["case_id"], entry))
        read += 1
        if progress is not None and read % CHUNK == 0:
            progress(CHUNK)
    if progress is not None and read % CHUNK:
        progress(read % CHUNK)

    total_resolved = sum(resolved.values())
    return {
        "airline": principal.airline,
        "week": week.label,
        "from": _iso(week.start),
        "to": _iso(week.end),
        "generatedAt": _iso(timezone.now()),
        "byCategory": {
            category: {
                "created": created[category],
                "resolved": resolved[category],
                "open": created[category] - resolved[category],
            }
            for category in ReviewCategory.values
        },
        "mttrMinutes": {
            "overall": _mean(sum(minutes.values()), total_resolved),
            "byCategory": {
                category: _mean(minutes[category], resolved[category]) for category in ReviewCategory.values
            },
        },
        "agentAcceptedShare": round(accepted / total_resolved, 4) if total_resolved else None,
        "topFailingPolicies": _top_policies(principal=principal, rows=policy_facts),
        "topFailingProviders": _top_providers(airline=principal.airline, attempts=attempts),
    }


def _mean(total: float, count: int) -> float | None:
    return round(total / count, 1) if count else None


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _ids(urns: Iterable[Any], kind: str) -> list[Any]:
    ids = []
    for urn in urns or ():
        try:
            ids.append(parse_urn(str(urn), kind).id)
        except InvalidUrn:
            continue
    return ids


# --- policies ---------------------------------------------------------------------------------------------


def _top_policies(*, principal: Principal, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not rows:
        return []
    contexts = {
        case_id: (airport, cause)
        for case_id, airport, cause in Case.objects.filter(
            airline=principal.airline, id__in={row["case_id"] for row in rows}
        ).values_list("id", "airport", "cause")
    }
    first_subcase = {}
    for row in rows:
        ids = _ids(row["affected_subcase_urns"], "subcase")
        if ids:
            first_subcase[row["id"]] = ids[0]
    tiers = dict(
        SubCase.objects.filter(airline=principal.airline, id__in=set(first_subcase.values())).values_list("id", "tier")
    )
    resolved: dict[tuple[str, str, str], Any] = {}  # one resolution per scope
    recorded: dict[str, Any] = {}  # one look-up per recorded policy URN
    entries: dict[tuple, dict[str, Any]] = {}
    for row in rows:
        airport, cause = contexts.get(row["case_id"], ("", ""))
        scope = {"airport": airport, "tier": tiers.get(first_subcase.get(row["id"]), ""), "cause": cause}
        policy = None
        if row["category"] == ReviewCategory.ALLOCATION_FAILED:
            policy = _recorded_policy(principal, (row["failure"] or {}).get("policyUrn"), recorded)
            if policy is None:
                policy = _resolved_policy(principal, scope, resolved)
        if policy is not None:
            key: tuple = ("policy", policy.urn)
            own = {"airport": policy.scope_airport, "tier": policy.scope_tier, "cause": policy.scope_cause}
            entry = entries.setdefault(
                key, {"policyUrn": policy.urn, "policyName": policy.name, "scope": own, "failures": 0}
            )
        else:
            key = ("scope", scope["airport"], scope["tier"], scope["cause"])
            entry = entries.setdefault(key, {"policyUrn": None, "policyName": None, "scope": scope, "failures": 0})
        entry["failures"] += 1
        entry.setdefault("byCategory", Counter())[row["category"]] += 1
    ranked = sorted(entries.values(), key=lambda e: (-e["failures"], e["policyUrn"] or "~", sorted(e["scope"].items())))
    return [{**entry, "byCategory": dict(sorted(entry["byCategory"].items()))} for entry in ranked[:TOP]]


def _recorded_policy(principal: Principal, urn: Any, cache: dict[str, Any]):
    if not urn or not isinstance(urn, str):
        return None
    if urn not in cache:
        try:
            cache[urn] = policy_selectors.policy_get(principal=principal, policy_urn=urn)
        except (Problem, InvalidUrn):
            cache[urn] = None
    return cache[urn]


def _resolved_policy(principal: Principal, scope: dict[str, str], cache: dict[tuple[str, str, str], Any]):
    key = (scope["airport"], scope["tier"], scope["cause"])
    if key not in cache:
        try:
            cache[key] = policy_selectors.policy_resolve(
                principal=principal, airport=key[0] or None, tier=key[1] or None, cause=key[2] or None
            ).policy
        except Problem:
            cache[key] = None  # no policy resolves (now): counted against the scope
    return cache[key]


# --- providers --------------------------------------------------------------------------------------------


def _top_providers(*, airline: str, attempts: list[tuple[Any, dict[str, Any]]]) -> list[dict[str, Any]]:
    if not attempts:
        return []
    hotel_of = {}
    for index, (_, entry) in enumerate(attempts):
        ids = _ids([entry.get("hotelUrn")], "hotel")
        if ids:
            hotel_of[index] = ids[0]
    hotel_ids = set(hotel_of.values())
    # The vendor each case's failed attempt at a hotel went through (the latest, if several).
    by_attempt: dict[tuple[Any, Any], str] = {}
    failed = (
        Reservation.objects.filter(
            airline=airline,
            status=ReservationStatus.FAILED,
            case_id__in={case_id for case_id, _ in attempts},
            hotel_id__in=hotel_ids,
        )
        .order_by("created_at", "id")
        .values_list("case_id", "hotel_id", "source", "vendor")
    )
    for case_id, hotel_id, source, vendor in failed:
        provider = CONTRACT_PROVIDER if source == ReservationSource.CONTRACT else vendor
        if provider:
            by_attempt[case_id, hotel_id] = provider
    only_vendor = {
        hotel_id: next(iter(vendors))
        for hotel_id, vendors in Hotel.objects.filter(airline=airline, id__in=hotel_ids).values_list("id", "vendor_ids")
        if isinstance(vendors, dict) and len(vendors) == 1
    }
    entries: dict[str, dict[str, Any]] = {}
    for index, (case_id, entry) in enumerate(attempts):
        hotel_id = hotel_of.get(index)
        provider = (
            str(entry.get("vendor") or "")
            or by_attempt.get((case_id, hotel_id))
            or only_vendor.get(hotel_id)
            or UNKNOWN_PROVIDER
        )
        reason = str(entry.get("reason") or "") or _error_code(entry.get("providerError")) or "unknown"
        found = entries.setdefault(provider, {"provider": provider, "failures": 0, "reasons": Counter()})
        found["failures"] += 1
        found["reasons"][reason] += 1
    ranked = sorted(entries.values(), key=lambda e: (-e["failures"], e["provider"]))
    return [{**entry, "reasons": dict(sorted(entry["reasons"].items()))} for entry in ranked[:TOP]]


def _error_code(error: Any) -> str:
    """``"timeout: no answer in 2.5 s"`` → ``timeout`` (the adapters write ``code: message``)."""
    return str(error or "").split(":", 1)[0].strip()[:60]


# --- CSV --------------------------------------------------------------------------------------------------

CSV_COLUMNS = (
    "airline",
    "week",
    "section",
    "key",
    "name",
    "created",
    "resolved",
    "open",
    "mttr_minutes",
    "agent_accepted_share",
    "failures",
    "detail",
)


def report_csv_rows(report: dict[str, Any], *, header: bool = True) -> list[list[Any]]:
    """One table: a ``category`` row per category, a ``total`` row, then ``policy`` and ``provider`` rows
    (their ``detail`` is ``name=count; …`` per category or reason). Empty cells where a column does not apply."""
    base = [report["airline"], report["week"]]
    rows: list[list[Any]] = [list(CSV_COLUMNS)] if header else []
    mttr = report["mttrMinutes"]
    for category, counts in report["byCategory"].items():
        rows.append(
            [*base, "category", category, "", counts["created"], counts["resolved"], counts["open"],
             _cell(mttr["byCategory"][category]), "", "", ""]
        )  # fmt: skip
    totals = {name: sum(counts[name] for counts in report["byCategory"].values()) for name in ("created", "resolved")}
    rows.append(
        [*base, "total", "ALL", "", totals["created"], totals["resolved"], totals["created"] - totals["resolved"],
         _cell(mttr["overall"]), _cell(report["agentAcceptedShare"]), "", ""]
    )  # fmt: skip
    for entry in report["topFailingPolicies"]:
        scope = "/".join(entry["scope"].get(name) or "*" for name in ("airport", "tier", "cause"))
        rows.append(
            [*base, "policy", entry["policyUrn"] or f"no-policy:{scope}", entry["policyName"] or "", "", "", "", "",
             "", entry["failures"], _detail(entry["byCategory"])]
        )  # fmt: skip
    for entry in report["topFailingProviders"]:
        rows.append(
            [*base, "provider", entry["provider"], "", "", "", "", "", "", entry["failures"], _detail(entry["reasons"])]
        )
    return rows


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


def _detail(counts: dict[str, int]) -> str:
    return "; ".join(f"{name}={count}" for name, count in counts.items())
