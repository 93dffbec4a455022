"""The disruption, end to end (issue 12): a 300-passenger cancellation taken from manifest to rooms
through the API of a running ``make run`` stack, under 60 s.

    make run                                                   # in one shell (or: python -m nexa.devstack run --bench)
    .venv/bin/python bench/disruption.py                       # in another; or python -m bench.disruption
    .venv/bin/python bench/disruption.py --passengers 300 --seed 1 --base-url http://127.0.0.1:8000 \\
        --hotels-url http://127.0.0.1:8713 --hung globerooms --cap 120

The token is ``$NEXA_TOKEN_OPS_SUPERVISOR`` or the one ``make run`` wrote to ``.nexa/demo-tokens.env``
(airline IB); the hotel vendor simulators are ``$NEXA_HOTELS_URL`` or ``make run``'s default port 8713.

Setup (before the clock starts):

1. The ping baseline (``GET /v1/_bench/ping`` at 1 client for 2 s, ``bench.load.measure_ping_baseline``) when
   the stack runs with ``NEXA_BENCH=1`` (``python -m nexa.devstack run --bench``); otherwise skipped, said so.
2. 120 contract rooms for tonight at MAD (``POST /v1/contracts``): one-night contracts at the IB catalog hotels
   (≥ 3★, ≤ 15 km) that have no contract in force tonight; a contract this bench created on an earlier run
   (same night) gets a new version with 120 more rooms shared out, so re-runs find fresh rooms.
3. The hotel vendor simulators (``POST <hotels>/<vendor>/_control``): the vendors at 50-400 and 100-800 ms
   with 2 % errors, one vendor hung (``hang: true``); restored to what they were afterwards.

The disruption (the clock starts at the first request):

4. ``POST /v1/cases`` (IB, MAD, a fresh flight number, tonight, CANCELLATION), ``POST …/manifest`` with
   the generated passengers (:func:`disruption_manifest`: families with infants, PRM passengers,
   unaccompanied minors, four tiers), ``POST …/passenger-groups {}`` (one group per PNR).
5. ``POST /v1/demand/case/{case}`` ``{kind: INITIAL, checkIn, nights: 1, reason}`` → ``POST
   /v1/demand/{demand}/approve`` → ``POST /v1/cases/{case}/allocate {demandUrn}`` → ``POST
   /v1/cases/{case}/book-rooms {allocationUrn}`` (202).
6. ``GET /v1/cases/{case}/manifest`` every 250 ms until every passenger is NOTIFIED, MANUAL_REVIEW, FAILED or
   CANCELLED, or ``--cap`` seconds; a passenger's time to room is when it was first seen BOOKED or NOTIFIED.
7. ``GET /v1/booking/cases/{case}/reservations``, checked with the manifest for the two counts that must be
   zero: passengers sharing a room with another PNR, and passengers in two active (HELD/CONFIRMED)
   reservations for the same night.

Prints the phases, time to room p50/p95/max, the share placed without a human, the review-bound passengers,
the two counts, a ``RATIO disruption …`` line and PASS/FAIL (budget 60 s, every passenger at a final status,
both counts zero); the exit status is non-zero on FAIL. Writes bench/results/disruption.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

if __package__ in (None, ""):  # run as `python bench/disruption.py`: the repository root on the path
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.load import auth_headers, measure_ping_baseline, percentile

ROOT = Path(__file__).resolve().parent.parent
AIRLINE = "IB"
AIRPORT = "MAD"
AIRPORT_TZ = "Europe/Madrid"
BUDGET_SECONDS = 60.0
POLL_SECONDS = 0.25
PAGE = 200  # NEXA_PAGE_SIZE_MAX
CONTRACT_ROOMS = 120
CONTRACT_RATE = {"amount": "85.00", "currency": "EUR"}
CONTRACT_MIN_STARS = 3
CONTRACT_MAX_KM = 15
# How this bench recognises the one-night contracts it created on an earlier run (the terms are free text).
BENCH_CONTRACT_TERMS = "bench/disruption.py: one-night allotment for the disruption benchmark."
VENDOR_LATENCY_MS = {"stayhub": [50, 400], "nightbed": [100, 800]}  # nightbed: per page (it paginates)
VENDOR_ERROR_RATE = 0.02
HUNG_VENDOR = "globerooms"
TIERS = ("ECONOMY", "PREMIUM_ECONOMY", "BUSINESS", "FIRST")
TIER_WEIGHTS = (70, 15, 12, 3)
ROOMED = frozenset({"BOOKED", "NOTIFIED"})
FINAL = frozenset({"NOTIFIED", "MANUAL_REVIEW", "FAILED", "CANCELLED"})
ACTIVE_RESERVATION = frozenset({"HELD", "CONFIRMED"})

FIRST_NAMES = (
    "Ana", "Pedro", "Lucía", "Javier", "María", "Carlos", "Elena", "Pablo", "Sofía", "Diego", "Laura", "Miguel",
    "Carmen", "Jorge", "Isabel", "Andrés", "Paula", "Raúl", "Marta", "Álvaro", "Emma", "Oliver", "Grace", "Liam",
    "Chloe", "Noah", "Amelia", "Lucas", "Hannah", "Mateo",
)  # fmt: skip
LAST_NAMES = (
    "García", "Fernández", "López", "Martínez", "Sánchez", "Pérez", "Gómez", "Martín", "Jiménez", "Ruiz", "Hernández",
    "Díaz", "Moreno", "Muñoz", "Álvarez", "Romero", "Navarro", "Torres", "Smith", "Brown", "Wilson", "Taylor",
    "Clarke", "Walker", "Wright", "Müller", "Schmidt", "Rossi", "Dubois", "Silva",
)  # fmt: skip


# --- the manifest (pure) ------------------------------------------------------------------------------------


def disruption_manifest(passengers: int = 300, *, seed: int = 1) -> list[dict]:
    """``passengers`` manifest rows (the wire format of ``POST /v1/cases/{urn}/manifest``), the same for the same
    seed: PNR parties of families (one or two adults, children, sometimes an infant), couples, solo travellers and
    small groups of colleagues; about 5 % reduced-mobility passengers (WHEELCHAIR, MEDICAL), about 2 %
    unaccompanied minors (alone on their PNR, sometimes two siblings); one tier per PNR, over four tiers; every
    passenger with an email or a phone. Every (PNR, name) is unique and every row valid."""
    rng = random.Random(seed)
    rows: list[dict] = []
    pnrs: set[str] = set()
    while len(rows) < passengers:
        pnr = _pnr(rng, pnrs)
        tier = rng.choices(TIERS, weights=TIER_WEIGHTS)[0]
        last = rng.choice(LAST_NAMES)
        language = "es" if rng.random() < 0.6 else "en"
        kind = rng.random()
        members: list[list[str]] = []  # special needs per member
        if kind < 0.05:
            members = [["UNACCOMPANIED_MINOR"] for _ in range(2 if rng.random() < 0.25 else 1)]
        elif kind < 0.30:  # a family
            members = [[] for _ in range(rng.choice((1, 2, 2, 2)))]
            members += [[] for _ in range(rng.choice((0, 1, 1, 2)))]  # children old enough to have a seat
            if rng.random() < 0.35:
                members.append(["INFANT"])
        elif kind < 0.55:
            members = [[], []]
        elif kind < 0.62:
            members = [[] for _ in range(3)]
        else:
            members = [[]]
        if "UNACCOMPANIED_MINOR" not in members[0] and rng.random() < 0.09:
            members[0].append(rng.choice(("WHEELCHAIR", "WHEELCHAIR", "MEDICAL")))
        names: set[str] = set()
        for index, needs in enumerate(members[: passengers - len(rows)]):
            first = rng.choice([name for name in FIRST_NAMES if name not in names])
            names.add(first)
            row = {
                "firstName": first,
                "lastName": last if kind < 0.30 or index == 0 else rng.choice(LAST_NAMES),
                "pnr": pnr,
                "tier": tier,
                "language": language,
            }
            if needs:
                row["specialNeeds"] = sorted(needs)
            serial = len(rows) + 1
            if rng.random() < 0.8:
                row["email"] = f"pax{serial}.{pnr.lower()}@example.com"
            if "email" not in row or rng.random() < 0.6:
                row["phone"] = f"+3461{serial:07d}"
            rows.append(row)
    return rows


def _pnr(rng: random.Random, taken: set[str]) -> str:
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    while True:
        pnr = "".join(rng.choice(alphabet) for _ in range(6))
        if pnr not in taken:
            taken.add(pnr)
            return pnr


def manifest_summary(rows: Iterable[Mapping]) -> dict[str, object]:
    """What a manifest holds: passengers, PNRs, families (a PNR with an infant or 3+ on one surname), PRM
    passengers, unaccompanied minors, infants and passengers per tier."""
    rows = list(rows)
    by_pnr: dict[str, list[Mapping]] = defaultdict(list)
    for row in rows:
        by_pnr[row["pnr"]].append(row)
    needs = Counter(need for row in rows for need in row.get("specialNeeds", ()))
    families = sum(
        1
        for party in by_pnr.values()
        if any("INFANT" in row.get("specialNeeds", ()) for row in party)
        or (len(party) >= 3 and len({row["lastName"] for row in party}) == 1)
    )
    return {
        "passengers": len(rows),
        "pnrs": len(by_pnr),
        "families": families,
        "prm": sum(1 for row in rows if {"WHEELCHAIR", "MEDICAL"} & set(row.get("specialNeeds", ()))),
        "unaccompaniedMinors": needs["UNACCOMPANIED_MINOR"],
        "infants": needs["INFANT"],
        "tiers": dict(sorted(Counter(row.get("tier", "ECONOMY") for row in rows).items())),
    }


# --- the checks (pure) --------------------------------------------------------------------------------------


def rooms_with_unrelated_passengers(reservations: Iterable[Mapping], pnr_by_subcase: Mapping[str, str]) -> list[dict]:
    """Rooms whose occupants are of more than one PNR (an occupant not on the manifest counts as a PNR of
    its own): ``[{reservation, occupants, pnrs}]``. Every reservation counts, whatever its status: a room
    that was ever booked for strangers together is the bug, even if it was released since."""
    found = []
    for reservation in reservations:
        for room in reservation.get("rooms", ()):
            occupants = list(room.get("occupants", ()))
            pnrs = {pnr_by_subcase.get(urn, f"? {urn}") for urn in occupants}
            if len(pnrs) > 1:
                found.append({"reservation": reservation.get("urn"), "occupants": occupants, "pnrs": sorted(pnrs)})
    return found


def unrelated_sharing_count(reservations: Iterable[Mapping], pnr_by_subcase: Mapping[str, str]) -> int:
    """Passengers who share a room with someone of another PNR (must be zero)."""
    return len(
        {urn for room in rooms_with_unrelated_passengers(reservations, pnr_by_subcase) for urn in room["occupants"]}
    )


def reservation_nights(reservation: Mapping) -> list[date]:
    start = date.fromisoformat(str(reservation["checkIn"]))
    return [start + timedelta(days=offset) for offset in range(int(reservation.get("nights") or 1))]


def double_room_nights(reservations: Iterable[Mapping]) -> dict[str, dict[str, list[str]]]:
    """Passengers in more than one active (HELD or CONFIRMED) reservation for the same night:
    ``{subCaseUrn: {night: [reservation URNs]}}`` (must be empty)."""
    held: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for reservation in reservations:
        if reservation.get("status") not in ACTIVE_RESERVATION:
            continue
        occupants = {urn for room in reservation.get("rooms", ()) for urn in room.get("occupants", ())}
        for night in reservation_nights(reservation):
            for urn in occupants:
                held[urn][night.isoformat()].append(str(reservation.get("urn")))
    return {
        urn: {night: urns for night, urns in nights.items() if len(urns) > 1}
        for urn, nights in sorted(held.items())
        if any(len(urns) > 1 for urns in nights.values())
    }


@dataclass
class Progress:
    """First time each passenger was seen roomed (BOOKED or NOTIFIED) or at each status, in seconds after
    ``started`` (a ``time.perf_counter()`` value)."""

    started: float
    roomed: dict[str, float] = field(default_factory=dict)
    first_seen: dict[str, dict[str, float]] = field(default_factory=lambda: defaultdict(dict))
    statuses: dict[str, str] = field(default_factory=dict)

    def observe(self, items: Iterable[Mapping], at: float) -> None:
        for item in items:
            urn, status = item["urn"], item["status"]
            self.statuses[urn] = status
            self.first_seen[status].setdefault(urn, at - self.started)
            if status in ROOMED:
                self.roomed.setdefault(urn, at - self.started)

    @property
    def settled(self) -> bool:
        return bool(self.statuses) and all(status in FINAL for status in self.statuses.values())

    def time_to_room(self) -> dict[str, float]:
        values = sorted(self.roomed.values())
        return {"p50": percentile(values, 0.50), "p95": percentile(values, 0.95), "max": max(values, default=math.nan)}


# --- HTTP ---------------------------------------------------------------------------------------------------


class ApiError(RuntimeError):
    """A route answered other than expected (the message carries method, path, status and body)."""


class Api:
    """The stack's API with the bench's token: every POST with its own Idempotency-Key."""

    def __init__(self, base_url: str, token: str) -> None:
        import httpx

        self.client = httpx.Client(base_url=base_url.rstrip("/"), headers=auth_headers(token), timeout=60.0)
        self.requests = 0

    def call(self, method: str, path: str, *, body: object = None, params: Mapping | None = None, expect=(200,)):
        headers = {"Idempotency-Key": str(uuid.uuid4())} if method == "POST" else {}
        self.requests += 1
        response = self.client.request(method, path, json=body, params=params, headers=headers)
        if response.status_code not in expect:
            raise ApiError(f"{method} {path} → {response.status_code}: {response.text[:800]}")
        return response.json() if response.content else None

    def all_pages(self, path: str, params: Mapping | None = None) -> list[dict]:
        items: list[dict] = []
        query = {**(params or {}), "limit": PAGE}
        while True:
            page = self.call("GET", path, params=query)
            items.extend(page["items"])
            if not page.get("hasMore") or not page.get("nextCursor"):
                return items
            query = {**query, "cursor": page["nextCursor"]}


def read_token(explicit: str | None) -> str:
    """``--token``, else ``$NEXA_TOKEN_OPS_SUPERVISOR``, else the export ``make run`` wrote to
    ``<state>/demo-tokens.env``."""
    if explicit:
        return explicit
    if os.environ.get("NEXA_TOKEN_OPS_SUPERVISOR"):
        return os.environ["NEXA_TOKEN_OPS_SUPERVISOR"]
    state = Path(os.environ.get("NEXA_STATE_DIR") or ROOT / ".nexa")
    env_file = state / "demo-tokens.env"
    if env_file.exists():
        for line in env_file.read_text().splitlines():
            name, _, value = line.removeprefix("export ").partition("=")
            if name == "NEXA_TOKEN_OPS_SUPERVISOR":
                return value.strip().strip("'\"")
    raise SystemExit(
        "no token: run `make run` first (it writes .nexa/demo-tokens.env) or set NEXA_TOKEN_OPS_SUPERVISOR"
    )


def vendor_control(hotels_url: str, vendor: str, config: Mapping) -> None:
    import httpx

    httpx.post(f"{hotels_url}/{vendor}/_control", json=dict(config), timeout=5).raise_for_status()


def vendor_config(hotels_url: str, vendor: str) -> dict:
    import httpx

    ledger = httpx.get(f"{hotels_url}/{vendor}/_ledger", timeout=5)
    ledger.raise_for_status()
    config = ledger.json().get("config") or {}
    keys = ("latencyMs", "errorRate", "hang", "outage")
    return {key: config[key] for key in keys if key in config}


def configure_vendors(hotels_url: str, vendors: list[str], hung: str) -> dict[str, dict]:
    """Realistic latencies and errors on every vendor, ``hung`` hanging; returns the configs to restore."""
    previous = {vendor: vendor_config(hotels_url, vendor) for vendor in vendors}
    healthy = [vendor for vendor in vendors if vendor != hung]
    for index, vendor in enumerate(healthy):
        latency = list(VENDOR_LATENCY_MS.get(vendor) or list(VENDOR_LATENCY_MS.values())[index % 2])
        vendor_control(hotels_url, vendor, {"latencyMs": latency, "errorRate": VENDOR_ERROR_RATE, "hang": False})
    if hung in vendors:
        vendor_control(hotels_url, hung, {"hang": True})
    return previous


def seed_contract_rooms(api: Api, check_in: date, rooms: int = CONTRACT_ROOMS) -> list[dict]:
    """``rooms`` more contract rooms for the night of ``check_in`` at AIRPORT (see the module docstring)."""
    night = check_in.isoformat()
    hotels = api.all_pages(
        "/v1/hotels/list", {"airport": AIRPORT, "minStars": CONTRACT_MIN_STARS, "maxDistanceKm": CONTRACT_MAX_KM}
    )
    contracts = api.all_pages("/v1/contracts", {"airport": AIRPORT, "date": night})  # in force that night
    in_force = {contract["hotelUrn"]: contract for contract in contracts}
    usable = [hotel for hotel in hotels if hotel["urn"] not in in_force or _ours(in_force[hotel["urn"]], night)]
    seeded = []
    for hotel, share in zip(usable, split_rooms(rooms, len(usable)), strict=True):
        if share == 0:
            continue
        terms = {
            "hotelUrn": hotel["urn"],
            "airport": AIRPORT,
            "validFrom": night,
            "validTo": night,
            "allotment": share,
            "rate": CONTRACT_RATE,
            "releaseHours": 0,
            "mealsIncluded": ["BREAKFAST"],
            "cancellationTerms": BENCH_CONTRACT_TERMS,
        }
        existing = in_force.get(hotel["urn"])
        if existing:
            terms.update(urn=existing["urn"], version=existing["version"], allotment=existing["allotment"] + share)
        contract = api.call("POST", "/v1/contracts", body=terms, expect=(200, 201))
        seeded.append({"hotel": hotel["name"], "contract": contract["urn"], "rooms": share})
    return seeded


def _ours(contract: Mapping, night: str) -> bool:
    return (
        contract.get("cancellationTerms") == BENCH_CONTRACT_TERMS
        and contract["validFrom"] == night
        and contract["validTo"] == night
    )


def split_rooms(rooms: int, hotels: int) -> list[int]:
    """``rooms`` shared out over ``hotels`` as evenly as possible, the first hotels (nearest) taking the rest."""
    if hotels <= 0:
        return []
    share, rest = divmod(rooms, hotels)
    return [share + (1 if index < rest else 0) for index in range(hotels)]


# --- the run ------------------------------------------------------------------------------------------------


def ping_baseline(base_url: str, token: str) -> dict | None:
    try:
        baseline = measure_ping_baseline(base_url, token, levels=[1], duration=2.0, warmup=0.5)
    except RuntimeError as error:
        print(f"no ping baseline ({error}); start the stack with `python -m nexa.devstack run --bench` for one")
        return None
    level = baseline.levels[0]
    return {"rps": level.rps, "p50_ms": level.p50_ms, "p99_ms": level.p99_ms}


def run_disruption(api: Api, rows: list[dict], check_in: date, cap: float) -> dict:
    phases: dict[str, float] = {}
    started = time.perf_counter()

    def mark(name: str) -> None:
        phases[name] = round(time.perf_counter() - started, 3)

    case = declare_case(api, check_in)
    case_urn = case["urn"]
    api.call("POST", f"/v1/cases/{case_urn}/manifest", body={"passengers": rows}, expect=(201,))
    api.call("POST", f"/v1/cases/{case_urn}/passenger-groups", body={}, expect=(201,))
    mark("declared, imported, grouped")
    reason = "bench/disruption.py: flight cancelled, passengers stranded overnight"
    demand = api.call(
        "POST",
        f"/v1/demand/case/{case_urn}",
        body={"kind": "INITIAL", "checkIn": check_in.isoformat(), "nights": 1, "reason": reason},
        expect=(201,),
    )
    api.call("POST", f"/v1/demand/{demand['urn']}/approve", body={"reason": "approved by the bench"}, expect=(200,))
    mark("demand approved")
    plan = api.call("POST", f"/v1/cases/{case_urn}/allocate", body={"demandUrn": demand["urn"]}, expect=(200, 201))
    mark("allocated")
    booking = api.call(
        "POST", f"/v1/cases/{case_urn}/book-rooms", body={"allocationUrn": plan["allocationUrn"]}, expect=(202,)
    )
    mark("book-rooms accepted")

    progress = Progress(started=started)
    while True:
        items = api.all_pages(f"/v1/cases/{case_urn}/manifest")
        progress.observe(items, time.perf_counter())
        if progress.settled or time.perf_counter() - started > cap:
            break
        time.sleep(POLL_SECONDS)
    mark("settled" if progress.settled else f"gave up after {cap:.0f} s")
    total = time.perf_counter() - started
    reservations = api.all_pages(f"/v1/booking/cases/{case_urn}/reservations")
    return {
        "case": case_urn,
        "items": items,
        "plan": plan,
        "booking": booking,
        "phases": phases,
        "total_s": total,
        "progress": progress,
        "reservations": reservations,
    }


def declare_case(api: Api, flight_date: date) -> dict:
    """A fresh IB case at AIRPORT tonight (a flight number no open case uses: 409 → the next number)."""
    number = 3000 + int(time.time()) % 6000
    for attempt in range(20):
        body = {
            "airport": AIRPORT,
            "flightNumber": f"{AIRLINE}{number + attempt}",
            "flightDate": flight_date.isoformat(),
            "scheduledDeparture": f"{flight_date.isoformat()}T21:40:00+01:00",
            "cause": "CANCELLATION",
            "note": "bench/disruption.py",
        }
        try:
            return api.call("POST", "/v1/cases", body=body, expect=(201,))
        except ApiError as error:
            if "→ 409" not in str(error):
                raise
    raise ApiError("20 flight numbers in a row already have an open case")


def report(result: dict, rows: list[dict], baseline: dict | None) -> tuple[bool, dict]:
    items = result["items"]
    progress: Progress = result["progress"]
    pnr_by_subcase = {item["urn"]: item["pnr"] for item in items}
    plan_rooms = [
        {"urn": f"plan:{assignment.get('groupUrn')}", "rooms": assignment.get("rooms", ())}
        for assignment in result["plan"].get("assignments", ())
    ]
    sharing = unrelated_sharing_count([*result["reservations"], *plan_rooms], pnr_by_subcase)
    doubles = double_room_nights(result["reservations"])
    statuses = Counter(item["status"] for item in items)
    passengers = len(items)
    placed = sum(statuses[status] for status in ROOMED)
    review = statuses["MANUAL_REVIEW"]
    times = progress.time_to_room()
    total = result["total_s"]
    settled = progress.settled
    passed = settled and total < BUDGET_SECONDS and sharing == 0 and not doubles and passengers == len(rows)
    plan = result["plan"]
    print(f"\ncase {result['case']}: {passengers} passengers {manifest_summary(rows)}")
    print(
        f"  plan: {len(plan.get('assignments', ()))} assignments, {len(plan.get('unallocated', ()))} groups "
        f"unallocated {dict(Counter(u.get('category') for u in plan.get('unallocated', ())))}, partial failures "
        f"{[f.get('domain') + ':' + str(f.get('status')) for f in plan.get('partialFailures', ())]}"
    )
    print(f"  saga runs: {len(result['booking'].get('runs', ()))}; reservations: {len(result['reservations'])} "
          f"{dict(Counter(r.get('status') for r in result['reservations']))}")  # fmt: skip
    print("  phases (s from the first request): " + ", ".join(f"{k} {v:.2f}" for k, v in result["phases"].items()))
    print(f"  statuses: {dict(sorted(statuses.items()))}")
    print(
        f"  total {total:.2f} s; time to room p50 {times['p50']:.2f} s, p95 {times['p95']:.2f} s, "
        f"max {times['max']:.2f} s"
    )
    print(f"  placed without a human: {placed}/{passengers} ({placed / max(passengers, 1):.1%}); review-bound "
          f"(MANUAL_REVIEW): {review}")  # fmt: skip
    print(f"  unrelated passengers sharing a room: {sharing} (must be 0)")
    print(f"  passengers with two active room-nights: {len(doubles)} (must be 0)")
    if baseline:
        ratio = total * 1000 / baseline["p50_ms"] if baseline["p50_ms"] else math.nan
        print(
            f"RATIO disruption passengers={passengers} total_s={total:.2f} p95_time_to_room_s={times['p95']:.2f} "
            f"ping_p50_ms={baseline['p50_ms']:.2f} ping_rps={baseline['rps']:.0f} ratio_total_to_ping_p50={ratio:.0f} "
            f"requests={result.get('requests', 0)}"
        )
    verdict = "PASS" if passed else "FAIL"
    why = [] if passed else [
        reason
        for reason, bad in (
            (f"not settled within the cap ({len([s for s in progress.statuses.values() if s not in FINAL])} "
             "passengers still moving)", not settled),
            (f"over budget ({total:.1f} s)", total >= BUDGET_SECONDS),
            ("unrelated passengers share a room", sharing != 0),
            ("a passenger holds two room-nights", bool(doubles)),
            (f"manifest has {passengers} passengers, expected {len(rows)}", passengers != len(rows)),
        )
        if bad
    ]  # fmt: skip
    print(f"{verdict} {passengers} passengers from manifest to rooms in {total:.2f} s vs budget {BUDGET_SECONDS:.0f} s"
          + (f" — {'; '.join(why)}" if why else ""))  # fmt: skip
    summary = {
        "case": result["case"],
        "passengers": passengers,
        "manifest": manifest_summary(rows),
        "phases_s": result["phases"],
        "total_s": total,
        "time_to_room_s": times,
        "statuses": dict(statuses),
        "placed_without_human": placed,
        "review_bound": review,
        "unrelated_sharing": sharing,
        "double_room_nights": doubles,
        "baseline": baseline,
        "passed": passed,
    }
    return passed, summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--base-url", default=os.environ.get("NEXA_BASE_URL") or f"http://127.0.0.1:{os.environ.get('PORT', '8000')}"
    )
    parser.add_argument("--hotels-url", default=os.environ.get("NEXA_HOTELS_URL") or "http://127.0.0.1:8713")
    parser.add_argument("--vendors", default=os.environ.get("NEXA_HOTEL_VENDORS") or "stayhub,globerooms,nightbed")
    parser.add_argument("--hung", default=HUNG_VENDOR, help="the vendor that hangs (empty: none)")
    parser.add_argument("--token", default=None, help="an OPS_SUPERVISOR token of IB (default: make run's)")
    parser.add_argument("--passengers", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--contract-rooms", type=int, default=CONTRACT_ROOMS)
    parser.add_argument("--cap", type=float, default=120.0, help="stop polling after this many seconds")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / "disruption.json")
    args = parser.parse_args(argv)  # fmt: skip

    token = read_token(args.token)
    api = Api(args.base_url, token)
    rows = disruption_manifest(args.passengers, seed=args.seed)
    check_in = datetime.now(ZoneInfo(AIRPORT_TZ)).date()
    baseline = None if args.no_baseline else ping_baseline(args.base_url, token)
    seeded = seed_contract_rooms(api, check_in, args.contract_rooms)
    print(f"contract rooms for {check_in} at {AIRPORT}: {sum(s['rooms'] for s in seeded)} over {len(seeded)} hotels "
          f"{[(s['hotel'], s['rooms']) for s in seeded]}")  # fmt: skip
    vendors = [vendor for vendor in args.vendors.split(",") if vendor]
    previous = configure_vendors(args.hotels_url, vendors, args.hung)
    print(f"vendors: {', '.join(vendors)}; {args.hung or 'none'} hung; the others {VENDOR_LATENCY_MS} ms, "
          f"{VENDOR_ERROR_RATE:.0%} errors")  # fmt: skip
    try:
        result = run_disruption(api, rows, check_in, args.cap)
        result["requests"] = api.requests
    except ApiError as error:  # a route refused: say which and how, then FAIL
        print(f"FAIL the disruption stopped: {error}")
        return 1
    finally:
        for vendor, config in previous.items():
            vendor_control(args.hotels_url, vendor, {"hang": False, **config})
    passed, summary = report(result, rows, baseline)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        json.dumps(
            {"taken_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "contracts": seeded, **summary,
             "args": {**vars(args), "token": "…", "output": str(args.output)}},
            indent=2,
            default=str,
        )
    )  # fmt: skip
    print(f"results written to {args.output}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
