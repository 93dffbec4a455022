"""`make run` smoke, as a newcomer uses it (issue 9 §1), run by .ci/run after `make test` (also `make smoke`).

1. starts ``make run`` on a free port with DATABASE_URL/REDIS_URL unset (embedded PostgreSQL and Redis);
2. waits for ``/readyz`` and for the demo tokens the banner prints (``.nexa/demo-tokens.env``);
3. calls an authenticated route with a printed token (and checks that no token is a 401), fetches the
   static files ``/v1/docs`` and the admin need, and connects once to the Socket.IO channel;
4. stops it with SIGINT to its process group, as Ctrl-C in a terminal does;
5. fails if the launcher did not exit cleanly, or if anything it started is still running: every process
   seen below it (by pid and start time, and by process group), the embedded PostgreSQL and Redis, the port.

Exit 0 when all holds; 1 with the reason and the launcher's output tail otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nexa import devstack  # noqa: E402  (stdlib-only launcher helpers: free_port, pid_alive, state_dir)

READY_TIMEOUT = float(os.environ.get("NEXA_SMOKE_READY_TIMEOUT", "240"))
STOP_TIMEOUT = 60.0


def log(message: str) -> None:
    print(f"[smoke] {message}", flush=True)


class SmokeFailure(Exception):
    pass


def proc_stat(pid: int) -> tuple[int, int, int] | None:
    """(ppid, process group, start time) of a live, non-zombie process."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    if fields[0] == "Z":
        return None
    return int(fields[1]), int(fields[2]), int(fields[19])


def descendants(root: int) -> dict[tuple[int, int], int]:
    """{(pid, start time): process group} of every live process below ``root``."""
    parents: dict[int, list[int]] = {}
    stats = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := proc_stat(int(entry))) is not None:
            stats[int(entry)] = stat
            parents.setdefault(stat[0], []).append(int(entry))
    found, stack = {}, [root]
    while stack:
        for child in parents.get(stack.pop(), []):
            found[(child, stats[child][2])] = stats[child][1]
            stack.append(child)
    return found


def still_running(seen: dict[tuple[int, int], int]) -> list[str]:
    left = []
    for (pid, started), _group in seen.items():
        stat = proc_stat(pid)
        if stat is not None and stat[2] == started:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            left.append(f"pid {pid}: {cmdline[:160]}")
    groups = set(seen.values())
    for entry in os.listdir("/proc"):  # any live (non-zombie) member of those groups, seen or not
        if entry.isdigit() and (stat := proc_stat(int(entry))) is not None and stat[1] in groups:
            left.append(f"pid {entry} in process group {stat[1]}")
    return sorted(set(left))


def embedded_leftovers(state: Path) -> list[str]:
    left = []
    postmaster = state / "pg" / "postmaster.pid"
    with contextlib.suppress(OSError, ValueError, IndexError):
        pid = int(postmaster.read_text().splitlines()[0])
        if devstack.pid_alive(pid):
            left.append(f"embedded PostgreSQL (pid {pid}, {postmaster})")
    with contextlib.suppress(OSError, ValueError):
        pid = int((state / "redis" / "redis.pid").read_text().strip())
        if devstack.pid_alive(pid):
            left.append(f"embedded Redis (pid {pid})")
    return left


async def socketio_connect(base_url: str, token: str) -> str:
    import socketio

    client = socketio.AsyncClient(reconnection=False)
    try:
        await client.connect(
            base_url, socketio_path="/ws/cases", auth={"token": token}, transports=["websocket"], wait_timeout=15
        )
        if not client.connected or not client.sid:
            raise SmokeFailure("Socket.IO CONNECT was not acknowledged")
        return client.sid
    finally:
        await client.disconnect()


def read_tokens(path: Path) -> dict[str, str]:
    tokens = {}
    for line in path.read_text().splitlines():
        name, _, value = line.removeprefix("export ").partition("=")
        if name.startswith("NEXA_TOKEN_") and value:
            tokens[name.removeprefix("NEXA_TOKEN_")] = value
    return tokens


def check_running_stack(base: str, tokens: dict[str, str]) -> None:
    token = tokens["OPS_SUPERVISOR"]
    with httpx.Client(base_url=base, timeout=30) as http:
        cases = http.get("/v1/cases", params={"limit": 50}, headers={"Authorization": f"Bearer {token}"})
        if cases.status_code != 200:
            raise SmokeFailure(f"GET /v1/cases with the demo token: {cases.status_code} {cases.text[:300]}")
        flights = [item.get("flightNumber") for item in cases.json()["items"]]
        if "IB3190" not in flights:
            raise SmokeFailure(f"the seeded case IB3190 is not listed: {flights}")
        log(f"GET /v1/cases as OPS_SUPERVISOR: 200, {len(flights)} case(s) incl. IB3190")
        anonymous = http.get("/v1/cases")
        if anonymous.status_code != 401:
            raise SmokeFailure(f"GET /v1/cases without a token: {anonymous.status_code}, expected 401")
        for path in ("/static/admin/css/base.css", "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui.css"):
            static = http.get(path)
            if static.status_code != 200 or not static.headers.get("content-type", "").startswith("text/css"):
                raise SmokeFailure(f"GET {path}: {static.status_code} {static.headers.get('content-type')}")
        log("static files (admin CSS, Swagger UI): 200")
    sid = asyncio.run(socketio_connect(base, tokens["AIRPORT_OPERATOR"]))
    log(f"Socket.IO /ws/cases CONNECT acknowledged (sid {sid})")


def main() -> int:
    started_at = time.monotonic()
    port = devstack.free_port()
    base = f"http://127.0.0.1:{port}"
    state = devstack.state_dir()
    tokens_file = state / "demo-tokens.env"
    tokens_file.unlink(missing_ok=True)
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "REDIS_URL")}
    env["PORT"] = str(port)
    output = tempfile.NamedTemporaryFile(prefix="nexa-smoke-", suffix=".log", delete=False)  # noqa: SIM115
    command = ["make", "--no-print-directory", "run"]
    log(f"PORT={port} {shlex.join(command)} (output in {output.name})")
    launcher = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )  # fmt: skip
    seen: dict[tuple[int, int], int] = {}
    failure = None
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            seen.update(descendants(launcher.pid))
            if launcher.poll() is not None:
                raise SmokeFailure(f"make run exited with {launcher.returncode} before it was ready")
            if time.monotonic() > deadline:
                raise SmokeFailure(f"/readyz and {tokens_file} not there within {READY_TIMEOUT:.0f}s")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200 and tokens_file.exists():
                    break
            time.sleep(0.5)
        log(f"ready in {time.monotonic() - started_at:.0f}s")
        tokens = read_tokens(tokens_file)
        if set(tokens) != set(devstack.ROLES):
            raise SmokeFailure(f"{tokens_file} has tokens for {sorted(tokens)}, expected {list(devstack.ROLES)}")
        check_running_stack(base, tokens)
        seen.update(descendants(launcher.pid))
    except SmokeFailure as error:
        failure = str(error)
    finally:
        if launcher.poll() is None:
            log(f"SIGINT to make run's process group {launcher.pid} ({len(seen)} processes seen below it)")
            os.killpg(launcher.pid, signal.SIGINT)
            try:
                launcher.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                failure = failure or f"make run did not stop within {STOP_TIMEOUT:.0f}s of SIGINT"
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(launcher.pid, signal.SIGKILL)
                launcher.wait()
            else:
                # make itself dies of the SIGINT (as in a terminal); the launcher reports its own clean stop.
                if failure is None and "SIGINT: stopped cleanly" not in Path(output.name).read_text(errors="replace"):
                    failure = f"make run (exit {launcher.returncode}) did not report a clean stop after SIGINT"
        time.sleep(1.0)
        left = still_running(seen) + embedded_leftovers(state)
        if not devstack.port_is_free("127.0.0.1", port):
            left.append(f"127.0.0.1:{port} is still taken")
        if left:
            failure = (failure + "; " if failure else "") + "left running after the stop: " + "; ".join(left)
            for (pid, started), _group in seen.items():  # tidy up what we started, by pid
                stat = proc_stat(pid)
                if stat is not None and stat[2] == started:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
    output.close()
    elapsed = time.monotonic() - started_at
    if failure:
        tail = Path(output.name).read_text(errors="replace").splitlines()[-60:]
        log(f"FAILED after {elapsed:.0f}s: {failure}\n--- make run output (tail) ---\n" + "\n".join(tail))
        return 1
    log(f"passed in {elapsed:.0f}s: ready, authenticated call, static files, Socket.IO, clean SIGINT stop")
    Path(output.name).unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
