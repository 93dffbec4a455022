"""Lock storm (ARCHITECTURE §10): 50 operators, each with their own token and keep-alive connection,
race for the lock of each of 200 sub-cases over HTTP against the live ASGI server.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/nexa_locks REDIS_URL=redis://127.0.0.1:6379/10 \\
        .venv/bin/python -m bench.locks [--operators 50] [--subcases 200] [--ping-duration 3] [--bursts 100]

Steps:

1. A fresh database ``<DATABASE_URL's name>_bench_locks``, migrated, with one IB case of ``--subcases``
   passengers declared through ``cases.services.case_declare``.
2. The ASGI server ``make run`` uses (bench/baseline.py's settings: ``NEXA_BENCH=1``, ``DEBUG=0``, no
   access log, the throttle never refusing), then in the same run:
   * the ping baseline (bench/load.py) at concurrency = ``--operators``;
   * the storm: for each sub-case in turn, all operators send ``POST /v1/subcases/{urn}/lock`` at the
     same instant (each on its own connection) and every answer is read and checked: exactly one 200,
     every other a 409 ``subcase-locked`` naming the winner.
   * the budget's own measurement (``--bursts``, default 100): per burst, all operators fire
     ``POST …/lock`` at one fresh sub-case at the same instant (requests prepared, connections already
     open, released by one barrier); every answer's latency counts from the release. Each lock burst is
     preceded by a burst of the ping from the same connections, measured the same way, with
     ``--burst-gap`` seconds idle before each burst, so the ratio of the two p99s shows what the
     machine allows (``BURST ping …``, ``BURST locks …``, ``RATIO lockburst …``).
3. The database is checked afterwards: one held lease per sub-case, token 1, one audit grant each.

Prints throughput, p50/p90/p99/max latency, the winner count per sub-case, the ``RATIO locks …`` line
(storm req/s over the ping's at the same concurrency) and PASS/FAIL lines: exactly one winner per
sub-case and per burst (the exit status) and the p99 < 100 ms budget for both (reported only).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bench.databases import bench_database_url, recreate_database
from bench.load import _payload, format_results, measure_ping_baseline, percentile
from bench.stack import bench_environ, setup_django, start_server
from nexa import devstack

ROOT = Path(__file__).resolve().parent.parent
BENCH_DATABASE_SUFFIX = "_bench_locks"
AIRLINE = "IB"
BUDGET_P99_MS = 100.0


def load_subcases(count: int) -> list[str]:
    """One case of ``count`` passengers, declared through the service; returns the sub-case URNs."""
    import datetime as dt

    from cases.services import case_declare
    from nexa.platform.auth import Principal
    from nexa.platform.roles import Role

    operator = "urn:nexa:user:ib-bench-supervisor"
    supervisor = Principal(airline=AIRLINE, role=Role.OPS_SUPERVISOR, operator_urn=operator, subject=operator)
    departure = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=2)
    case = case_declare(
        principal=supervisor,
        airport="MAD",
        flight_number="IB3166",
        flight_date=departure.date(),
        scheduled_departure=departure,
        cause="CANCELLATION",
        passengers=[
            {"firstName": f"Pax{seat}", "lastName": "Storm", "pnr": f"S{seat:05d}", "email": f"p{seat}@example.com"}
            for seat in range(count)
        ],
    )
    return [sub_case.urn for sub_case in case.subcases.order_by("created_at", "id")]


def operator_tokens(count: int) -> dict[str, str]:
    from nexa.platform.auth import issue_token

    operators = [f"urn:nexa:user:ib-storm-{number:03d}" for number in range(count)]
    return {
        operator: issue_token(airline=AIRLINE, role="AIRPORT_OPERATOR", operator_urn=operator, ttl_seconds=3600)
        for operator in operators
    }


# --- the storm ----------------------------------------------------------------------------------------


class _Connection:
    """One keep-alive HTTP/1.1 connection that returns (status, body)."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, payload: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(payload)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length, keep_alive = 0, True
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
            elif name.strip().lower() == b"connection" and value.strip().lower() == b"close":
                keep_alive = False
        body = await self.reader.readexactly(length)
        if not keep_alive:
            self.close()
        return status, body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


@dataclass
class StormResult:
    operators: int
    subcases: int
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    winners_per_subcase: Counter = field(default_factory=Counter)
    wrong_locked_by: int = 0
    round_ms: list[float] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


async def storm(base_url: str, tokens: dict[str, str], subcases: list[str]) -> StormResult:
    parsed = urllib.parse.urlsplit(base_url)
    host, port = parsed.hostname, parsed.port
    operators = list(tokens)
    connections = {operator: _Connection(host, port) for operator in operators}
    result = StormResult(operators=len(operators), subcases=len(subcases))

    async def attempt(operator: str, urn: str) -> tuple[str, int, dict, float]:
        headers = {"Authorization": f"Bearer {tokens[operator]}", "Accept": "application/json"}
        payload = _payload("POST", f"/v1/subcases/{urn}/lock", parsed.netloc, headers, b"")
        began = time.perf_counter()
        status, body = await connections[operator].request(payload)
        return operator, status, json.loads(body or b"{}"), (time.perf_counter() - began) * 1000

    # Open every connection first (a HEAD-free warm-up: one ping each) so the storm measures locking.
    await asyncio.gather(
        *(
            connections[operator].request(
                _payload("GET", "/v1/_bench/ping", parsed.netloc, {"Authorization": f"Bearer {tokens[operator]}"}, None)
            )
            for operator in operators
        )
    )
    started = time.perf_counter()
    for urn in subcases:
        round_began = time.perf_counter()
        answers = await asyncio.gather(*(attempt(operator, urn) for operator in operators))
        result.round_ms.append((time.perf_counter() - round_began) * 1000)
        winners = [operator for operator, status, _body, _ms in answers if status == 200]
        result.winners_per_subcase[len(winners)] += 1
        for operator, status, body, elapsed_ms in answers:
            result.statuses[str(status)] += 1
            result.latencies_ms.append(elapsed_ms)
            expected = operator if status == 200 else (winners[0] if len(winners) == 1 else None)
            if body.get("lockedBy") != expected or expected is None:
                result.wrong_locked_by += 1
    result.seconds = time.perf_counter() - started
    for connection in connections.values():
        connection.close()
    return result


# --- the budget's measurement: bursts at one fresh sub-case each, against ping bursts --------------------


@dataclass
class BurstResult:
    """``bursts`` rounds; latency of every answer from the instant its burst was released."""

    name: str
    bursts: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    last_ms: list[float] = field(default_factory=list)  # per burst: until its last answer
    statuses: Counter = field(default_factory=Counter)
    winners_per_burst: Counter = field(default_factory=Counter)
    wrong_locked_by: int = 0

    def line(self) -> str:
        ordered, last = sorted(self.latencies_ms), sorted(self.last_ms)
        return (
            f"BURST {self.name} bursts={self.bursts} answers={len(ordered)} "
            f"p50_ms={percentile(ordered, 0.5):.2f} p90_ms={percentile(ordered, 0.9):.2f} "
            f"p99_ms={percentile(ordered, 0.99):.2f} max_ms={ordered[-1]:.2f} "
            f"last_answer_p50_ms={percentile(last, 0.5):.2f} last_answer_p99_ms={percentile(last, 0.99):.2f} "
            f"statuses={dict(self.statuses)}"
        )


async def bursts(
    base_url: str, tokens: dict[str, str], subcases: list[str], gap: float
) -> tuple[BurstResult, BurstResult]:
    """ARCHITECTURE §10 as written: per burst, every operator fires ``POST …/lock`` at the same instant at
    one fresh sub-case (all requests prepared, keep-alive connections already open, released together by
    one barrier), exactly one winner. Each lock burst is preceded by a burst of the ping from the same
    connections, measured the same way, so the two distributions share the machine's state. ``gap``
    seconds of idle between bursts: these are bursts, not the sustained storm."""
    parsed = urllib.parse.urlsplit(base_url)
    operators = list(tokens)
    connections = {operator: _Connection(parsed.hostname, parsed.port) for operator in operators}
    ping_payloads = {
        operator: _payload(
            "GET", "/v1/_bench/ping", parsed.netloc, {"Authorization": f"Bearer {tokens[operator]}"}, None
        )
        for operator in operators
    }
    await asyncio.gather(*(connections[o].request(ping_payloads[o]) for o in operators))  # open + warm
    locks, pings = BurstResult("locks"), BurstResult("ping")

    async def fire(payloads: dict[str, bytes]) -> tuple[float, list[tuple[str, int, bytes, float]]]:
        barrier = asyncio.Event()
        released = 0.0

        async def one(operator: str) -> tuple[str, int, bytes, float]:
            await barrier.wait()
            status, body = await connections[operator].request(payloads[operator])
            return operator, status, body, (time.perf_counter() - released) * 1000

        tasks = [asyncio.create_task(one(operator)) for operator in operators]
        await asyncio.sleep(0)  # every task is now parked on the barrier
        released = time.perf_counter()
        barrier.set()
        return released, await asyncio.gather(*tasks)

    for urn in subcases:
        await asyncio.sleep(gap)
        _released, answers = await fire(ping_payloads)
        pings.bursts += 1
        pings.last_ms.append(max(ms for *_rest, ms in answers))
        for _operator, status, _body, ms in answers:
            pings.statuses[str(status)] += 1
            pings.latencies_ms.append(ms)
        await asyncio.sleep(gap)
        lock_payloads = {
            operator: _payload(
                "POST",
                f"/v1/subcases/{urn}/lock",
                parsed.netloc,
                {"Authorization": f"Bearer {tokens[operator]}", "Accept": "application/json"},
                b"",
            )
            for operator in operators
        }
        _released, answers = await fire(lock_payloads)
        locks.bursts += 1
        locks.last_ms.append(max(ms for *_rest, ms in answers))
        winners = [operator for operator, status, _body, _ms in answers if status == 200]
        locks.winners_per_burst[len(winners)] += 1
        for operator, status, body, ms in answers:
            locks.statuses[str(status)] += 1
            locks.latencies_ms.append(ms)
            expected = operator if status == 200 else (winners[0] if len(winners) == 1 else None)
            if json.loads(body or b"{}").get("lockedBy") != expected or expected is None:
                locks.wrong_locked_by += 1
    for connection in connections.values():
        connection.close()
    return locks, pings


def database_check(subcases: list[str]) -> dict[str, int]:
    from audit.models import AuditEntry
    from operators.models import EntityLock

    locks = EntityLock.objects.filter(entity_urn__in=subcases)
    return {
        "held": locks.exclude(holder=None).count(),
        "token_1": locks.filter(fencing_token=1).count(),
        "grants_audited": AuditEntry.objects.filter(entity_urn__in=subcases, action="subcase.lock_granted").count(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--operators", type=int, default=50)
    parser.add_argument("--subcases", type=int, default=200)
    parser.add_argument("--ping-duration", type=float, default=3.0, help="seconds the ping baseline is measured")
    parser.add_argument("--server", default=devstack.DEFAULT_SERVER)
    parser.add_argument("--workers", type=int, default=devstack.DEFAULT_WORKERS)
    parser.add_argument(
        "--bursts", type=int, default=100, help="budget bursts: each at one fresh sub-case, after a ping burst"
    )
    parser.add_argument("--burst-gap", type=float, default=0.2, help="idle seconds before each burst")
    args = parser.parse_args(argv)

    os.chdir(ROOT)
    with devstack.Services.ensure(redis_db=10) as services:
        url = bench_database_url(services.database_url, BENCH_DATABASE_SUFFIX)
        recreate_database(url, BENCH_DATABASE_SUFFIX)
        env = bench_environ(services, DATABASE_URL=url, LOG_LEVEL="WARNING")
        setup_django(env)
        loaded = load_subcases(args.subcases + args.bursts)
        subcases, burst_subcases = loaded[: args.subcases], loaded[args.subcases :]
        tokens = operator_tokens(args.operators)
        print(f"{len(subcases)} sub-cases, {len(tokens)} operators, database {url}")

        supervisor = devstack.Supervisor()
        try:
            base_url = start_server(
                supervisor, env, name="bench-locks", server=args.server, workers=args.workers
            ).base_url
            load = os.getloadavg()[0]
            ping = measure_ping_baseline(
                base_url, next(iter(tokens.values())), levels=[args.operators], duration=args.ping_duration
            )
            result = asyncio.run(storm(base_url, tokens, subcases))
            burst_load = os.getloadavg()[0]
            burst_locks, burst_pings = asyncio.run(bursts(base_url, tokens, burst_subcases, args.burst_gap))
            burst_load_after = os.getloadavg()[0]
        finally:
            supervisor.stop_all()
        check = database_check(subcases)
        burst_check = database_check(burst_subcases)

    latencies = sorted(result.latencies_ms)
    rounds = sorted(result.round_ms)
    p50, p90, p99 = (percentile(latencies, q) for q in (0.50, 0.90, 0.99))
    print(format_results(f"\nping ({args.server}, {args.workers} workers; load before {load:.2f})", ping.levels))
    print(
        f"\nlock storm: {result.operators} operators x {result.subcases} sub-cases = {result.requests} requests "
        f"in {result.seconds:.2f} s"
    )
    print(
        f"  {result.rps:.0f} req/s   p50 {p50:.2f} ms   p90 {p90:.2f} ms   p99 {p99:.2f} ms   "
        f"max {latencies[-1]:.1f} ms   statuses {dict(result.statuses)}"
    )
    print(
        f"  per sub-case (all {result.operators} answered): p50 {percentile(rounds, 0.5):.1f} ms   "
        f"p99 {percentile(rounds, 0.99):.1f} ms"
    )
    print(f"  winners per sub-case: {dict(result.winners_per_subcase)}   wrong lockedBy: {result.wrong_locked_by}")
    print(f"  database: {check}")
    reference = ping.at(args.operators) or ping.best
    print(
        f"\nRATIO locks c={args.operators} rps={result.rps:.0f} ping_rps={reference.rps:.0f} "
        f"ratio={result.rps / reference.rps:.3f} p50_ms={p50:.2f} p99_ms={p99:.2f} "
        f"ping_p99_ms={reference.p99_ms:.2f}"
    )
    exact = (
        result.winners_per_subcase == Counter({1: result.subcases})
        and result.wrong_locked_by == 0
        and check == {"held": result.subcases, "token_1": result.subcases, "grants_audited": result.subcases}
    )
    print(f"{'PASS' if exact else 'FAIL'} exactly one winner per sub-case, every 409 names it, one audited grant each")

    print(
        f"\nbudget bursts: {burst_locks.bursts} x {result.operators} operators at one fresh sub-case each, "
        f"released together, each after a ping burst from the same connections, {args.burst_gap} s idle "
        f"before each burst (load {burst_load:.2f} -> {burst_load_after:.2f})"
    )
    print(burst_pings.line())
    print(burst_locks.line())
    burst_p99 = percentile(sorted(burst_locks.latencies_ms), 0.99)
    ping_burst_p99 = percentile(sorted(burst_pings.latencies_ms), 0.99)
    print(
        f"RATIO lockburst c={result.operators} p99_ms={burst_p99:.2f} ping_burst_p99_ms={ping_burst_p99:.2f} "
        f"p99_ratio={burst_p99 / ping_burst_p99:.2f}"
    )
    print(f"  winners per burst: {dict(burst_locks.winners_per_burst)}   wrong lockedBy: {burst_locks.wrong_locked_by}")
    print(f"  database: {burst_check}")
    bursts_exact = (
        burst_locks.winners_per_burst == Counter({1: burst_locks.bursts})
        and burst_locks.wrong_locked_by == 0
        and burst_check
        == {"held": burst_locks.bursts, "token_1": burst_locks.bursts, "grants_audited": burst_locks.bursts}
    )
    print(f"{'PASS' if bursts_exact else 'FAIL'} bursts: exactly one winner per burst, every 409 names it")
    print(
        f"{'PASS' if burst_p99 < BUDGET_P99_MS else 'FAIL'} bursts: p99 {burst_p99:.2f} ms vs budget "
        f"{BUDGET_P99_MS:.0f} ms (the ping burst: p99 {ping_burst_p99:.2f} ms; reported only)"
    )
    exact = exact and bursts_exact
    print(
        f"{'PASS' if p99 < BUDGET_P99_MS else 'FAIL'} p99 {p99:.2f} ms vs budget {BUDGET_P99_MS:.0f} ms "
        "(reported; the exit status checks the winners only)"
    )
    return 0 if exact else 1


if __name__ == "__main__":
    sys.exit(main())
