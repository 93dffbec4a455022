"""Policy resolve in process: p99 under 5 ms with 500 active policies for the airline (issue 11).

    .venv/bin/python -m bench.policy_resolve                  # embedded PostgreSQL unless DATABASE_URL
    .venv/bin/python -m bench.policy_resolve --policies 500 --runs 3000

Creates a fresh database ``<DATABASE_URL's name>_bench_policies``, migrates it, and creates
``--policies`` ACTIVE policies for IB, each with its own scope (30 airports x tier-or-any x
cause-or-any, a default among them), plus 100 for LH so the tenant filter is real. Then, in this
process, ``--runs`` times each, interleaved, with a random context (airport, tier, cause) drawn
from those the policies name plus some no policy names:

* **resolve**: ``policies.selectors.policy_resolve`` + ``resolution_data`` — what
  ``GET /v1/policies/resolve`` does between parsing and rendering (candidates, specificity, the why);
* **baseline**: ``Policy.objects.get(pk=…, airline=…)`` — one primary-key lookup, the floor of
  any read through the ORM on the same connection.

Prints p50/p90/p99 per variant and ``RATIO policy_resolve p99=… baseline_p99=… ratio=… budget=5ms``;
exits 1 when the resolve p99 is 5 ms or more.
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_DATABASE_SUFFIX = "_bench_policies"
AIRPORTS = [
    "MAD",
    "BCN",
    "AGP",
    "PMI",
    "VLC",
    "SVQ",
    "BIO",
    "LPA",
    "TFN",
    "ALC",
    "FRA",
    "MUC",
    "BER",
    "HAM",
    "DUS",
    "CGN",
    "STR",
    "LHR",
    "LGW",
    "CDG",
    "ORY",
    "AMS",
    "BRU",
    "ZRH",
    "VIE",
    "FCO",
    "MXP",
    "LIS",
    "OPO",
    "DUB",
]
TIERS = ("", "ECONOMY", "PREMIUM_ECONOMY", "BUSINESS", "FIRST")
CAUSES = ("", "CANCELLATION", "DELAY", "DIVERSION", "MISSED_CONNECTION")
BUDGET_MS = 5.0


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _scopes(count: int) -> list[tuple[str, str, str]]:
    every = [("", "", "")] + [
        (airport, tier, cause)
        for airport, tier, cause in itertools.product(("", *AIRPORTS), TIERS, CAUSES)
        if (airport, tier, cause) != ("", "", "")
    ]
    if count > len(every):
        raise SystemExit(f"at most {len(every)} distinct scopes")
    rng = random.Random(11)
    return [every[0], *rng.sample(every[1:], count - 1)]


def load(count: int) -> None:
    from policies.demo import DEMO_POLICIES
    from policies.models import Policy, PolicyStatus

    rules = DEMO_POLICIES["IB"][0]["rules"]
    rows = [
        Policy(
            airline="IB",
            name=f"bench {airport or '*'} {tier or '*'} {cause or '*'}",
            scope_airport=airport,
            scope_tier=tier,
            scope_cause=cause,
            rules=rules,
            status=PolicyStatus.ACTIVE,
            created_by="urn:nexa:user:bench",
        )
        for airport, tier, cause in _scopes(count)
    ]
    rows += [
        Policy(
            airline="LH",
            name=f"bench LH {airport}",
            scope_airport=airport,
            scope_tier=tier,
            scope_cause=cause,
            rules=rules,
            status=PolicyStatus.ACTIVE,
            created_by="urn:nexa:user:bench",
        )
        for airport, tier, cause in _scopes(100)
    ]
    Policy.objects.bulk_create(rows, batch_size=500)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--policies", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3000)
    parser.add_argument("--warmup", type=int, default=200)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))

    from bench.databases import bench_database_url, recreate_database
    from nexa import devstack

    with devstack.Services.ensure() as services:
        url = bench_database_url(services.database_url, BENCH_DATABASE_SUFFIX)
        recreate_database(url, BENCH_DATABASE_SUFFIX)
        os.environ.update(DATABASE_URL=url, REDIS_URL=services.redis_url, CELERY_BROKER_URL=services.redis_url)
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nexa.settings")
        os.environ.setdefault("LOG_FORMAT", "console")
        os.environ.setdefault("LOG_LEVEL", "WARNING")
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        return run(args)


def run(args) -> int:
    from django.db import connection

    from nexa.platform.auth import Principal
    from nexa.platform.problems import Problem
    from nexa.platform.roles import Role
    from policies.api.serializers import resolution_data
    from policies.models import Policy
    from policies.selectors import policy_resolve

    started = time.perf_counter()
    load(args.policies)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE policies_policy")
    ib = Policy.objects.filter(airline="IB").count()
    print(f"loaded {ib} IB + {Policy.objects.count() - ib} LH active policies in {time.perf_counter() - started:.1f} s")

    principal = Principal(airline="IB", role=Role.AIRPORT_OPERATOR, operator_urn="urn:nexa:user:bench", subject="b")
    rng = random.Random(20261130)
    airports = [*AIRPORTS, "JFK", "MEX", "BOG"]  # some no policy names: the default or fewer candidates
    pks = list(Policy.objects.filter(airline="IB").values_list("pk", flat=True))

    def resolve() -> int:
        try:
            resolution = policy_resolve(
                principal=principal,
                airport=rng.choice(airports),
                tier=rng.choice(TIERS[1:]),
                cause=rng.choice(CAUSES[1:]),
            )
        except Problem:  # no match: a 404 the route would answer (never with a default policy loaded)
            return 0
        return len(resolution_data(resolution)["why"]["candidates"])

    def baseline() -> int:
        return 1 if Policy.objects.get(pk=rng.choice(pks), airline="IB") else 0

    for _ in range(args.warmup):
        resolve()
        baseline()
    samples: dict[str, list[float]] = {"resolve": [], "baseline": []}
    candidates = []
    for _ in range(args.runs):
        for name, call in (("resolve", resolve), ("baseline", baseline)):
            begin = time.perf_counter()
            result = call()
            samples[name].append((time.perf_counter() - begin) * 1000)
            if name == "resolve":
                candidates.append(result)
    load_average = os.getloadavg()[0]
    print(f"runs={args.runs} per variant, interleaved; load average {load_average:.1f}")
    print(f"candidates per resolve: mean {statistics.mean(candidates):.1f}, max {max(candidates)}")
    for name, values in samples.items():
        print(
            f"{name:9} p50={_percentile(values, 0.5):.3f} ms  p90={_percentile(values, 0.9):.3f} ms  "
            f"p99={_percentile(values, 0.99):.3f} ms  max={max(values):.3f} ms"
        )
    p99 = _percentile(samples["resolve"], 0.99)
    base = _percentile(samples["baseline"], 0.99)
    verdict = "PASS" if p99 < BUDGET_MS else "FAIL"
    print(
        f"RATIO policy_resolve policies={args.policies} p99={p99:.3f}ms baseline_p99={base:.3f}ms "
        f"ratio={p99 / base:.2f} budget={BUDGET_MS:g}ms {verdict}"
    )
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    raise SystemExit(main())
