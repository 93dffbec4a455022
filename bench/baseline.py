"""The ping baseline: an authenticated bare ``GET /v1/_bench/ping`` at increasing concurrency.

    .venv/bin/python -m bench.baseline                      # the server `make run` uses
    .venv/bin/python -m bench.baseline --compare            # every ASGI server choice, one after another
    .venv/bin/python -m bench.baseline --servers daphne,uvicorn --levels 1,8,32,64 --duration 3

Starts PostgreSQL/Redis like ``make run`` (embedded unless DATABASE_URL/REDIS_URL), migrates,
then the ASGI server with NEXA_BENCH=1, DEBUG=0 and no access log (no seed, no Celery), on a free
loopback port. Prints a table per server, a ``BASELINE`` summary line per server and writes
bench/results/baseline.json. Bounded: (warmup + duration) per level per server.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from bench.load import DEFAULT_LEVELS, LevelResult, format_results, measure_ping_baseline, summary_line
from bench.stack import bench_environ, start_server
from nexa import devstack

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def run_server(kind: str, env: dict, token: str, args: argparse.Namespace) -> dict:
    supervisor = devstack.Supervisor()
    try:
        server = start_server(supervisor, env, name=f"bench-{kind}", server=kind, workers=args.workers)
        command = server.command
        load = os.getloadavg()[0]
        baseline = measure_ping_baseline(
            server.base_url, token, levels=args.levels, duration=args.duration, warmup=args.warmup
        )
    finally:
        supervisor.stop_all()
    print(format_results(f"\n{kind}  ({' '.join(command[1:])})  load before: {load:.2f}", baseline.levels))
    return {
        "server": kind,
        "command": " ".join(["python", *command[1:]]),
        "loadavg_before": load,
        **baseline.as_dict(),
    }


def concurrent_rps(result: dict) -> float:
    """How a server is ranked: mean throughput where several clients compete (c >= 8, else all)."""
    levels = [level for level in result["levels"] if level["concurrency"] >= 8] or result["levels"]
    return sum(level["rps"] for level in levels) / len(levels)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", default=devstack.DEFAULT_SERVER, help="comma-separated server choices")
    parser.add_argument("--compare", action="store_true", help="every server choice")
    parser.add_argument("--levels", default=",".join(map(str, DEFAULT_LEVELS)), help="concurrency levels")
    parser.add_argument("--duration", type=float, default=3.0, help="seconds measured per level")
    parser.add_argument("--warmup", type=float, default=0.5, help="seconds discarded per level")
    parser.add_argument("--workers", type=int, default=devstack.DEFAULT_WORKERS, help="for multi-process servers")
    parser.add_argument("--output", type=Path, default=RESULTS_DIR / "baseline.json")
    args = parser.parse_args(argv)
    args.levels = [int(level) for level in args.levels.split(",")]
    servers = list(devstack.SERVER_CHOICES) if args.compare else args.servers.split(",")
    for kind in servers:
        devstack.server_command(kind)  # unknown names fail before anything starts

    os.chdir(devstack.ROOT)
    results = []
    with devstack.Services.ensure(redis_db=2) as services:
        env = bench_environ(services)
        devstack.manage(env, "migrate", "--noinput", "-v", "0")
        token = devstack.demo_tokens(env, ttl=3600)["OPS_SUPERVISOR"]
        for kind in servers:
            results.append(run_server(kind, env, token, args))
            time.sleep(1)

    print()
    for result in results:
        print(summary_line(result["server"], [LevelResult(**level) for level in result["levels"]]))
    if len(results) > 1:
        best = max(results, key=concurrent_rps)
        print(f"WINNER {best['server']} (highest mean req/s over the levels with concurrency >= 8)")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"taken_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "runs": results}, indent=2))
    print(f"results written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
