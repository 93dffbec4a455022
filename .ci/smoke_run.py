"""`make run` smoke, as a newcomer uses it (issue 9 §1), run by .ci/run after `make test` (also `make smoke`).

1. starts ``make run`` on a free port with DATABASE_URL/REDIS_URL unset (embedded PostgreSQL and Redis), waits
   until it is ready, then kills make and the launcher outright (SIGKILL, an unclean stop): everything the
   launcher started must stop with it, and ``make run`` must start again on the same port (beside a corrupt
   beat schedule file, as an interrupted beat used to leave);
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
import dbm
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import socketio

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


def still_running(seen: dict[tuple[int, int], int], keep: set[int] = frozenset()) -> list[str]:
    """Every process of ``seen`` (same pid and start time) still alive, and any live member of their process
    groups; pids in ``keep`` excepted."""
    left: dict[int, str] = {}
    for (pid, started), _group in seen.items():
        stat = proc_stat(pid)
        if stat is not None and stat[2] == started:
            with contextlib.suppress(OSError):
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                left[pid] = f"pid {pid}: {cmdline[:160]}"
    groups = set(seen.values())
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := proc_stat(int(entry))) is not None and stat[1] in groups:
            left.setdefault(int(entry), f"pid {entry} in process group {stat[1]}")
    return [line for pid, line in sorted(left.items()) if pid not in keep]


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


class Launch:
    """One ``make run`` in its own process group (as a terminal's foreground job), output to a file."""

    def __init__(self, port: int, label: str):
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.tokens_file = devstack.state_dir() / "demo-tokens.env"
        self.tokens_file.unlink(missing_ok=True)
        env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "REDIS_URL")}
        env["PORT"] = str(port)
        self.output = tempfile.NamedTemporaryFile(prefix=f"nexa-smoke-{label}-", suffix=".log", delete=False)  # noqa: SIM115
        command = ["make", "--no-print-directory", "run"]
        log(f"{label}: PORT={port} {shlex.join(command)} (output in {self.output.name})")
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=self.output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        self.seen: dict[tuple[int, int], int] = {}
        self.started_at = time.monotonic()

    def text(self) -> str:
        return Path(self.output.name).read_text(errors="replace")

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.text().splitlines()[-lines:])

    def wait_ready(self) -> dict[str, str]:
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            self.seen.update(descendants(self.process.pid))
            if self.process.poll() is not None:
                raise SmokeFailure(f"make run exited with {self.process.returncode} before it was ready")
            if time.monotonic() > deadline:
                raise SmokeFailure(f"/readyz and {self.tokens_file} not there within {READY_TIMEOUT:.0f}s")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.base}/readyz", timeout=2).status_code == 200 and self.tokens_file.exists():
                    break
            time.sleep(0.5)
        self.seen.update(descendants(self.process.pid))
        log(f"ready in {time.monotonic() - self.started_at:.0f}s ({len(self.seen)} processes below make)")
        tokens = read_tokens(self.tokens_file)
        if set(tokens) != set(devstack.ROLES):
            raise SmokeFailure(f"{self.tokens_file} has tokens for {sorted(tokens)}, expected {list(devstack.ROLES)}")
        return tokens

    def interrupt(self) -> str | None:
        """Ctrl-C: SIGINT to the process group; the reason it did not stop cleanly, or None."""
        if self.process.poll() is not None:
            return f"make run had already exited with {self.process.returncode}"
        log(f"SIGINT to make run's process group {self.process.pid}")
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            return f"make run did not stop within {STOP_TIMEOUT:.0f}s of SIGINT"
        # make itself dies of the SIGINT (as in a terminal); the launcher reports its own clean stop.
        if "SIGINT: stopped cleanly" not in self.text():
            return f"make run (exit {self.process.returncode}) did not report a clean stop after SIGINT"
        return None

    def crash(self) -> None:
        """An unclean stop: SIGKILL make and the launcher (nothing of theirs runs: no cleanup at all)."""
        log(f"SIGKILL to make run's process group {self.process.pid} (the launcher dies without cleaning up)")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def kill_leftovers(self) -> None:
        for (pid, started), _group in self.seen.items():  # tidy up what this smoke started, by pid
            stat = proc_stat(pid)
            if stat is not None and stat[2] == started:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def wait_gone(seen: dict[tuple[int, int], int], timeout: float, keep: set[int] = frozenset()) -> list[str]:
    """What of ``seen`` is still running after ``timeout`` (pids in ``keep`` excepted)."""
    deadline = time.monotonic() + timeout
    while (left := still_running(seen, keep)) and time.monotonic() < deadline:
        time.sleep(0.5)
    return left


def embedded_services(state: Path) -> set[int]:
    """The embedded Redis and PostgreSQL (the postmaster and its processes): meant to outlive a killed
    launcher, since the next one adopts them."""
    pids: set[int] = set()
    with contextlib.suppress(OSError, ValueError):
        pids.add(int((state / "redis" / "redis.pid").read_text().strip()))
    with contextlib.suppress(OSError, ValueError, IndexError):
        postmaster = int((state / "pg" / "postmaster.pid").read_text().splitlines()[0])
        pids.add(postmaster)
        pids.update(pid for pid, _started in descendants(postmaster))
    return pids


def main() -> int:
    started_at = time.monotonic()
    state = devstack.state_dir()
    port = devstack.free_port()
    failure = None
    launches: list[Launch] = []
    try:
        # 1. An unclean stop: make run killed outright once it is up. Everything the launcher started must go
        #    with it (the embedded Redis and PostgreSQL excepted: the next launcher adopts them).
        crashed = Launch(port, "crash")
        launches.append(crashed)
        crashed.wait_ready()
        crashed.crash()
        left = wait_gone(crashed.seen, timeout=30, keep=embedded_services(state))
        if left:
            raise SmokeFailure("left running 30 s after make run was killed: " + "; ".join(left))
        log("everything the killed launcher started has stopped")
        # What an interrupted beat used to leave: a schedule shelve cut short (EOFError at beat's start).
        with dbm.open(str(state / "celerybeat-schedule"), "n") as schedule:
            schedule[b"entries"] = b""

        # 2. make run again on the same port, as after any unclean stop; then the newcomer's checks and Ctrl-C.
        launch = Launch(port, "run")
        launches.append(launch)
        tokens = launch.wait_ready()
        check_running_stack(launch.base, tokens)
        launch.seen.update(descendants(launch.process.pid))
        failure = launch.interrupt()
        time.sleep(1.0)
        left = still_running(launch.seen) + embedded_leftovers(state)
        if not devstack.port_is_free("127.0.0.1", port):
            left.append(f"127.0.0.1:{port} is still taken")
        if left:
            failure = (failure + "; " if failure else "") + "left running after the stop: " + "; ".join(left)
    except SmokeFailure as error:
        failure = str(error)
    finally:
        for leftover in state.glob("celerybeat-schedule*"):  # the corrupt file this smoke wrote
            leftover.unlink(missing_ok=True)
        for launch in launches:
            if launch.process.poll() is None:
                launch.interrupt()
            if failure:
                launch.kill_leftovers()
            launch.output.close()
    elapsed = time.monotonic() - started_at
    if failure:
        for launch in launches:
            log(f"--- {launch.output.name} (tail) ---\n{launch.tail()}")
        log(f"FAILED after {elapsed:.0f}s: {failure}")
        return 1
    for launch in launches:
        Path(launch.output.name).unlink(missing_ok=True)
    log(
        f"passed in {elapsed:.0f}s: restart after an unclean stop, ready, authenticated call, static files, "
        "Socket.IO, clean SIGINT stop, nothing left running"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
