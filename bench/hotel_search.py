"""Hotel search time-box (ARCHITECTURE §10): five vendors at 50 to 800 ms, one hung; every
``POST /v1/hotels/search`` must answer at 2.0 to 2.1 s with the other four's offers. p50/p99 at 1 and
20 concurrent searches over HTTP, and the ping measured in the same run.

    .venv/bin/python -m bench.hotel_search [--levels 1,20] [--duration 20]

(embedded PostgreSQL and Redis unless DATABASE_URL / REDIS_URL are set, as ``make run``.)

Steps:

1. A fresh database ``<DATABASE_URL's name>_bench_hotels``, migrated; the demo hotel catalog of IB.
2. The hotel vendor simulator process (``python -m booking.simulators hotels``) with
   stayhub 50-150 ms, globerooms 200-400 ms, nightbed 50-250 ms per page (it paginates: three pages
   for MAD), roomrack 400-800 ms, and bedbank hung ("hangs forever").
3. The ASGI server ``make run`` uses, asking all five vendors (``NEXA_HOTEL_VENDORS``), with the
   breaker's failure threshold raised out of reach: a hung vendor would otherwise open its circuit after
   ``NEXA_BREAKER_FAIL_MAX`` timeouts and later searches would answer at the slowest healthy vendor's
   pace, which is the breaker's job but not what this run measures (tests/booking cover the breaker).
4. One search checked for its shape (four vendors ok, bedbank timeout, offers from the four);
   the ping baseline; the search at each ``--levels`` concurrency (closed loop).

Prints the tables, ``RATIO hotel_search …`` lines and a PASS/FAIL line on the 2.0 to 2.1 s window.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.request
from datetime import date, timedelta
from pathlib import Path

from bench.databases import bench_database_url, recreate_database
from bench.load import auth_headers, format_results, measure, measure_ping_baseline
from bench.stack import bench_environ, setup_django, start_server
from nexa import devstack

ROOT = Path(__file__).resolve().parent.parent
BENCH_DATABASE_SUFFIX = "_bench_hotels"
AIRLINE = "IB"
VENDOR_LATENCY_MS = {
    "stayhub": [50, 150],
    "globerooms": [200, 400],
    "nightbed": [50, 250],
    "roomrack": [400, 800],
}
HUNG = "bedbank"
WINDOW_S = (2.0, 2.1)


def control(base_url: str, vendor: str, **config) -> None:
    request = urllib.request.Request(
        f"{base_url}/{vendor}/_control",
        data=json.dumps(config).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    urllib.request.urlopen(request, timeout=5).read()


def search_body() -> bytes:
    check_in = date.today() + timedelta(days=1)
    return json.dumps({"airport": "MAD", "checkIn": str(check_in), "nights": 1, "rooms": 2, "occupancy": 2}).encode()


def one_search(base_url: str, token: str) -> dict:
    request = urllib.request.Request(
        f"{base_url}/v1/hotels/search",
        data=search_body(),
        method="POST",
        headers={**auth_headers(token), "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--levels", default="1,20", help="concurrency levels for the HTTP run")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds measured per level")
    parser.add_argument("--warmup", type=float, default=2.5)
    parser.add_argument("--server", default=devstack.DEFAULT_SERVER)
    parser.add_argument("--workers", type=int, default=devstack.DEFAULT_WORKERS)
    args = parser.parse_args(argv)
    levels = [int(level) for level in args.levels.split(",")]

    os.chdir(ROOT)
    with devstack.Services.ensure(redis_db=9) as services:
        url = bench_database_url(services.database_url, BENCH_DATABASE_SUFFIX)
        recreate_database(url, BENCH_DATABASE_SUFFIX)
        supervisor = devstack.Supervisor()
        try:
            port = devstack.free_port()
            hotels_url = f"http://127.0.0.1:{port}"
            supervisor.start(
                "hotels simulator",
                [devstack.PYTHON, "-m", "booking.simulators", "hotels", "--port", str(port)],
                services.environ(),
            )
            devstack.wait_http(f"{hotels_url}/_health", supervisor, timeout=30)
            for vendor, latency in VENDOR_LATENCY_MS.items():
                control(hotels_url, vendor, latencyMs=latency)
            control(hotels_url, HUNG, hang=True)
            env = bench_environ(
                services,
                DATABASE_URL=url,
                LOG_LEVEL="WARNING",
                NEXA_HOTELS_URL=hotels_url,
                NEXA_HOTEL_VENDORS=",".join([*VENDOR_LATENCY_MS, HUNG]),
                NEXA_BREAKER_FAIL_MAX="1000000000",
            )
            setup_django(env)
            from booking.hotels import hotels_seed_demo

            hotels_seed_demo(airline=AIRLINE)
            token = devstack.demo_tokens(env, airline=AIRLINE, ttl=3600)["AIRPORT_OPERATOR"]
            base_url = start_server(
                supervisor, env, name="bench-hotels", server=args.server, workers=args.workers
            ).base_url
            sample = one_search(base_url, token)
            statuses = {vendor["vendor"]: vendor["status"] for vendor in sample["vendors"]}
            sources = sorted({offer["source"] for offer in sample["offers"]})
            print(f"one search: vendors {statuses}; offers {len(sample['offers'])} from {sources}")
            shape_ok = statuses == {**dict.fromkeys(VENDOR_LATENCY_MS, "ok"), HUNG: "timeout"} and sources == sorted(
                VENDOR_LATENCY_MS
            )
            ping = measure_ping_baseline(base_url, token, levels=levels, duration=5.0, warmup=1.0)
            searches = measure(
                f"{base_url}/v1/hotels/search",
                levels=levels,
                duration=args.duration,
                warmup=args.warmup,
                method="POST",
                headers=auth_headers(token),
                body=search_body(),
            )
        finally:
            supervisor.stop_all()

    print(format_results(f"\nping ({args.server}, {args.workers} workers)", ping.levels))
    print(format_results("\nPOST /v1/hotels/search (5 vendors, 1 hung)", searches))
    print()
    within = shape_ok
    for result in searches:
        reference = ping.at(result.concurrency) or ping.best
        print(
            f"RATIO hotel_search c={result.concurrency} p50_ms={result.p50_ms:.1f} p99_ms={result.p99_ms:.1f} "
            f"max_ms={result.max_ms:.1f} ok={result.ok} errors={result.errors} ping_p99_ms={reference.p99_ms:.2f} "
            f"ratio_p99_to_ping={result.p99_ms / reference.p99_ms:.0f}"
        )
        # every answer inside the window: the fastest is at least p50's floor, the slowest the max
        within = (
            within
            and result.errors == 0
            and WINDOW_S[0] * 1000 <= result.p50_ms
            and result.max_ms <= WINDOW_S[1] * 1000
        )
    print(
        f"{'PASS' if within else 'FAIL'} every search answered within {WINDOW_S[0]:.1f} to {WINDOW_S[1]:.1f} s "
        f"with the four healthy vendors' offers (shape check {'ok' if shape_ok else 'FAILED'})"
    )
    return 0 if within else 1


if __name__ == "__main__":
    sys.exit(main())
