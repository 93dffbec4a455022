"""The presence channel (ARCHITECTURE §10): lock release on disconnect, and fan-out to 1 000 sockets.

    .venv/bin/python -m bench.presence                             # both channel layers, 200 trials, 1 000 sockets
    .venv/bin/python -m bench.presence --layers pubsub --trials 300 --sockets 1000 --events 30

For each channel-layers backend (``NEXA_CHANNEL_LAYER=core|pubsub``) a child run of this module starts one
server (``--server``, default plain uvicorn; NEXA_BENCH=1, DEBUG=0, no access log) on a free loopback
port with that layer, and measures, from this process over raw WebSockets (the Engine.IO / Socket.IO codec
of python-engineio / python-socketio):

* **release**: a watcher socket subscribed to a case; per trial a holder socket connects, locks a sub-case
  (``POST /v1/subcases/{urn}/lock``), the watcher sees ``lockedBy: holder``; then the clock starts, the
  holder's socket is closed, and it stops when the watcher reads ``subcase:state-changed`` with
  ``lockedBy: null``. Budget p99 < 200 ms (goal 50 ms).
* **fan-out**: N sockets subscribed to one case room; per event this process commits an outbox event for
  that room (``publish`` + commit: the relay and sink run here, like a worker's) and the clock stops when
  the last socket has read it. Budget p99 < 250 ms for 1 000 sockets.

  By default the N sockets are read in this one process with the python-engineio / python-socketio codecs,
  which on 2 cores is itself a large part of the figure. ``--client-procs K`` spreads them over K client
  processes (spawned, each on its own uvloop, raw ``websockets``, a frame is only searched for its
  ``"bench":<n>`` marker) and times arrivals with time.monotonic() (CLOCK_MONOTONIC is system-wide on
  Linux, so the commit instant here and the arrivals there compare); events are ``--event-interval``
  seconds apart. ``--server uvicorn-workers --workers 2`` measures the ``make run`` server.

    .venv/bin/python -m bench.presence --layers pubsub --client-procs 4 --server uvicorn-workers --workers 2

The client shares the 2 cores with the server, Redis and PostgreSQL, so the figures are upper bounds.
Prints a table per layer, ``PRESENCE <layer> …`` lines, ``WINNER …`` and bench/results/presence.json.
Bounded: every wait has a deadline; loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

from bench.load import percentile
from bench.stack import bench_environ, start_server
from nexa import devstack

RESULTS_DIR = Path(__file__).resolve().parent / "results"
LAYERS = ("core", "pubsub")
WAIT_SECONDS = 10.0


# --- a minimal Socket.IO client over websockets (codec from python-engineio / python-socketio) --------


class Socket:
    def __init__(self, ws) -> None:
        self.ws = ws

    @classmethod
    async def open(cls, ws_url: str, token: str) -> Socket:
        import websockets

        ws = await websockets.connect(f"{ws_url}/ws/cases/?EIO=4&transport=websocket", open_timeout=WAIT_SECONDS)
        socket = cls(ws)
        await asyncio.wait_for(ws.recv(), WAIT_SECONDS)  # open packet
        await socket.send_packet(0, {"token": token})
        kind, data = await socket.next_packet()
        if kind != 0:
            raise RuntimeError(f"CONNECT refused: {data}")
        return socket

    async def send_packet(self, packet_type: int, data, ack_id: int | None = None) -> None:
        from engineio import packet as eio
        from socketio import packet as sio

        encoded = sio.Packet(packet_type, data=data, id=ack_id, binary=False).encode()
        await self.ws.send(eio.Packet(eio.MESSAGE, data=encoded).encode())

    async def next_packet(self) -> tuple[int, object]:
        """The next Socket.IO packet (type, data); server pings are answered on the way."""
        from engineio import packet as eio
        from socketio import packet as sio

        while True:
            frame = await asyncio.wait_for(self.ws.recv(), WAIT_SECONDS)
            packet = eio.Packet(encoded_packet=frame)
            if packet.packet_type == eio.PING:
                await self.ws.send(eio.Packet(eio.PONG).encode())
                continue
            if packet.packet_type == eio.MESSAGE:
                message = sio.Packet(encoded_packet=packet.data)
                return message.packet_type, message.data

    async def subscribe(self, case_urn: str) -> None:
        await self.send_packet(2, ["subscribe", {"caseUrn": case_urn}], ack_id=1)
        while True:
            kind, data = await self.next_packet()
            if kind == 3:
                if data != [{"ok": True}]:
                    raise RuntimeError(f"subscribe refused: {data}")
                return

    async def next_event(self, predicate) -> dict:
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            kind, data = await self.next_packet()
            if kind == 2 and predicate(data[0], data[1]):
                return data[1]
        raise TimeoutError("no matching event")

    async def close(self) -> None:
        await self.ws.close()


def summarise(values_ms: list[float]) -> dict:
    ordered = sorted(values_ms)
    return {
        "n": len(ordered),
        "p50_ms": round(percentile(ordered, 0.50), 2),
        "p90_ms": round(percentile(ordered, 0.90), 2),
        "p99_ms": round(percentile(ordered, 0.99), 2),
        "max_ms": round(ordered[-1], 2) if ordered else float("nan"),
    }


# --- the child run: one layer, one server -----------------------------------------------------------


def _fixtures(sockets: int) -> dict:
    """A case with a sub-case per release trial and one for fan-out; tokens (committed, via the ORM)."""
    import datetime as dt

    from cases.models import Case, SubCase
    from nexa.platform.auth import issue_token

    today = dt.date.today()
    case = Case.objects.create(
        airline="IB",
        airport="MAD",
        flight_number=f"IB{int(time.time()) % 100000}",
        flight_date=today,
        scheduled_departure=dt.datetime.combine(today, dt.time(20, 30), tzinfo=dt.UTC),
        cause="CANCELLATION",
        declared_by="urn:nexa:user:bench",
        retention_until=today + dt.timedelta(days=90),
    )
    sub_case = SubCase.objects.create(case=case, airline="IB", first_name="Bench", last_name="Holder", pnr="BENCH1")

    def token(operator: str) -> str:
        return issue_token(airline="IB", role="AIRPORT_OPERATOR", operator_urn=operator, ttl_seconds=3600)

    return {
        "case_urn": case.urn,
        "sub_case_urn": sub_case.urn,
        "holder": "urn:nexa:user:bench-holder",
        "holder_token": token("urn:nexa:user:bench-holder"),
        "watcher_token": token("urn:nexa:user:bench-watcher"),
        "fan_tokens": [token(f"urn:nexa:user:bench-fan-{i % 20}") for i in range(min(sockets, 20))],
    }


async def measure_release(base_url: str, ws_url: str, fx: dict, trials: int) -> list[float]:
    import httpx

    watcher = await Socket.open(ws_url, fx["watcher_token"])
    await watcher.subscribe(fx["case_urn"])
    urn, holder_urn = fx["sub_case_urn"], fx["holder"]
    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=base_url, timeout=WAIT_SECONDS) as http:
        for _ in range(trials):
            holder = await Socket.open(ws_url, fx["holder_token"])
            response = await http.post(
                f"/v1/subcases/{urn}/lock", headers={"Authorization": f"Bearer {fx['holder_token']}"}
            )
            response.raise_for_status()
            await watcher.next_event(lambda e, p: e == "subcase:state-changed" and p.get("lockedBy") == holder_urn)
            started = time.perf_counter()
            await holder.close()
            await watcher.next_event(lambda e, p: e == "subcase:state-changed" and p.get("lockedBy") is None)
            latencies.append((time.perf_counter() - started) * 1000)
    await watcher.close()
    return latencies


async def measure_fanout(ws_url: str, fx: dict, sockets: int, events: int) -> tuple[list[float], float]:
    from asgiref.sync import sync_to_async
    from django.db import transaction

    from nexa.platform.outbox import publish

    tokens = fx["fan_tokens"]
    opened: list[Socket] = []
    connect_started = time.perf_counter()
    for batch_start in range(0, sockets, 50):  # connect in batches: the server authenticates each
        batch = [
            Socket.open(ws_url, tokens[i % len(tokens)]) for i in range(batch_start, min(sockets, batch_start + 50))
        ]
        opened += await asyncio.gather(*batch)
    for batch_start in range(0, len(opened), 50):
        await asyncio.gather(*(s.subscribe(fx["case_urn"]) for s in opened[batch_start : batch_start + 50]))
    connect_seconds = time.perf_counter() - connect_started
    room = f"case:{fx['case_urn']}"

    def commit(marker: int) -> None:
        with transaction.atomic():
            publish(
                "case:updated", {"caseUrn": fx["case_urn"], "status": "OPEN", "bench": marker}, [room], airline="IB"
            )

    latencies: list[float] = []
    for marker in range(events):
        waiting = [
            asyncio.create_task(s.next_event(lambda e, p, m=marker: e == "case:updated" and p.get("bench") == m))
            for s in opened
        ]
        started = time.perf_counter()
        await sync_to_async(commit, thread_sensitive=False)(marker)
        await asyncio.gather(*waiting)
        latencies.append((time.perf_counter() - started) * 1000)
        await asyncio.sleep(0.1)
    await asyncio.gather(*(s.close() for s in opened), return_exceptions=True)
    return latencies, connect_seconds


# --- fan-out with the client spread over processes (lean frames, no Socket.IO codec) --------------------
#
# One event-loop process decoding 1 000 sockets is itself slow enough to miss the budget, so this measures
# the same fan-out with the sockets spread over ``--client-procs`` processes, each on its own (uv)loop. A
# client only looks for the marker in the ``42[...]`` frame (no JSON decode of the frame). The clock is
# time.monotonic() (CLOCK_MONOTONIC, system-wide on Linux: comparable across processes of one machine).


def _marker_of(frame: str) -> int | None:
    """The ``"bench":<n>`` marker of a ``42["case:updated",…]`` frame, else None (no JSON decode)."""
    if not frame.startswith('42["case:updated"'):
        return None
    at = frame.find('"bench":')
    if at < 0:
        return None
    start = end = at + 8
    while end < len(frame) and frame[end].isdigit():
        end += 1
    return int(frame[start:end]) if end > start else None


async def _lean_socket(ws_url: str, token: str, case_urn: str):
    from websockets.asyncio.client import connect

    ws = await connect(
        f"{ws_url}/ws/cases/?EIO=4&transport=websocket", open_timeout=WAIT_SECONDS, compression=None, max_queue=None
    )
    await asyncio.wait_for(ws.recv(), WAIT_SECONDS)  # 0{...} open
    await ws.send("40" + json.dumps({"token": token}))
    while not (frame := await asyncio.wait_for(ws.recv(), WAIT_SECONDS)).startswith("4"):
        if frame == "2":
            await ws.send("3")
    if not frame.startswith("40"):
        raise RuntimeError(f"CONNECT refused: {frame[:200]}")
    await ws.send("421" + json.dumps(["subscribe", {"caseUrn": case_urn}]))
    while not (frame := await asyncio.wait_for(ws.recv(), WAIT_SECONDS)).startswith("431"):
        if frame == "2":
            await ws.send("3")
    if '"ok":true' not in frame.replace(" ", ""):
        raise RuntimeError(f"subscribe refused: {frame[:200]}")
    return ws


async def _client_proc_main(ws_url, tokens, case_urn, count, events, ready, go, out) -> None:
    opened = []
    for batch_start in range(0, count, 25):
        batch = range(batch_start, min(count, batch_start + 25))
        opened += await asyncio.gather(*(_lean_socket(ws_url, tokens[i % len(tokens)], case_urn) for i in batch))
    seen: dict[int, list[float]] = {}  # marker -> monotonic times of arrival, one per socket

    async def read(ws) -> None:
        got = 0
        while got < events:
            frame = await ws.recv()
            if frame == "2":
                await ws.send("3")
                continue
            marker = _marker_of(frame)
            if marker is not None:
                seen.setdefault(marker, []).append(time.monotonic())
                got += 1

    readers = [asyncio.create_task(read(ws)) for ws in opened]
    ready.put(len(opened))
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, go.wait)
    _done, pending = await asyncio.wait(readers, timeout=events * 2.0 + 30)
    for task in pending:
        task.cancel()
    out.put({marker: (len(times), max(times)) for marker, times in seen.items()})
    await asyncio.gather(*(ws.close() for ws in opened), return_exceptions=True)


def _client_proc(ws_url, tokens, case_urn, count, events, ready, go, out) -> None:
    try:
        import uvloop

        uvloop.run(_client_proc_main(ws_url, tokens, case_urn, count, events, ready, go, out))
    except ImportError:
        asyncio.run(_client_proc_main(ws_url, tokens, case_urn, count, events, ready, go, out))


def measure_fanout_multiproc(
    ws_url: str, fx: dict, sockets: int, events: int, procs: int, interval: float
) -> tuple[list[float], float, int]:
    """Fan-out to ``sockets`` lean sockets spread over ``procs`` client processes; per event the latency
    from just before the commit to the last socket (over all processes) reading it. Returns the latencies,
    the connect+subscribe time and the number of (event, socket) deliveries missing."""
    import multiprocessing

    from django.db import transaction

    from nexa.platform.outbox import publish

    ctx = multiprocessing.get_context("spawn")
    ready, out, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    shares = [sockets // procs + (1 if i < sockets % procs else 0) for i in range(procs)]
    connect_started = time.perf_counter()
    children = [
        ctx.Process(
            target=_client_proc,
            args=(ws_url, fx["fan_tokens"], fx["case_urn"], share, events, ready, go, out),
            daemon=True,
        )
        for share in shares
    ]
    for child in children:
        child.start()
    connected = sum(ready.get(timeout=120) for _ in children)
    if connected != sockets:
        raise RuntimeError(f"only {connected} of {sockets} sockets connected")
    connect_seconds = time.perf_counter() - connect_started
    go.set()
    time.sleep(1.0)  # let the clients' readers settle
    room = f"case:{fx['case_urn']}"
    started_at: dict[int, float] = {}
    for marker in range(events):
        started_at[marker] = time.monotonic()
        with transaction.atomic():
            publish(
                "case:updated", {"caseUrn": fx["case_urn"], "status": "OPEN", "bench": marker}, [room], airline="IB"
            )
        time.sleep(interval)
    reports = [out.get(timeout=events * 2.0 + 60) for _ in children]
    for child in children:
        child.join(timeout=10)
    latencies, missing = [], 0
    for marker, began in started_at.items():
        arrivals = [report[marker] for report in reports if marker in report]
        count = sum(n for n, _last in arrivals)
        missing += sockets - count
        if arrivals:
            latencies.append((max(last for _n, last in arrivals) - began) * 1000)
    return latencies, connect_seconds, missing


def run_layer(args: argparse.Namespace) -> dict:
    """Child process: NEXA_CHANNEL_LAYER is already set in the environment (for this process's sink too)."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nexa.settings")
    django.setup()
    from django.conf import settings

    logging.getLogger("httpx").setLevel(logging.WARNING)
    fx = _fixtures(args.sockets)
    supervisor = devstack.Supervisor()
    try:
        server = start_server(
            supervisor,
            dict(os.environ),
            name=f"bench-presence-{args.run_layer}",
            server=args.server,
            workers=args.workers,
        )
        command, base_url = server.command, server.base_url
        ws_url = base_url.replace("http://", "ws://", 1)
        load = os.getloadavg()[0]
        release = asyncio.run(measure_release(base_url, ws_url, fx, args.trials)) if args.trials else []
        missing = 0
        if args.client_procs:
            fanout, connect_seconds, missing = measure_fanout_multiproc(
                ws_url, fx, args.sockets, args.events, args.client_procs, args.event_interval
            )
        else:
            fanout, connect_seconds = asyncio.run(measure_fanout(ws_url, fx, args.sockets, args.events))
        load_after = os.getloadavg()[0]
    finally:
        supervisor.stop_all()
    return {
        "layer": args.run_layer,
        "backend": settings.CHANNEL_LAYERS["default"]["BACKEND"],
        "command": " ".join(["python", *command[1:]]),
        "loadavg_before": load,
        "loadavg_after": load_after,
        "release": summarise(release),
        "fanout": {
            **summarise(fanout),
            "sockets": args.sockets,
            "connect_and_subscribe_s": round(connect_seconds, 2),
            "client": f"{args.client_procs} processes, lean" if args.client_procs else "1 process, codecs",
            "missing_deliveries": missing,
        },
    }


# --- the parent: one child per layer ----------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layers", default=",".join(LAYERS), help="comma-separated: core, pubsub")
    parser.add_argument("--trials", type=int, default=200, help="lock-release trials per layer")
    parser.add_argument("--sockets", type=int, default=1000, help="sockets in the fan-out room")
    parser.add_argument("--events", type=int, default=30, help="fan-out events per layer")
    parser.add_argument(
        "--client-procs",
        type=int,
        default=0,
        help="fan-out clients spread over this many processes with lean frame parsing (0: one process, codecs)",
    )
    parser.add_argument(
        "--event-interval", type=float, default=0.5, help="seconds between fan-out events (--client-procs)"
    )
    parser.add_argument("--server", default="uvicorn", choices=devstack.SERVER_CHOICES)
    parser.add_argument("--workers", type=int, default=devstack.DEFAULT_WORKERS, help="with a multi-process --server")
    parser.add_argument("--output", type=Path, default=RESULTS_DIR / "presence.json")
    parser.add_argument("--run-layer", choices=LAYERS, help=argparse.SUPPRESS)  # internal: the child run
    parser.add_argument("--child-output", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.run_layer:
        args.child_output.write_text(json.dumps(run_layer(args)))
        return 0

    os.chdir(devstack.ROOT)
    layers = args.layers.split(",")
    results = []
    with devstack.Services.ensure(redis_db=3) as services:
        env = bench_environ(services)
        devstack.manage(env, "migrate", "--noinput", "-v", "0")
        for layer in layers:
            child_output = RESULTS_DIR / f"presence-{layer}.json"
            child_output.parent.mkdir(parents=True, exist_ok=True)
            command = [
                sys.executable,
                "-m",
                "bench.presence",
                "--run-layer",
                layer,
                "--child-output",
                str(child_output),
            ]
            command += ["--trials", str(args.trials), "--sockets", str(args.sockets), "--events", str(args.events)]
            command += ["--client-procs", str(args.client_procs), "--event-interval", str(args.event_interval)]
            command += ["--server", args.server, "--workers", str(args.workers)]
            child_output.unlink(missing_ok=True)
            done = subprocess.run(
                command, env={**env, "NEXA_CHANNEL_LAYER": layer}, cwd=devstack.ROOT, check=False, timeout=900
            )
            if done.returncode == 0:
                results.append(json.loads(child_output.read_text()))
            else:  # a layer that cannot finish the run is a result too (see the server log)
                log = devstack.state_dir() / f"bench-presence-{layer}.log"
                results.append({"layer": layer, "error": f"run failed (exit {done.returncode}); server log: {log}"})
            time.sleep(1)

    finished = [result for result in results if "error" not in result]
    for result in results:
        if "error" in result:
            print(f"PRESENCE {result['layer']} FAILED: {result['error']}")
            continue
        release, fanout = result["release"], result["fanout"]
        print(
            f"PRESENCE {result['layer']} release p50={release['p50_ms']}ms p99={release['p99_ms']}ms "
            f"max={release['max_ms']}ms (n={release['n']}) | fan-out {fanout['sockets']} sockets "
            f"p50={fanout['p50_ms']}ms p99={fanout['p99_ms']}ms max={fanout['max_ms']}ms (n={fanout['n']}) "
            f"client={fanout['client']!r} missing={fanout['missing_deliveries']} "
            f"| server {result['command']!r} | load before {result['loadavg_before']:.2f} "
            f"after {result['loadavg_after']:.2f}"
        )
    if len(finished) > 1:
        best = min(finished, key=lambda r: r["fanout"]["p99_ms"] + (r["release"]["p99_ms"] if r["release"]["n"] else 0))
        print(f"WINNER {best['layer']} (lowest release p99 + fan-out p99)")
    args.output.write_text(json.dumps({"taken_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "runs": results}, indent=2))
    print(f"results written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
