"""Dashboard latency (ARCHITECTURE §10): ``GET /v1/cases/dashboard`` p50/p99 over HTTP with
10 000 open sub-cases, against the slowest of its sections timed alone; and the answer time with
one hung section (budget: 3 s ± 0.1).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/nexa REDIS_URL=redis://127.0.0.1:6379/0 \\
        .venv/bin/python -m bench.dashboard [--reuse] [--levels 1,8] [--duration 5]

Steps:

1. A fresh database ``<DATABASE_URL's name>_bench_dashboard`` (kept with ``--reuse`` when it is
   already loaded), migrated, loaded through the real services: 40 cases of 250 passengers
   (10 000 PENDING sub-cases; ``case_declare`` also writes their audit rows), 30 operators, and
   as many cases and operators for another airline.
2. Each section of ``nexa.dashboard.DASHBOARD_SECTIONS`` called alone, in this process,
   ``--runs`` times: p50/p99.
3. The ASGI server ``make run`` uses (bench/baseline.py), with ``NEXA_BENCH=1``: the ping baseline
   and the dashboard with bench/load.py at each ``--levels`` concurrency.
4. In this process: the real sections plus one that never answers, through ``compose`` with the
   default 3 s timeout, ``--hung-runs`` times.

Prints the tables and ``RATIO dashboard …`` lines; the budget line checks dashboard p99 at
concurrency 1 against the slowest section's p99 + 20 ms.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import threading
import time
from pathlib import Path

from bench.databases import bench_database_url, recreate_database
from bench.load import auth_headers, format_results, measure, measure_ping_baseline, percentile
from bench.stack import bench_environ, setup_django, start_server
from nexa import devstack

ROOT = Path(__file__).resolve().parent.parent
BENCH_DATABASE_SUFFIX = "_bench_dashboard"
AIRLINE, OTHER_AIRLINE = "IB", "LH"
CASES, PASSENGERS_PER_CASE, OPERATORS = 40, 250, 30
BUDGET_MS_OVER_SLOWEST = 20.0


def principal(airline: str, role: str = "OPS_SUPERVISOR"):
    from nexa.platform.auth import Principal
    from nexa.platform.roles import Role

    operator = f"urn:nexa:user:{airline.lower()}-{role.lower().replace('_', '-')}"
    return Principal(airline=airline, role=Role(role), operator_urn=operator, subject=operator)


def open_subcases(airline: str) -> int:
    from cases.models import SubCase

    return SubCase.objects.filter(airline=airline, status="PENDING").count()


def load(airline: str) -> float:
    """Cases with their manifests and operators for one airline, through the services."""
    from cases.services import case_declare
    from operators.models import Operator

    started = time.perf_counter()
    supervisor = principal(airline)
    airports = ("MAD", "BCN", "LHR", "FRA", "CDG", "JFK", "MEX", "BOG")
    departure = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=2)
    for index in range(CASES):
        passengers = [
            {
                "firstName": f"Pax{index}x{seat}",
                "lastName": "Bench",
                "pnr": f"B{index:02d}{seat // 2:03d}",
                "email": f"pax{index}x{seat}@example.com",
            }
            for seat in range(PASSENGERS_PER_CASE)
        ]
        case_declare(
            principal=supervisor,
            airport=airports[index % len(airports)],
            flight_number=f"{airline}{1000 + index}",
            flight_date=departure.date(),
            scheduled_departure=departure,
            cause="CANCELLATION",
            passengers=passengers,
        )
    Operator.objects.bulk_create(
        Operator(
            operator_urn=f"urn:nexa:user:{airline.lower()}-bench-{number}",
            airline=airline,
            role="AIRPORT_OPERATOR" if number % 5 else "OPS_SUPERVISOR",
            display_name=f"Bench operator {number}",
        )
        for number in range(OPERATORS)
    )
    return time.perf_counter() - started


def time_sections(runs: int) -> dict[str, dict[str, float]]:
    from nexa.dashboard import DASHBOARD_SECTIONS

    caller = principal(AIRLINE, "AIRPORT_OPERATOR")
    figures = {}
    for name, section in DASHBOARD_SECTIONS.items():
        for _ in range(5):
            section(caller)
        samples = []
        for _ in range(runs):
            started = time.perf_counter()
            section(caller)
            samples.append((time.perf_counter() - started) * 1000)
        samples.sort()
        figures[name] = {"p50_ms": statistics.median(samples), "p99_ms": percentile(samples, 0.99)}
    return figures


def time_with_a_hung_section(runs: int) -> list[float]:
    from functools import partial

    from nexa.dashboard import DASHBOARD_SECTIONS
    from nexa.platform.composition import compose

    caller = principal(AIRLINE, "AIRPORT_OPERATOR")
    release = threading.Event()

    def hung(_principal):
        release.wait(60)

    sections = {name: partial(section, caller) for name, section in {**DASHBOARD_SECTIONS, "hung": hung}.items()}
    elapsed = []
    try:
        for _ in range(runs):
            started = time.perf_counter()
            body = compose(sections)
            elapsed.append(time.perf_counter() - started)
            assert [failure["domain"] for failure in body["partialFailures"]] == ["hung"], body["partialFailures"]
    finally:
        release.set()
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--levels", default="1,8", help="concurrency levels for the HTTP run")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds measured per level")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--runs", type=int, default=200, help="calls per section timed alone")
    parser.add_argument("--hung-runs", type=int, default=3)
    parser.add_argument("--server", default=devstack.DEFAULT_SERVER)
    parser.add_argument("--workers", type=int, default=devstack.DEFAULT_WORKERS)
    parser.add_argument("--reuse", action="store_true", help="keep an already loaded bench database")
    args = parser.parse_args(argv)
    levels = [int(level) for level in args.levels.split(",")]

    os.chdir(ROOT)
    with devstack.Services.ensure(redis_db=8) as services:
        url = bench_database_url(services.database_url, BENCH_DATABASE_SUFFIX)
        if not args.reuse:
            recreate_database(url, BENCH_DATABASE_SUFFIX)
        else:
            devstack.ensure_database(url)
        env = bench_environ(services, DATABASE_URL=url, LOG_LEVEL="WARNING")
        setup_django(env)
        if open_subcases(AIRLINE) != CASES * PASSENGERS_PER_CASE:
            if args.reuse:
                recreate_database(url, BENCH_DATABASE_SUFFIX)
                setup_django(env)
            seconds = sum(load(airline) for airline in (AIRLINE, OTHER_AIRLINE))
            print(f"loaded {2 * CASES} cases, {2 * CASES * PASSENGERS_PER_CASE} sub-cases in {seconds:.1f} s")
        print(f"{open_subcases(AIRLINE)} open sub-cases for {AIRLINE} in {url}")

        sections = time_sections(args.runs)
        print(f"\nsections timed alone, in process ({args.runs} calls each)")
        for name, figure in sections.items():
            print(f"  {name:<10} p50 {figure['p50_ms']:7.2f} ms   p99 {figure['p99_ms']:7.2f} ms")
        slowest_name = max(sections, key=lambda name: sections[name]["p50_ms"])
        slowest = sections[slowest_name]

        token = devstack.demo_tokens(env, airline=AIRLINE, ttl=3600)["AIRPORT_OPERATOR"]
        supervisor = devstack.Supervisor()
        try:
            base_url = start_server(
                supervisor, env, name="bench-dashboard", server=args.server, workers=args.workers
            ).base_url
            ping = measure_ping_baseline(base_url, token, levels=levels, duration=args.duration, warmup=args.warmup)
            dashboard = measure(
                f"{base_url}/v1/cases/dashboard",
                levels=levels,
                duration=args.duration,
                warmup=args.warmup,
                headers=auth_headers(token),
            )
        finally:
            supervisor.stop_all()

        hung = time_with_a_hung_section(args.hung_runs)

    print(format_results(f"\nping ({args.server}, {args.workers} workers)", ping.levels))
    print(format_results("\nGET /v1/cases/dashboard", dashboard))
    print()
    for result in dashboard:
        reference = ping.at(result.concurrency) or ping.best
        print(
            f"RATIO dashboard c={result.concurrency} p50_ms={result.p50_ms:.2f} p99_ms={result.p99_ms:.2f} "
            f"slowest_section={slowest_name} slowest_p50_ms={slowest['p50_ms']:.2f} "
            f"slowest_p99_ms={slowest['p99_ms']:.2f} ratio_p50={result.p50_ms / slowest['p50_ms']:.2f} "
            f"ping_p50_ms={reference.p50_ms:.2f} errors={result.errors}"
        )
    single = next((result for result in dashboard if result.concurrency == 1), dashboard[0])
    allowed = slowest["p99_ms"] + BUDGET_MS_OVER_SLOWEST
    within = single.p99_ms <= allowed
    print(
        f"{'PASS' if within else 'FAIL'} dashboard p99 at c={single.concurrency} {single.p99_ms:.2f} ms "
        f"vs slowest section p99 + {BUDGET_MS_OVER_SLOWEST:.0f} ms = {allowed:.2f} ms"
    )
    hung_ok = all(abs(seconds - 3.0) <= 0.1 for seconds in hung)
    print(
        f"{'PASS' if hung_ok else 'FAIL'} one hung section: answered at "
        + ", ".join(f"{seconds:.3f}" for seconds in hung)
        + " s (budget 3 s ± 0.1)"
    )
    return 0 if within and hung_ok else 1


if __name__ == "__main__":
    sys.exit(main())
