"""Sustained load on ``POST /v1/subcases/{urn}/compensate`` (ARCHITECTURE §10: the 202 p99 < 50 ms at
200 req/s sustained; throughput ≥ 50 % of the authenticated ping on the same server, same run).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/nexa_transport REDIS_URL=redis://127.0.0.1:6379/12 \\
        .venv/bin/python -m bench.compensate [--mode both|fixed|closed] [--rate 200] [--duration 10] \\
        [--levels 8,32] [--level-duration 5] [--with-worker]

Steps:

1. A fresh database ``<DATABASE_URL's name>_bench_compensate``, migrated; IB cases of 300 passengers each
   (a full flight) declared through ``cases.services.case_declare``, enough that every request names a
   sub-case of its own at its current version (1): each request is a new compensation (MEAL + CASH +
   TRANSPORT), never a dedupe hit.
2. The provider simulators (``nexa.devstack.start_simulators``) and the ASGI server ``make run`` uses
   (uvicorn, 2 workers; ``NEXA_BENCH=1``, ``DEBUG=0``, no access log, the throttle never refusing) on
   loopback. A Celery worker only with ``--with-worker``: the 202 does not wait for it (the saga messages
   queued meanwhile are purged from this Redis database at the end).
3. In the same run: the ping baseline (bench/load.py) and the write floor (``POST /v1/_bench/write``: the ping
   plus one transaction with one outbox row — what any write costs here) at the closed-loop concurrencies,
   then (in this order)
   * ``closed``: max throughput, ``--levels`` closed-loop clients (bench/load.py), ratio to the ping at
     the same concurrency;
   * ``fixed``: open loop at ``--rate`` req/s for ``--duration`` s (a request is sent at its scheduled
     instant whatever the previous ones are doing; latency is measured from that instant, so queueing
     shows up instead of being hidden — no coordinated omission).
4. Counts the saga runs in the database: one per 202, plus one per request the client gave up on (10 s
   timeout) that the server still completed.

Prints tables, ``RATIO compensate …`` lines and PASS/FAIL lines for the two budgets (reported; the exit
status is non-zero only when a request was answered with anything but 202; client timeouts count as
errors in the tables). At most 256 connections in fixed mode (a client pool): beyond it requests queue,
and their wait counts in their latency. Bounded in time: about
``duration + len(levels) * (level-duration + 0.5) * 2`` s plus setup.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import os
import sys
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bench.databases import bench_database_url, recreate_database
from bench.load import (
    LevelResult,
    _Connection,
    _payload,
    _run,
    auth_headers,
    format_results,
    level_result,
    measure,
    measure_ping_baseline,
    percentile,
    ratio_line,
)
from bench.stack import bench_environ, setup_django, start_server
from nexa import devstack

ROOT = Path(__file__).resolve().parent.parent
AIRLINE = "IB"
PASSENGERS_PER_CASE = 300
BUDGET_P99_MS = 50.0
BUDGET_RATE = 200.0
BUDGET_RATIO = 0.5
WRITE_FLOOR_PATH = "/v1/_bench/write"
MAX_CONNECTIONS = 256
ITEMS = [
    {"type": "MEAL", "amount": "25.00", "currency": "EUR"},
    {"type": "CASH", "amount": "250.00", "currency": "EUR", "regulation": "EU261"},
    {
        "type": "TRANSPORT",
        "provider": "UBER",
        "pickup": {"lat": 40.4719, "lng": -3.5626, "address": "MAD T4"},
        "dropoff": {"lat": 40.4168, "lng": -3.7038, "address": "Hotel Centro"},
    },
]


# --- shared with bench/saga.py ------------------------------------------------------------------------


def declare_subcases(count: int, *, flight_base: int = 4000) -> list[str]:
    """``count`` passengers on IB cases of :data:`PASSENGERS_PER_CASE` (declared through the service);
    returns their sub-case URNs in manifest order. Passengers have a phone (SMS simulator) and no email."""
    import datetime as dt

    from cases.services import case_declare
    from nexa.platform.auth import Principal
    from nexa.platform.roles import Role

    operator = "urn:nexa:user:ib-bench-supervisor"
    supervisor = Principal(airline=AIRLINE, role=Role.OPS_SUPERVISOR, operator_urn=operator, subject=operator)
    departure = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=2)
    urns: list[str] = []
    for number, start in enumerate(range(0, count, PASSENGERS_PER_CASE)):
        seats = range(start, min(count, start + PASSENGERS_PER_CASE))
        case = case_declare(
            principal=supervisor,
            airport="MAD",
            flight_number=f"IB{flight_base + number}",
            flight_date=departure.date(),
            scheduled_departure=departure,
            cause="CANCELLATION",
            passengers=[
                {"firstName": f"Pax{seat}", "lastName": "Bench", "pnr": f"B{seat:05d}", "phone": "+34600123456"}
                for seat in seats
            ],
        )
        urns += [sub_case.urn for sub_case in case.subcases.order_by("created_at", "id")]
    return urns


def operator_token(role: str = "AIRPORT_OPERATOR") -> str:
    from nexa.platform.auth import issue_token

    return issue_token(airline=AIRLINE, role=role, operator_urn="urn:nexa:user:ib-bench-operator", ttl_seconds=3600)


def bench_env(services: devstack.Services, database_url: str) -> dict[str, str]:
    """The server's environment (``bench.stack.bench_environ``) with this run's own provider simulators."""
    env = bench_environ(services, DATABASE_URL=database_url, LOG_LEVEL="WARNING")
    for _name, _module, _kind, _port, variables in devstack.SIMULATORS:
        for variable in variables:
            env.pop(variable, None)  # always this run's own simulators
    return env


def start_worker(
    supervisor: devstack.Supervisor,
    env: dict,
    *,
    name: str,
    processes: int = devstack.WORKER_PROCESSES,
    concurrency: int = devstack.WORKER_CONCURRENCY,
    pool: str = devstack.WORKER_POOL,
) -> None:
    """The Celery workers as ``make run`` starts them (``devstack.worker_command``), unless told otherwise."""
    for number in range(1, processes + 1):
        node = f"{name}-{number}"
        command = devstack.worker_command(node=node, concurrency=concurrency, pool=pool, loglevel="WARNING")
        log_file = (devstack.state_dir() / f"{node}.log").open("w")
        supervisor.start(node, command, env, stdout=log_file, stderr=log_file)


def purge_queues() -> None:
    """Drop the saga/notification messages this run left in its Redis database."""
    from nexa.celery import app

    app.control.purge()


def compensate_body(version: int = 1, reason: str = "bench: flight cancelled") -> bytes:
    return json.dumps({"version": version, "items": ITEMS, "reason": reason}).encode()


# --- the open-loop (fixed-rate) generator ---------------------------------------------------------------


@dataclass
class FixedRateResult:
    rate: float
    duration_s: float
    sent: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    connections: int = 0
    wall_s: float = 0.0

    @property
    def ok(self) -> int:
        return self.statuses.get("202", 0)

    @property
    def achieved_rps(self) -> float:
        return self.ok / self.wall_s if self.wall_s else math.nan

    def quantile(self, q: float) -> float:
        return percentile(sorted(self.latencies_ms), q)


async def fixed_rate(
    base_url: str, headers: dict, targets, *, rate: float, duration: float, timeout: float = 10.0
) -> FixedRateResult:
    """Send request ``i`` at ``start + i / rate`` on a free keep-alive connection (a new one when all are
    busy); latency = completion - scheduled instant."""
    parsed = urllib.parse.urlsplit(base_url)
    if parsed.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError("bench/ only loads loopback servers")
    loop = asyncio.get_running_loop()
    result = FixedRateResult(rate=rate, duration_s=duration)
    idle: list[_Connection] = []
    total = int(rate * duration)
    slots = asyncio.Semaphore(MAX_CONNECTIONS)  # like a client's connection pool: beyond it, requests queue

    async def one(scheduled: float) -> None:
        path = next(targets)
        payload = _payload("POST", path, parsed.netloc, {**headers, "Content-Type": "application/json"},
                           compensate_body())  # fmt: skip
        async with slots:
            connection = idle.pop() if idle else _Connection(parsed.hostname, parsed.port)
            if connection.writer is None:
                result.connections += 1
            try:
                status = await asyncio.wait_for(connection.request(payload), timeout)
            except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError):
                connection.close()
                result.statuses["error"] += 1
                return
            result.latencies_ms.append((loop.time() - scheduled) * 1000)
            result.statuses[str(status)] += 1
            idle.append(connection)

    start = loop.time() + 0.05
    tasks = []
    for index in range(total):
        scheduled = start + index / rate
        delay = scheduled - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(one(scheduled)))
        result.sent += 1
    await asyncio.gather(*tasks)
    result.wall_s = loop.time() - start
    for connection in idle:
        connection.close()
    return result


def database_check(subcases: list[str], accepted: int) -> dict[str, int]:
    from cases.models import SagaRun

    return {"accepted_202": accepted, "saga_runs": SagaRun.objects.count()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=("both", "fixed", "closed"), default="both")
    parser.add_argument("--rate", type=float, default=BUDGET_RATE, help="fixed mode: requests per second")
    parser.add_argument(
        "--fixed-target",
        choices=("compensate", "write-floor"),
        default="compensate",
        help="fixed mode: what the open loop sends (write-floor: POST /v1/_bench/write, for comparison)",
    )
    parser.add_argument("--duration", type=float, default=10.0, help="fixed mode: seconds")
    parser.add_argument("--levels", default="8,32", help="closed mode: concurrency levels")
    parser.add_argument("--level-duration", type=float, default=5.0, help="closed mode and ping: seconds per level")
    parser.add_argument("--subcases", type=int, default=0, help="sub-cases to declare (default: enough)")
    parser.add_argument("--server", default=devstack.DEFAULT_SERVER)
    parser.add_argument("--workers", type=int, default=devstack.DEFAULT_WORKERS)
    parser.add_argument("--with-worker", action="store_true", help="also run a Celery worker (make run's)")
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / "compensate.json")
    args = parser.parse_args(argv)
    levels = [int(level) for level in args.levels.split(",")] if args.mode != "fixed" else []
    # Enough for the fixed run plus closed loops up to ~700 req/s each (warm-up included), with a margin.
    needed = (int(args.rate * args.duration) if args.mode != "closed" else 0) + sum(
        int(700 * (args.level_duration + 0.5)) for _ in levels
    )
    count = args.subcases or needed

    os.chdir(ROOT)
    suffix = "_bench_compensate"
    with devstack.Services.ensure(redis_db=12) as services:
        url = bench_database_url(services.database_url, suffix)
        recreate_database(url, suffix)
        supervisor = devstack.Supervisor()
        try:
            env = bench_env(services, url)
            env.update(devstack.start_simulators(supervisor, env))
            setup_django(env)
            began = time.perf_counter()
            subcases = declare_subcases(count)
            print(f"{len(subcases)} sub-cases declared in {time.perf_counter() - began:.1f} s; database {url}")
            token = operator_token()
            server = start_server(supervisor, env, name="bench-compensate", server=args.server, workers=args.workers)
            base_url = server.base_url
            if args.with_worker:
                start_worker(supervisor, env, name="bench-compensate-worker")
            targets = iter([f"/v1/subcases/{urn}/compensate" for urn in subcases])
            headers = auth_headers(token)
            load_before = os.getloadavg()
            ping = measure_ping_baseline(base_url, token, levels=levels or [8], duration=args.level_duration)
            # The floor of any write on this server: the ping plus one transaction with one outbox row.
            write_floor = measure(
                base_url + WRITE_FLOOR_PATH,
                levels=levels,
                duration=args.level_duration,
                method="POST",
                headers={**headers, "Content-Type": "application/json"},
                body=b"{}",
            )
            # Closed loop first: an overloaded fixed-rate run leaves requests the server is still working on
            # after the client gave up, which would slow whatever is measured next.
            closed: list[LevelResult] = []
            for concurrency in levels:
                closed.append(_run(_closed(base_url, headers, targets, concurrency, args.level_duration)))
                time.sleep(0.3)
            fixed = None
            if args.mode in ("both", "fixed"):
                fixed_targets = itertools.repeat(WRITE_FLOOR_PATH) if args.fixed_target == "write-floor" else targets
                fixed = _run(fixed_rate(base_url, headers, fixed_targets, rate=args.rate, duration=args.duration))
            load_after = os.getloadavg()
        finally:
            supervisor.stop_all()
        accepted = (fixed.ok if fixed and args.fixed_target == "compensate" else 0) + sum(
            level.statuses.get("202", 0) + level.statuses.get("202-warmup", 0) for level in closed
        )
        check = database_check(subcases, accepted)
        purge_queues()

    print(format_results(f"\nping ({args.server}, {args.workers} workers)", ping.levels))
    report: dict = {
        "taken_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": " ".join(["python -m bench.compensate", *(argv if argv is not None else sys.argv[1:])]),
        "server": f"{args.server} --workers {args.workers}",
        "celery_worker": args.with_worker,
        "loadavg_before": load_before,
        "loadavg_after": load_after,
        "ping": [level.as_dict() for level in ping.levels],
    }
    failed = False
    if fixed is not None:
        p50, p90, p99 = (fixed.quantile(q) for q in (0.5, 0.9, 0.99))
        print(
            f"\nfixed rate {fixed.rate:.0f} req/s for {fixed.duration_s:.0f} s ({args.fixed_target}): "
            f"sent {fixed.sent}, "
            f"202 {fixed.ok} ({fixed.achieved_rps:.0f}/s achieved), p50 {p50:.2f} ms p90 {p90:.2f} ms "
            f"p99 {p99:.2f} ms max {max(fixed.latencies_ms, default=math.nan):.1f} ms, "
            f"statuses {dict(fixed.statuses)}, connections {fixed.connections}"
        )
        report["fixed"] = {
            "target": args.fixed_target,
            "rate": fixed.rate,
            "duration_s": fixed.duration_s,
            "sent": fixed.sent,
            "ok": fixed.ok,
            "achieved_rps": fixed.achieved_rps,
            "p50_ms": p50,
            "p90_ms": p90,
            "p99_ms": p99,
            "statuses": dict(fixed.statuses),
            "connections": fixed.connections,
        }
        failed |= any(status not in ("202", "error") for status in fixed.statuses)
    if closed:
        print(format_results("\ncompensate, closed loop (max throughput)", closed))
        print(format_results("\nwrite floor (POST /v1/_bench/write: one transaction, one outbox row)", write_floor))
        print(ratio_line("write-floor", write_floor, ping))
        print(ratio_line("compensate", closed, ping))
        report["write_floor"] = [level.as_dict() for level in write_floor]
        report["write_floor_ratios"] = {str(level.concurrency): ping.ratio(level) for level in write_floor}
        report["closed"] = [level.as_dict() for level in closed]
        report["ratios"] = {str(level.concurrency): ping.ratio(level) for level in closed}
        failed |= any(not status.startswith(("202", "error")) for level in closed for status in level.statuses)
    print(f"\ndatabase: {check}   load average before {load_before}   after {load_after}")
    report["database"] = check
    if fixed is not None and args.fixed_target == "write-floor":
        print(f"write floor (reference, no budget): p99 {fixed.quantile(0.99):.2f} ms at {fixed.rate:.0f} req/s")
    elif fixed is not None:
        verdict = "PASS" if fixed.quantile(0.99) < BUDGET_P99_MS and fixed.ok == fixed.sent else "FAIL"
        print(f"{verdict} p99 {fixed.quantile(0.99):.2f} ms at {fixed.rate:.0f} req/s vs budget {BUDGET_P99_MS:.0f} ms")
    if closed:
        best = max(ping.ratio(level) for level in closed)
        verdict = "PASS" if best >= BUDGET_RATIO else "FAIL"
        print(f"{verdict} throughput {best:.1%} of the ping at the same concurrency vs budget {BUDGET_RATIO:.0%}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2, default=list))
    print(f"results written to {args.output}")
    return 1 if failed else 0


async def _closed(base_url, headers, targets, concurrency: int, duration: float, warmup: float = 0.5) -> LevelResult:
    """bench/load.py's closed loop, except that each request names the next unused sub-case (its own URL)."""
    parsed = urllib.parse.urlsplit(base_url)
    loop = asyncio.get_running_loop()
    measure_from = loop.time() + warmup
    stop_at = measure_from + duration
    latencies: list[float] = []
    statuses: Counter = Counter()
    errors = 0
    body = compensate_body()
    request_headers = {**headers, "Content-Type": "application/json"}

    async def client() -> None:
        nonlocal errors
        connection = _Connection(parsed.hostname, parsed.port)
        try:
            while (now := loop.time()) < stop_at:
                payload = _payload("POST", next(targets), parsed.netloc, request_headers, body)
                began = time.perf_counter()
                try:
                    status = await asyncio.wait_for(connection.request(payload), 10.0)
                except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError):
                    connection.close()
                    errors += 1
                    statuses["error"] += 1
                    continue
                elapsed = time.perf_counter() - began
                if now >= measure_from:
                    statuses[str(status)] += 1
                    if status == 202:
                        latencies.append(elapsed)
                    else:
                        errors += 1
                elif status == 202:
                    statuses["202-warmup"] += 1
                else:
                    errors += 1
                    statuses[f"{status}-warmup"] += 1
        finally:
            connection.close()

    await asyncio.gather(*(client() for _ in range(concurrency)))
    return level_result(
        concurrency=concurrency, duration=duration, latencies=latencies, errors=errors, statuses=statuses
    )


if __name__ == "__main__":
    sys.exit(main())
