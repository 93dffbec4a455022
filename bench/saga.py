"""A 300-passenger flight compensated at once (ARCHITECTURE §10 via issue 5: every saga completed in
< 30 s with the default worker count, simulators at realistic latency), and sagas/s.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/nexa_transport REDIS_URL=redis://127.0.0.1:6379/12 \\
        .venv/bin/python -m bench.saga [--subcases 300] [--latency 50,300] [--timeout 240] \\
        [--worker-processes 2] [--worker-pool threads] [--worker-concurrency 16]

Steps:

1. A fresh database ``<DATABASE_URL's name>_bench_saga``, migrated; one IB case of ``--subcases``
   passengers (phone only: SMS simulator) declared through ``cases.services.case_declare``.
2. The provider simulators with ``latencyMs = [50, 300]`` (uniform per call) on the PSP, transport and
   SMS simulators; the ASGI server and the Celery workers exactly as ``make run`` starts them (uvicorn
   ``--workers 2``; two ``celery worker -Q saga,notifications,sla,default --pool threads --concurrency 16``
   processes: ``nexa.devstack.worker_command``), unless the ``--worker-*`` options say otherwise.
3. Every sub-case is compensated through the API (MEAL + CASH + TRANSPORT, then ``notify.passenger``:
   four provider calls per saga), 32 requests in flight, then the database is polled until every run
   has finished. The clock starts at the first request and stops at the last run's ``finished_at``.
4. The simulators' ledgers are checked: exactly one card, one payout and one ride per sub-case.

Prints the time to submit, the time until every saga completed, sagas/s, the runs per status and
PASS/FAIL for the 30 s budget (reported; the exit status is non-zero when a run did not complete or an
effect is missing or doubled). Bounded by ``--timeout``.
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
from pathlib import Path

from bench.compensate import (
    bench_env,
    compensate_body,
    declare_subcases,
    operator_token,
    purge_queues,
    start_worker,
)
from bench.databases import bench_database_url, recreate_database
from bench.load import _Connection, _payload, _run, auth_headers
from bench.stack import setup_django, start_server
from nexa import devstack

ROOT = Path(__file__).resolve().parent.parent
BUDGET_SECONDS = 30.0
IN_FLIGHT = 32
FINAL = ("COMPLETED", "FAILED", "CANCELLED")


def simulator_latency(env: dict, latency: list[int]) -> None:
    import httpx

    for url in sorted({env["NEXA_PSP_URL"], env["NEXA_TRANSPORT_URL"], env["NEXA_SMS_URL"]}):
        httpx.post(f"{url}/_control", json={"latencyMs": latency}, timeout=5).raise_for_status()


def ledger_counts(env: dict) -> dict[str, Counter]:
    """Per simulator: effects per (type, sub-case)."""
    import httpx

    counts = {}
    for name in ("NEXA_PSP_URL", "NEXA_TRANSPORT_URL", "NEXA_SMS_URL"):
        entries = httpx.get(f"{env[name]}/_ledger", timeout=10).json()["entries"]
        counts[name] = Counter((entry["type"], entry.get("subCaseUrn")) for entry in entries)
    return counts


async def submit(base_url: str, token: str, subcases: list[str]) -> Counter:
    parsed = urllib.parse.urlsplit(base_url)
    headers = {**auth_headers(token), "Content-Type": "application/json"}
    body = compensate_body(reason="bench: 300-passenger cancellation")
    pending = iter(subcases)
    statuses: Counter = Counter()

    async def client() -> None:
        connection = _Connection(parsed.hostname, parsed.port)
        try:
            for urn in pending:
                payload = _payload("POST", f"/v1/subcases/{urn}/compensate", parsed.netloc, headers, body)
                statuses[str(await asyncio.wait_for(connection.request(payload), 30.0))] += 1
        finally:
            connection.close()

    await asyncio.gather(*(client() for _ in range(IN_FLIGHT)))
    return statuses


def runs_by_status() -> Counter:
    from django.db.models import Count

    from cases.models import SagaRun

    return Counter(dict(SagaRun.objects.order_by().values_list("status").annotate(n=Count("id"))))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subcases", type=int, default=300)
    parser.add_argument("--latency", default="50,300", help="simulator latencyMs [min,max]")
    parser.add_argument(
        "--worker-concurrency",
        type=int,
        default=devstack.WORKER_CONCURRENCY,
        help=f"make run's default is {devstack.WORKER_CONCURRENCY}",
    )
    parser.add_argument(
        "--worker-processes",
        type=int,
        default=devstack.WORKER_PROCESSES,
        help=f"make run's default is {devstack.WORKER_PROCESSES}",
    )
    parser.add_argument("--worker-pool", default=devstack.WORKER_POOL, help=f"make run's is {devstack.WORKER_POOL}")
    parser.add_argument("--timeout", type=float, default=240.0, help="give up waiting after this many seconds")
    parser.add_argument("--server", default=devstack.DEFAULT_SERVER)
    parser.add_argument("--workers", type=int, default=devstack.DEFAULT_WORKERS)
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / "saga.json")
    args = parser.parse_args(argv)
    latency = [int(part) for part in args.latency.split(",")]

    os.chdir(ROOT)
    suffix = "_bench_saga"
    with devstack.Services.ensure(redis_db=12) as services:
        url = bench_database_url(services.database_url, suffix)
        recreate_database(url, suffix)
        supervisor = devstack.Supervisor()
        try:
            env = bench_env(services, url)
            env.update(devstack.start_simulators(supervisor, env))
            setup_django(env)
            purge_queues()
            subcases = declare_subcases(args.subcases, flight_base=6000)
            token = operator_token()
            simulator_latency(env, latency)
            base_url = start_server(
                supervisor, env, name="bench-saga", server=args.server, workers=args.workers
            ).base_url
            start_worker(
                supervisor,
                env,
                name="bench-saga-worker",
                processes=args.worker_processes,
                concurrency=args.worker_concurrency,
                pool=args.worker_pool,
            )
            time.sleep(3.0)  # let the pool come up before the clock starts
            load_before = os.getloadavg()
            from django.utils import timezone

            started_at = timezone.now()
            began = time.perf_counter()
            statuses = _run(submit(base_url, token, subcases))
            submitted_s = time.perf_counter() - began
            deadline = began + args.timeout
            while True:
                counts = runs_by_status()
                if sum(counts[status] for status in FINAL) >= len(subcases) or time.perf_counter() > deadline:
                    break
                time.sleep(0.2)
            waited_s = time.perf_counter() - began
            load_after = os.getloadavg()
            from django.db.models import Max, Min

            from cases.models import SagaRun

            bounds = SagaRun.objects.aggregate(last=Max("finished_at"), first=Min("created_at"))
            ledgers = ledger_counts(env)
        finally:
            supervisor.stop_all()
        purge_queues()

    done = counts["COMPLETED"]
    all_done = done == len(subcases)
    elapsed = (bounds["last"] - started_at).total_seconds() if all_done and bounds["last"] else waited_s
    psp, transport = ledgers["NEXA_PSP_URL"], ledgers["NEXA_TRANSPORT_URL"]
    exact = {
        "cards": sum(1 for (kind, _urn), n in psp.items() if kind == "card_issued" and n == 1),
        "payouts": sum(1 for (kind, _urn), n in psp.items() if kind == "payout" and n == 1),
        "rides": sum(1 for (kind, _urn), n in transport.items() if kind == "ride_requested" and n == 1),
    }
    effects_ok = all(value == len(subcases) for value in exact.values())
    print(
        f"\n{len(subcases)} compensations (MEAL + CASH + TRANSPORT + notify), simulators latencyMs={latency}, "
        f"workers {args.worker_processes} x {args.worker_pool} pool of {args.worker_concurrency}"
    )
    print(f"  submitted in {submitted_s:.2f} s, statuses {dict(statuses)}")
    print(f"  runs by status: {dict(counts)}")
    print(f"  every saga finished after {elapsed:.2f} s -> {len(subcases) / elapsed:.2f} sagas/s" if all_done else
          f"  NOT all completed after {waited_s:.1f} s: {done} completed -> {done / waited_s:.2f} sagas/s")  # fmt: skip
    print(f"  exactly-one effects per sub-case: {exact}")
    print(f"  load average before {load_before}   after {load_after}")
    verdict = "PASS" if all_done and elapsed < BUDGET_SECONDS else "FAIL"
    print(f"{verdict} all {len(subcases)} sagas completed in {elapsed:.2f} s vs budget {BUDGET_SECONDS:.0f} s")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        json.dumps(
            {
                "taken_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "command": " ".join(["python -m bench.saga", *(argv if argv is not None else sys.argv[1:])]),
                "subcases": len(subcases),
                "latency_ms": latency,
                "worker_concurrency": args.worker_concurrency,
                "worker_pool": args.worker_pool,
                "worker_processes": args.worker_processes,
                "submit_s": submitted_s,
                "statuses": dict(statuses),
                "runs_by_status": dict(counts),
                "all_completed": all_done,
                "elapsed_s": elapsed,
                "sagas_per_s": (len(subcases) if all_done else done) / elapsed,
                "exactly_one": exact,
                "loadavg_before": load_before,
                "loadavg_after": load_after,
            },
            indent=2,
        )
    )
    print(f"results written to {args.output}")
    return 0 if all_done and effects_ok else 1


if __name__ == "__main__":
    sys.exit(main())
