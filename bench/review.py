"""Manual review at scale (issue 13 § Benchmark; ARCHITECTURE §10): with 10 000 open items across 200 cases,
the SLA sweep finds and escalates 500 breached items in under 2 s, and the queue's first page answers with
p99 under 20 ms in process; its ratio to the authenticated ping over HTTP, measured in the same run.

    .venv/bin/python -m bench.review                   # embedded PostgreSQL/Redis unless DATABASE_URL/REDIS_URL
    .venv/bin/python -m bench.review --open 10000 --cases 200 --breached 500 --resolved 10000 --sweeps 5

Steps:

1. A fresh database ``<DATABASE_URL's name>_bench_review``, migrated; ``--cases`` IB cases and ``--open`` OPEN
   items spread over them (``bulk_create``), of which ``--breached`` are past their SLA and the rest due in the
   coming hours; plus ``--resolved`` RESOLVED items whose due times are long past (the sweep's partial index
   must make them cost nothing) and 1 000 open LH items, not breached (the tenant filter is real). ``ANALYZE``.
2. **The sweep**, in this process: ``review.services.review_sla_sweep`` (what the beat task runs) times
   ``--sweeps``: each must escalate exactly ``--breached`` items and write as many pages, audit rows and
   ``review:escalated`` events; a second call right after escalates nothing (exactly once per breach); then the
   same items are put back past their SLA (a new breach) for the next run.
3. **The weekly report** of the ISO week holding today (``review.selectors.review_weekly_report``), 3 times, for
   scale (no budget).
4. **The queue's first page**, in process: ``GET /v1/manual-review`` (default page: 50 items, every state,
   soonest SLA first) through Django's test client with an OPS_SUPERVISOR bearer token (authentication, roles,
   throttle, every middleware), ``--runs`` times, interleaved with ``GET /v1/_bench/ping`` the same way and with
   the page as the view builds it (selector + paginator + serializer + JSON render, no request handling).
5. **Over HTTP**: the ``make run`` server (uvicorn, 2 workers, ``NEXA_BENCH=1``, no access log) on a free
   loopback port; the ping baseline and the same first page at 1 and 8 clients (bench/load.py), so the
   ``RATIO review_queue …`` lines give the page's throughput as a share of the ping's.

Prints each sweep's time, p50/p90/p99 of both in-process variants, the HTTP table and ``RATIO`` lines, and
PASS/FAIL per budget; exit status 1 if a budget or a correctness check failed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import time
from pathlib import Path

from bench.databases import bench_database_url, recreate_database
from bench.load import auth_headers, format_results, measure, measure_ping_baseline, percentile, ratio_line
from bench.stack import NEVER_REFUSING_RATE_LIMIT, bench_environ, setup_django, start_server
from nexa import devstack

ROOT = Path(__file__).resolve().parent.parent
BENCH_DATABASE_SUFFIX = "_bench_review"
AIRLINE = "IB"
SWEEP_BUDGET_S = 2.0
PAGE_BUDGET_P99_MS = 20.0
QUEUE_PATH = "/v1/manual-review"
PING_PATH = "/v1/_bench/ping"


def load(*, cases: int, open_items: int, breached: int, resolved: int, now: dt.datetime) -> float:
    """The cases and items, with ``bulk_create``; returns the seconds it took."""
    from django.db import connection

    from cases.models import Case
    from nexa.platform.urns import format_urn, new_id
    from review.models import CATEGORY_PRIORITY, ReviewCategory, ReviewItem, ReviewState

    started = time.perf_counter()
    flight_date = now.date()

    def case(airline: str, number: int) -> Case:
        return Case(
            id=new_id(),
            airline=airline,
            airport="MAD" if airline == "IB" else "FRA",
            flight_number=f"{airline}{number:04d}",
            flight_date=flight_date,
            scheduled_departure=now - dt.timedelta(hours=3),
            cause="CANCELLATION",
            declared_by="urn:nexa:user:bench",
            retention_until=flight_date + dt.timedelta(days=90),
        )

    ib_cases = Case.objects.bulk_create([case(AIRLINE, n) for n in range(cases)], batch_size=1000)
    lh_cases = Case.objects.bulk_create([case("LH", n) for n in range(20)], batch_size=1000)
    categories = list(ReviewCategory.values)

    def item(number: int, parent: Case, *, due: dt.datetime, state: str = ReviewState.OPEN) -> ReviewItem:
        category = categories[number % len(categories)]
        created = due - dt.timedelta(minutes=15)
        return ReviewItem(
            id=new_id(),
            airline=parent.airline,
            case=parent,
            category=category,
            priority=CATEGORY_PRIORITY[category],
            state=state,
            reason="every attempted hotel refused",
            attempted_hotels=[{"hotelUrn": None, "reason": "hotel-full", "providerError": "not_enough_rooms: 0 left"}],
            affected_groups=[f"GRP-{number % 40 + 1}"],
            sla_due_at=due,
            created_at=created,
            updated_at=created,
            resolved_at=created + dt.timedelta(minutes=30) if state == ReviewState.RESOLVED else None,
            resolution="NO_ACTION" if state == ReviewState.RESOLVED else "",
            source_event="booking:failed",
            source_event_urn=format_urn("event", new_id()),
        )

    rows = []
    for number in range(open_items):
        # The breached ones overdue by 1 to 60 minutes; the others due over the next 4 hours.
        due = (
            now - dt.timedelta(minutes=1 + number % 60)
            if number < breached
            else now + dt.timedelta(seconds=30 + (number * 7) % 14_400)
        )
        rows.append(item(number, ib_cases[number % cases], due=due))
    for number in range(resolved):
        due = now - dt.timedelta(days=1 + number % 90, minutes=number % 600)
        rows.append(item(number, ib_cases[number % cases], due=due, state=ReviewState.RESOLVED))
    for number in range(1000):
        rows.append(item(number, lh_cases[number % len(lh_cases)], due=now + dt.timedelta(minutes=5 + number % 30)))
    ReviewItem.objects.bulk_create(rows, batch_size=2000)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE review_reviewitem")
        cursor.execute("ANALYZE cases_case")
    return time.perf_counter() - started


def sweep_runs(*, runs: int, breached: int, now: dt.datetime) -> tuple[list[float], list[str]]:
    """``runs`` timed sweeps; returns the seconds per run and the problems found (anything but exactly
    ``breached`` items escalated, paged, audited and announced once each)."""
    from audit.models import AuditEntry
    from nexa.platform.models import OutboxEvent
    from nexa.platform.outbox import flush_pending
    from review.models import ReviewItem, ReviewPage
    from review.services import review_sla_sweep

    problems: list[str] = []
    due = ReviewItem.objects.filter(sla_due_at__lte=now).exclude(state="RESOLVED")
    breached_ids = list(due.values_list("pk", flat=True))
    if len(breached_ids) != breached:
        problems.append(f"expected {breached} breached items, found {len(breached_ids)}")

    def counts() -> tuple[int, int, int]:
        return (
            ReviewPage.objects.count(),
            AuditEntry.objects.filter(action="review.sla_breached").count(),
            OutboxEvent.objects.filter(event="review:escalated").count(),
        )

    seconds = []
    for run in range(1, runs + 1):
        before = counts()
        started = time.perf_counter()
        escalated = review_sla_sweep(now=now)
        seconds.append(time.perf_counter() - started)
        again = review_sla_sweep(now=now)  # the same instant: nothing is breached any more
        written = [after - first for after, first in zip(counts(), before, strict=True)]
        if len(escalated) != breached or again:
            problems.append(f"sweep {run}: escalated {len(escalated)}, then {len(again)} on a second call")
        if written != [breached] * 3:
            problems.append(f"sweep {run}: pages, audit rows, events written {written} for {breached} items")
        # A new breach of the same items for the next run (the escalation moved their due time forward), once
        # this process's relay has handed the run's events on (after commit: not the sweep's time).
        ReviewItem.objects.filter(pk__in=breached_ids).update(sla_due_at=now - dt.timedelta(minutes=1))
        flush_pending(60.0)
    return seconds, problems


def report_runs(*, now: dt.datetime, runs: int = 3) -> tuple[str, int, list[float]]:
    """The weekly report of the ISO week holding ``now`` (no budget: for scale); seconds per run."""
    from nexa.platform.auth import Principal
    from nexa.platform.roles import Role
    from review import reports, selectors

    year, week, _ = now.isocalendar()
    label = f"{year:04d}-W{week:02d}"
    principal = Principal(airline=AIRLINE, role=Role.FINANCE_AUDIT, operator_urn="urn:nexa:user:bench", subject="b")
    items = reports.weekly_item_count(airline=AIRLINE, week=reports.parse_iso_week(label))
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        selectors.review_weekly_report(principal=principal, week=label)
        seconds.append(time.perf_counter() - started)
    return label, items, seconds


def in_process(*, token: str, runs: int, warmup: int) -> dict[str, list[float]]:
    """Interleaved, in milliseconds: the queue's first page and the ping through Django's test client (the whole
    stack but the server), and the page as the view builds it (selector + paginator + serializer + JSON render,
    what ``GET /v1/manual-review`` does between authenticating and answering)."""
    from django.test import Client, RequestFactory
    from rest_framework.renderers import JSONRenderer

    from nexa.platform.auth import Principal
    from nexa.platform.pagination import CursorPaginator
    from nexa.platform.roles import Role
    from review import selectors
    from review.api.serializers import review_item_data

    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_ACCEPT="application/json")
    principal = Principal(airline=AIRLINE, role=Role.OPS_SUPERVISOR, operator_urn="urn:nexa:user:bench", subject="b")
    factory, paginator, renderer = RequestFactory(), CursorPaginator(ordering=("sla_due_at", "id")), JSONRenderer()

    def get(path: str) -> None:
        response = client.get(path)
        if response.status_code != 200:
            raise SystemExit(f"GET {path}: {response.status_code} {response.content[:300]!r}")

    def page() -> None:
        request = factory.get(QUEUE_PATH)
        request.auth = principal
        items = selectors.review_items_list(principal=principal)
        renderer.render(paginator.paginate_queryset(request, items).body(review_item_data))

    first = client.get(QUEUE_PATH).json()
    if len(first["items"]) != 50 or not first["hasMore"]:
        raise SystemExit(f"GET {QUEUE_PATH}: expected a full first page, got {len(first['items'])} items")
    variants = {
        "queue first page": lambda: get(QUEUE_PATH),
        "ping": lambda: get(PING_PATH),
        "selector+serializer": page,
    }
    for _ in range(warmup):
        for call in variants.values():
            call()
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(runs):
        for name, call in variants.items():
            started = time.perf_counter()
            call()
            samples[name].append((time.perf_counter() - started) * 1000)
    return samples


def describe(name: str, values: list[float]) -> str:
    ordered = sorted(values)
    return (
        f"{name:<19} p50 {percentile(ordered, 0.5):7.2f} ms   p90 {percentile(ordered, 0.9):7.2f} ms   "
        f"p99 {percentile(ordered, 0.99):7.2f} ms   max {ordered[-1]:7.2f} ms   (n={len(ordered)})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--open", type=int, default=10_000, dest="open_items")
    parser.add_argument("--breached", type=int, default=500)
    parser.add_argument("--resolved", type=int, default=10_000)
    parser.add_argument("--sweeps", type=int, default=5)
    parser.add_argument("--runs", type=int, default=1000, help="in-process requests per variant")
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--levels", default="1,8", help="concurrency levels over HTTP")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds measured per HTTP level")
    parser.add_argument("--no-http", action="store_true", help="skip the server (in-process figures only)")
    args = parser.parse_args(argv)
    if not 0 < args.breached <= min(args.open_items, 500):
        parser.error("--breached must be 1 to min(--open, 500) (the sweep's batch)")
    levels = [int(level) for level in args.levels.split(",")]

    os.chdir(ROOT)
    with devstack.Services.ensure(redis_db=11) as services:
        url = bench_database_url(services.database_url, BENCH_DATABASE_SUFFIX)
        recreate_database(url, BENCH_DATABASE_SUFFIX)
        env = bench_environ(services, DATABASE_URL=url, LOG_LEVEL="WARNING")
        # This process answers the ping and the queue like the server: bench routes on, no debug, no throttle refusal.
        os.environ.update(NEXA_BENCH="1", DEBUG="0", NEXA_RATE_LIMIT=NEVER_REFUSING_RATE_LIMIT)
        setup_django(env)
        from django.utils import timezone

        now = timezone.now()
        seconds = load(
            cases=args.cases, open_items=args.open_items, breached=args.breached, resolved=args.resolved, now=now
        )
        print(
            f"loaded {args.open_items} open IB items ({args.breached} breached) over {args.cases} cases, "
            f"{args.resolved} resolved IB items, 1000 LH items in {seconds:.1f} s"
        )
        sweeps, problems = sweep_runs(runs=args.sweeps, breached=args.breached, now=now)
        token = devstack.demo_tokens(env, airline=AIRLINE, ttl=3600)["OPS_SUPERVISOR"]
        samples = in_process(token=token, runs=args.runs, warmup=args.warmup)
        week, week_items, report_seconds = report_runs(now=now)
        ping = queue = None
        if not args.no_http:
            supervisor = devstack.Supervisor()
            try:
                base_url = start_server(
                    supervisor,
                    env,
                    name="bench-review",
                    server=devstack.DEFAULT_SERVER,
                    workers=devstack.DEFAULT_WORKERS,
                ).base_url
                ping = measure_ping_baseline(base_url, token, levels=levels, duration=args.duration, warmup=1.0)
                queue = measure(
                    base_url + QUEUE_PATH,
                    levels=levels,
                    duration=args.duration,
                    warmup=1.0,
                    headers=auth_headers(token),
                )
            finally:
                supervisor.stop_all()

    load_average = os.getloadavg()[0]
    print(
        f"\nSLA sweep ({args.breached} breached of {args.open_items} open, {args.resolved} resolved); "
        f"load {load_average:.1f}"
    )
    for run, value in enumerate(sweeps, 1):
        print(f"  sweep {run}: {value * 1000:8.1f} ms")
    worst = max(sweeps)
    print(
        f"RESULT review_sweep breached={args.breached} open={args.open_items} median_s={statistics.median(sweeps):.3f} "
        f"max_s={worst:.3f} budget_s={SWEEP_BUDGET_S}"
    )
    print(
        f"RESULT review_report week={week} items={week_items} "
        f"runs_s={','.join(f'{value:.3f}' for value in report_seconds)} (weekly report in process, no budget)"
    )
    print("\nin process (Django test client, OPS_SUPERVISOR token)")
    for name, values in samples.items():
        print("  " + describe(name, values))
    page_p99 = percentile(sorted(samples["queue first page"]), 0.99)
    ping_p99 = percentile(sorted(samples["ping"]), 0.99)
    view_p99 = percentile(sorted(samples["selector+serializer"]), 0.99)
    print(
        f"RESULT review_queue_in_process p50_ms={statistics.median(samples['queue first page']):.2f} "
        f"p99_ms={page_p99:.2f} selector_serializer_p99_ms={view_p99:.2f} ping_p99_ms={ping_p99:.2f} "
        f"budget_p99_ms={PAGE_BUDGET_P99_MS:g}"
    )
    if ping is not None and queue is not None:
        print(format_results("\nping over HTTP", ping.levels))
        print(format_results(f"\nGET {QUEUE_PATH} over HTTP (first page, 50 items)", queue))
        print(ratio_line("review_queue", queue, ping))
        if any(result.errors for result in queue):
            problems.append("the queue answered errors over HTTP")
    print()
    sweep_ok = worst < SWEEP_BUDGET_S
    page_ok = page_p99 < PAGE_BUDGET_P99_MS
    view_ok = view_p99 < PAGE_BUDGET_P99_MS
    print(
        f"{'PASS' if sweep_ok else 'FAIL'} SLA sweep: slowest of {len(sweeps)} runs {worst:.3f} s "
        f"(budget < {SWEEP_BUDGET_S:g} s)"
    )
    print(
        f"{'PASS' if page_ok else 'FAIL'} queue first page in process, test client: p99 {page_p99:.2f} ms "
        f"(budget < {PAGE_BUDGET_P99_MS:g} ms; the bare ping's p99 {ping_p99:.2f} ms)"
    )
    print(
        f"{'PASS' if view_ok else 'FAIL'} queue first page in process, selector + serializer: p99 {view_p99:.2f} ms "
        f"(budget < {PAGE_BUDGET_P99_MS:g} ms)"
    )
    for problem in problems:
        print(f"FAIL {problem}")
    if not problems:
        print("PASS exactly once: every breached item escalated, paged and audited once per breach")
    return 0 if sweep_ok and page_ok and view_ok and not problems else 1


if __name__ == "__main__":
    sys.exit(main())
