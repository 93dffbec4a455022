"""Deep pagination: a page at depth 100 000 of 1 000 000 cases must cost at most 1.5 times page 1
(ARCHITECTURE §10), through the real keyset paginator (nexa.platform.pagination).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/nexa .venv/bin/python -m bench.pagination
    .venv/bin/python -m bench.pagination --rows 1000000 --depth 100000 --runs 50 --reuse

Creates a fresh database ``<DATABASE_URL's name>_bench_pagination`` (dropped first unless
``--reuse`` finds it already loaded), migrates it and loads the cases with one
``INSERT … SELECT generate_series`` (every fifth case belongs to another airline, so the tenant
filter is real). Then, in this process:

* walks the IB case list in pages of 200 with the paginator's cursors until ``--depth`` rows
  are behind it, keeping the cursor that starts there;
* times page 1 (no cursor: takes the snapshot) and the page at that depth (the cursor),
  ``--runs`` times each, interleaved, ``limit=50``, ordering ``("-created_at", "-id")``;
* times the same page with plain ``OFFSET depth`` for contrast.

Prints p50/p90 per variant and ``RATIO pagination depth=… ratio=…``; exits 1 when the
keyset ratio is above ``--budget`` (1.5).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

from bench.databases import bench_database_url, recreate_database

ROOT = Path(__file__).resolve().parent.parent
BENCH_DATABASE_SUFFIX = "_bench_pagination"
AIRLINE = "IB"


def database_exists(url: str) -> bool:
    import psycopg

    from nexa.service_urls import postgres_params

    params = postgres_params(url)
    with psycopg.connect(**postgres_params(url, "postgres"), autocommit=True, connect_timeout=10) as conn:
        return bool(conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [params["dbname"]]).fetchone())


# One row per n: created_at one second apart going back from now (so everything is older than the
# snapshot page 1 takes), flight number/date unique per airline, a mix of statuses and airports.
LOAD_SQL = """
INSERT INTO cases_case (
    id, airline, airport, flight_number, flight_date, scheduled_departure, cause, note,
    declared_by, status, version, retention_until, created_at, updated_at
)
SELECT
    gen_random_uuid(),
    CASE WHEN n %% 5 = 0 THEN 'LH' ELSE 'IB' END,
    (ARRAY['MAD','BCN','LHR','FRA','CDG','JFK','MEX','BOG','LIM','SCL'])[1 + n %% 10],
    'XX' || (n %% 10000),
    DATE '2020-01-01' + (n / 10000),
    now() - make_interval(secs => n) + interval '6 hours',
    'CANCELLATION',
    '',
    'urn:nexa:user:bench',
    CASE WHEN n %% 50 = 0 THEN 'OPEN' WHEN n %% 50 = 1 THEN 'IN_PROGRESS' ELSE 'CLOSED' END,
    1,
    DATE '2030-01-01',
    now() - make_interval(secs => n),
    now() - make_interval(secs => n)
FROM generate_series(1, %s) AS n
"""


def load_cases(rows: int) -> float:
    from django.db import connection

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(LOAD_SQL, [rows])
    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE) cases_case")  # visibility map + statistics, as in a settled database
    return time.perf_counter() - started


def case_count() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM cases_case")
        return cursor.fetchone()[0]


def timed(function, runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        function()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def describe(name: str, samples: list[float]) -> str:
    ordered = sorted(samples)
    p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
    return f"{name:<34} p50 {statistics.median(ordered):8.2f} ms   p90 {p90:8.2f} ms   (n={len(ordered)})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--depth", type=int, default=100_000)
    parser.add_argument("--limit", type=int, default=50)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--offset-runs", type=int, default=15)
    parser.add_argument("--budget", type=float, default=1.5)
    parser.add_argument("--reuse", action="store_true", help="keep an already loaded bench database")
    args = parser.parse_args(argv)

    base_url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/nexa")
    url = bench_database_url(base_url, BENCH_DATABASE_SUFFIX)
    sys.path.insert(0, str(ROOT))
    fresh = not (args.reuse and database_exists(url))
    if fresh:
        recreate_database(url, BENCH_DATABASE_SUFFIX)
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nexa.settings")
    os.environ.setdefault("LOG_FORMAT", "console")
    import django

    django.setup()
    from django.core.management import call_command
    from django.test import RequestFactory

    from cases.models import Case
    from nexa.platform.auth import Principal
    from nexa.platform.pagination import CursorPaginator
    from nexa.platform.roles import Role

    call_command("migrate", verbosity=0)
    if fresh or case_count() != args.rows:
        if not fresh:
            recreate_database(url, BENCH_DATABASE_SUFFIX)
            call_command("migrate", verbosity=0)
        seconds = load_cases(args.rows)
        print(f"loaded {args.rows} cases in {seconds:.1f} s ({args.rows / seconds:,.0f} rows/s) into {url}")
    else:
        print(f"reusing {case_count()} cases in {url}")

    principal = Principal(airline=AIRLINE, role=Role.AIRPORT_OPERATOR, operator_urn="urn:nexa:user:bench", subject="b")
    ordering = ("-created_at", "-id")
    factory = RequestFactory()

    def request(**params):
        built = factory.get("/v1/cases", {key: value for key, value in params.items() if value is not None})
        built.auth = principal
        return built

    def page(cursor: str | None, limit: int):
        queryset = Case.objects.filter(airline=principal.airline)
        return CursorPaginator(ordering=ordering).paginate_queryset(request(limit=limit, cursor=cursor), queryset)

    # Walk to the depth with the paginator's own cursors (pages of 200, the largest allowed).
    walked, cursor, started = 0, None, time.perf_counter()
    while walked < args.depth:
        step = min(200, args.depth - walked)
        result = page(cursor, step)
        walked += len(result.items)
        cursor = result.next_cursor
        if cursor is None:
            raise SystemExit(f"only {walked} {AIRLINE} cases; load more rows")
    print(f"walked {walked} rows in {time.perf_counter() - started:.1f} s to reach the cursor at depth {args.depth}")

    deep_cursor = cursor
    first_ids = [case.id for case in page(None, args.limit).items]
    deep_ids = [case.id for case in page(deep_cursor, args.limit).items]
    assert len(first_ids) == len(deep_ids) == args.limit and not set(first_ids) & set(deep_ids)

    snapshot_queryset = Case.objects.filter(airline=principal.airline).order_by(*ordering)
    offset_ids = [case.id for case in snapshot_queryset[args.depth : args.depth + args.limit]]
    if offset_ids != deep_ids:
        print("note: OFFSET page differs from the keyset page (rows were added since the walk)")

    for _ in range(5):  # warm caches and the connection for both variants alike
        page(None, args.limit)
        page(deep_cursor, args.limit)
    first_samples, deep_samples = [], []
    for _ in range(args.runs):
        first_samples += timed(lambda: page(None, args.limit), 1)
        deep_samples += timed(lambda: page(deep_cursor, args.limit), 1)
    offset_samples = timed(lambda: list(snapshot_queryset[args.depth : args.depth + args.limit]), args.offset_runs)

    first_p50 = statistics.median(first_samples)
    deep_p50 = statistics.median(deep_samples)
    offset_p50 = statistics.median(offset_samples)
    ratio = deep_p50 / first_p50
    print()
    print(f"{args.rows} cases ({AIRLINE}: 4 of 5), limit={args.limit}, ordering {ordering}")
    print(describe("keyset page 1", first_samples))
    print(describe(f"keyset page at depth {args.depth}", deep_samples))
    print(describe(f"OFFSET {args.depth} (contrast)", offset_samples))
    print(
        f"RATIO pagination depth={args.depth} keyset_p50_ms={deep_p50:.2f} page1_p50_ms={first_p50:.2f} "
        f"ratio={ratio:.2f} budget={args.budget} offset_p50_ms={offset_p50:.2f} "
        f"offset_ratio={offset_p50 / first_p50:.1f}"
    )
    within = ratio <= args.budget
    print("PASS" if within else "FAIL", f"deep/page-1 p50 ratio {ratio:.2f} (budget ≤ {args.budget})")
    return 0 if within else 1


if __name__ == "__main__":
    sys.exit(main())
