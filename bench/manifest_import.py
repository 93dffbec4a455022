"""Manifest import throughput: 10 000 passengers into a fresh case, rows per second (median of 3).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/nexa_seed REDIS_URL=redis://127.0.0.1:6379/9 \\
        .venv/bin/python -m bench.manifest_import [--rows 10000] [--runs 3] [--batches 500,1000] [--no-http]

Steps:

1. A fresh database ``<DATABASE_URL's name>_bench_manifest`` (dropped and created every time),
   migrated. Rows: ``operators.management.commands._demo.demo_manifest`` — the realistic demo
   manifest generator (families, PRM passengers, mixed tiers, contact details) at ``--rows``
   passengers, deterministic — written to a ``.json`` and a ``.csv`` file.
2. ``manage.py import_manifest CASE_URN FILE`` (``call_command`` in this process: file parsing,
   validation, ``cases.services.manifest_append`` with its batched inserts, audit and outbox),
   each run into a case freshly declared through ``case_declare``; per file format, ``--runs``
   times. Then the same file once more into the last case (everything skipped: the idempotent
   re-run).
3. Unless ``--no-http``: the ASGI server ``make run`` uses (uvicorn, 2 workers, ``NEXA_BENCH=1``,
   no access log, the throttle set out of the way) on a free loopback port; per ``--batches``
   size and run, ``POST /v1/cases`` declares a fresh case and ``POST /v1/cases/{urn}/manifest``
   sends the rows in batches of that size, one after another on one keep-alive connection,
   each with its own ``Idempotency-Key`` (as a careful client does). Timed from the first batch
   to the last answer.

Prints one ``RESULT manifest_import …`` line per variant with every run's rows/s and the
median. Bounded: the imports themselves (a few seconds each) plus the server's start-up.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.parse
import uuid
from dataclasses import dataclass
from io import StringIO
from pathlib import Path

from bench.databases import bench_database_url, recreate_database
from bench.stack import bench_environ, setup_django, start_server
from nexa import devstack

ROOT = Path(__file__).resolve().parent.parent
BENCH_DATABASE_SUFFIX = "_bench_manifest"
AIRLINE = "IB"
AIRPORT = "MAD"


@dataclass
class Variant:
    name: str
    rows: int
    seconds: list[float]

    @property
    def rates(self) -> list[float]:
        return [self.rows / seconds for seconds in self.seconds]

    def line(self) -> str:
        runs = ",".join(f"{rate:.0f}" for rate in self.rates)
        return (
            f"RESULT manifest_import {self.name} rows={self.rows} runs_rows_per_s=[{runs}] "
            f"median_rows_per_s={statistics.median(self.rates):.0f} "
            f"median_s={statistics.median(self.seconds):.2f}"
        )


# --- rows ---------------------------------------------------------------------------------------------


def manifest_rows(count: int) -> list[dict]:
    from operators.management.commands._demo import DEMO_DISRUPTIONS, demo_manifest

    return demo_manifest(DEMO_DISRUPTIONS[0], passengers=count)


def write_files(rows: list[dict], directory: Path) -> dict[str, Path]:
    from cases.manifest import CSV_LIST_SEPARATOR, ROW_FIELDS

    json_path = directory / "manifest.json"
    json_path.write_text(json.dumps({"passengers": rows}, ensure_ascii=False), encoding="utf-8")
    csv_path = directory / "manifest.csv"
    with csv_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(ROW_FIELDS)
        for row in rows:
            writer.writerow(
                CSV_LIST_SEPARATOR.join(row[name]) if name == "specialNeeds" and name in row else row.get(name, "")
                for name in ROW_FIELDS
            )
    return {"json": json_path, "csv": csv_path}


# --- in process: manage.py import_manifest -----------------------------------------------------------

_flights = iter(range(1000, 10000))


def declaration() -> dict:
    departure = dt.datetime.now(dt.UTC).replace(microsecond=0, second=0) + dt.timedelta(hours=3)
    return {
        "airport": AIRPORT,
        "flightNumber": f"{AIRLINE}{next(_flights)}",
        "flightDate": departure.date().isoformat(),
        "scheduledDeparture": departure.isoformat(),
        "cause": "CANCELLATION",
    }


def declare_case():
    from cases.services import case_declare
    from nexa.platform.auth import Principal
    from nexa.platform.roles import Role

    operator = "urn:nexa:user:ib-ops-supervisor"
    principal = Principal(airline=AIRLINE, role=Role.OPS_SUPERVISOR, operator_urn=operator, subject=operator)
    body = declaration()
    return case_declare(
        principal=principal,
        airport=body["airport"],
        flight_number=body["flightNumber"],
        flight_date=dt.date.fromisoformat(body["flightDate"]),
        scheduled_departure=dt.datetime.fromisoformat(body["scheduledDeparture"]),
        cause=body["cause"],
    )


def import_file(case_urn: str, path: Path) -> float:
    from django.core.management import call_command

    started = time.perf_counter()
    call_command("import_manifest", case_urn, str(path), stdout=StringIO(), stderr=StringIO())
    return time.perf_counter() - started


def bench_command(files: dict[str, Path], rows: int, runs: int) -> list[Variant]:
    from cases.models import SubCase

    variants = []
    for kind, path in files.items():
        seconds, case = [], None
        for _ in range(runs):
            case = declare_case()
            seconds.append(import_file(case.urn, path))
            imported = SubCase.objects.filter(case_id=case.pk).count()
            if imported != rows:
                raise SystemExit(f"import_manifest imported {imported} rows, not {rows}")
        variants.append(Variant(f"path=import_manifest format={kind}", rows, seconds))
        print(variants[-1].line(), flush=True)
    rerun = import_file(case.urn, files["json"])
    variants.append(Variant("path=import_manifest format=json rerun_all_skipped", rows, [rerun]))
    print(variants[-1].line(), flush=True)
    return variants


# --- over HTTP: POST /v1/cases/{urn}/manifest in batches --------------------------------------------


def bench_http(base_url: str, token: str, rows: list[dict], batch_sizes: list[int], runs: int) -> list[Variant]:
    import httpx

    if urllib.parse.urlsplit(base_url).hostname != "127.0.0.1":
        raise SystemExit("bench/ only loads loopback servers")
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    variants = []
    with httpx.Client(base_url=base_url, headers=headers, timeout=120.0) as client:
        for size in batch_sizes:
            batches = [rows[start : start + size] for start in range(0, len(rows), size)]
            seconds = []
            for _ in range(runs):
                declared = client.post("/v1/cases", json=declaration(), headers={"Idempotency-Key": str(uuid.uuid4())})
                if declared.status_code != 201:
                    raise SystemExit(f"POST /v1/cases: {declared.status_code} {declared.text[:300]}")
                path = f"/v1/cases/{declared.json()['urn']}/manifest"
                bodies = [json.dumps({"passengers": batch}).encode() for batch in batches]
                started = time.perf_counter()
                for body in bodies:
                    response = client.post(
                        path,
                        content=body,
                        headers={"Content-Type": "application/json", "Idempotency-Key": str(uuid.uuid4())},
                    )
                    if response.status_code != 201:
                        raise SystemExit(f"POST {path}: {response.status_code} {response.text[:300]}")
                seconds.append(time.perf_counter() - started)
            variants.append(Variant(f"path=http batch={size} requests={len(batches)}", len(rows), seconds))
            print(variants[-1].line(), flush=True)
    return variants


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batches", default="500,1000", help="HTTP batch sizes (rows per request)")
    parser.add_argument("--no-http", action="store_true", help="only the in-process import_manifest path")
    parser.add_argument("--server", default=devstack.DEFAULT_SERVER)
    parser.add_argument("--workers", type=int, default=devstack.DEFAULT_WORKERS)
    args = parser.parse_args(argv)
    batch_sizes = [int(size) for size in args.batches.split(",")]

    os.chdir(ROOT)
    with devstack.Services.ensure(redis_db=9) as services:
        url = bench_database_url(services.database_url, BENCH_DATABASE_SUFFIX)
        recreate_database(url, BENCH_DATABASE_SUFFIX)
        env = bench_environ(services, DATABASE_URL=url, LOG_LEVEL="WARNING")
        setup_django(env)
        rows = manifest_rows(args.rows)
        print(f"{len(rows)} rows ({len({row['pnr'] for row in rows})} PNRs) into {url}; load {os.getloadavg()[0]:.2f}")

        with tempfile.TemporaryDirectory(prefix="nexa-bench-manifest-") as directory:
            files = write_files(rows, Path(directory))
            bench_command(files, len(rows), args.runs)

        if args.no_http:
            return 0
        token = devstack.demo_tokens(env, airline=AIRLINE, ttl=3600)["OPS_SUPERVISOR"]
        supervisor = devstack.Supervisor()
        try:
            server = start_server(
                supervisor, env, name="bench-manifest-import", server=args.server, workers=args.workers
            )
            print(f"server: {' '.join(['python', *server.command[1:]])}", flush=True)
            bench_http(server.base_url, token, rows, batch_sizes, args.runs)
        finally:
            supervisor.stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
