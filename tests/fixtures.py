"""Fixture plugins shared by the whole suite (real services, never mocks of our own stack)."""

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from nexa.celery import app as celery_app
from nexa.service_urls import postgres_url_from_settings

BASE_DIR = Path(__file__).resolve().parent.parent
WORKER_QUEUES = "default,saga,notifications,sla"
WORKER_START_TIMEOUT = 60.0
WORKER_STOP_TIMEOUT = 15.0


def database_url(settings_dict: dict) -> str:
    """A ``DATABASE_URL`` for a Django database settings dict (so subprocesses use the same database):
    TCP host or Unix socket directory alike (nexa/service_urls.py)."""
    return postgres_url_from_settings(settings_dict)


@pytest.fixture(scope="session")
def test_database_url(django_db_setup) -> str:
    """``DATABASE_URL`` of pytest-django's test database, for subprocesses (workers, scripts)."""
    return database_url(connection.settings_dict)


@pytest.fixture(scope="session")
def subprocess_env(test_database_url, simulators) -> dict[str, str]:
    """The environment for a subprocess that must see exactly what the tests see: the test database,
    the same Redis / broker and the same provider simulators (``NEXA_PSP_URL`` …)."""
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="nexa.settings",
        DATABASE_URL=test_database_url,
        DATABASE_CONN_MAX_AGE="0",
        REDIS_URL=settings.REDIS_URL,
        CELERY_BROKER_URL=settings.CELERY_BROKER_URL,
        LOG_FORMAT="console",
        PYTHONPATH=os.pathsep.join(filter(None, [str(BASE_DIR), env.get("PYTHONPATH", "")])),
        **simulators.env,
    )
    return env


# --- provider simulators (booking/simulators, notifications/simulators; docs/providers.md) ---------

SIMULATOR_START_TIMEOUT = 30.0
# name → (module run with -m, kind, settings that point at it)
SIMULATOR_SPECS = {
    "psp": ("booking.simulators", "psp", ("NEXA_PSP_URL",)),
    "transport": ("booking.simulators", "transport", ("NEXA_TRANSPORT_URL",)),
    "sms": ("notifications.simulators", "sms", ("NEXA_SMS_URL", "NEXA_WHATSAPP_URL")),
    # Every hotel vendor in one process, each under /<vendor> (booking/simulators/hotels.py).
    "hotels": ("booking.simulators", "hotels", ("NEXA_HOTELS_URL",)),
}


@dataclass
class SimulatorHandle:
    """One running simulator process and its control API (``/_control``, ``/_ledger``, ``/_reset``)."""

    name: str
    process: subprocess.Popen
    port: int
    log_path: Path
    prefix: str = ""  # a hotel vendor's path prefix ("/stayhub") inside the hotels simulator

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.prefix}"

    def vendor(self, code: str) -> "SimulatorHandle":
        """One hotel vendor of the hotels simulator, with its own control API: ``.vendor("stayhub").hang()``."""
        return SimulatorHandle(
            name=code, process=self.process, port=self.port, log_path=self.log_path, prefix=f"/{code}"
        )

    def hang(self, on: bool = True) -> dict:
        """Hotel vendors: every API request waits without answering until reset (or ``hang(False)``)."""
        return self.control(hang=on)

    def _post(self, path: str, body: dict | None = None) -> dict:
        import httpx

        response = httpx.post(f"{self.url}{path}", json=body or {}, timeout=5.0)
        assert response.status_code == 200, response.text
        return response.json()

    def control(self, **config) -> dict:
        """Any of ``latencyMs``, ``latencyAfterMs``, ``errorRate``, ``errorStatus``, ``outage``, ``refuse``,
        ``approvedTemplates``; returns the simulator's whole config."""
        return self._post("/_control", config)

    def latency(self, ms: int | list[int]) -> dict:
        return self.control(latencyMs=ms)

    def error_rate(self, rate: float, status: int = 503) -> dict:
        return self.control(errorRate=rate, errorStatus=status)

    def outage(self, on: bool | str = True) -> dict:
        return self.control(outage=on)

    def refuse(self, refusals: dict[str, str]) -> dict:
        """``{"<sub-case URN, recipient or *>": "insufficient_funds" | "card_declined" | "fraud_hold" | …}``."""
        return self.control(refuse=refusals)

    def fault_after_processing(self, faults: dict[str, int | str]) -> dict:
        """``{"<path or *>": 503 | "drop"}``: the request is processed (effect made, stored under its key),
        then the answer is lost (a 5xx, or the connection closed like a timeout). ``{}`` switches it off."""
        return self.control(faultAfterProcessing=faults)

    def approve_templates(self, names: list[str]) -> dict:
        return self.control(approvedTemplates=names)

    def reset(self) -> dict:
        return self._post("/_reset")

    def ledger(self) -> dict:
        import httpx

        response = httpx.get(f"{self.url}/_ledger", timeout=5.0)
        response.raise_for_status()
        return response.json()

    def entries(self, kind: str | None = None) -> list[dict]:
        """Every effect the simulator performed (optionally of one ``type``), in order."""
        return [entry for entry in self.ledger()["entries"] if kind is None or entry["type"] == kind]

    def request_count(self) -> int:
        """Provider API requests received (control routes excluded)."""
        return self.ledger()["requestCount"]

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=WORKER_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=WORKER_STOP_TIMEOUT)


@dataclass
class Simulators:
    """The simulators of the session: ``psp``, ``transport``, ``sms`` (SMS + WhatsApp) and ``hotels`` (every
    hotel vendor: ``hotels.vendor("stayhub")``)."""

    psp: SimulatorHandle
    transport: SimulatorHandle
    sms: SimulatorHandle
    hotels: SimulatorHandle

    @property
    def all(self) -> list[SimulatorHandle]:
        return [self.psp, self.transport, self.sms, self.hotels]

    @property
    def env(self) -> dict[str, str]:
        """``NEXA_PSP_URL``, ``NEXA_TRANSPORT_URL``, ``NEXA_SMS_URL``, ``NEXA_WHATSAPP_URL``."""
        return {
            setting: getattr(self, name).url
            for name, (_module, _kind, names) in SIMULATOR_SPECS.items()
            for setting in names
        }

    def reset_all(self) -> None:
        for simulator in self.all:
            simulator.reset()


def _start_simulator(name: str, log_dir: Path) -> SimulatorHandle:
    module, kind, _settings = SIMULATOR_SPECS[name]
    port = free_port()
    log_path = log_dir / f"{name}.log"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(BASE_DIR), os.environ.get("PYTHONPATH", "")]))}
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", module, kind, "--port", str(port)],
            cwd=BASE_DIR,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    return SimulatorHandle(name=name, process=process, port=port, log_path=log_path)


def _wait_for_simulator(simulator: SimulatorHandle) -> None:
    import httpx

    deadline = time.monotonic() + SIMULATOR_START_TIMEOUT
    while True:
        if simulator.process.poll() is not None:
            pytest.fail(
                f"{simulator.name} simulator exited with {simulator.process.returncode}:\n{simulator.log_tail()}"
            )
        try:
            if httpx.get(f"{simulator.url}/_health", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(
                f"{simulator.name} simulator not ready after {SIMULATOR_START_TIMEOUT}s:\n{simulator.log_tail()}"
            )
        time.sleep(0.05)


@pytest.fixture(scope="session")
def simulators(tmp_path_factory):
    """The PSP, transport and SMS/WhatsApp simulators as REAL processes on free ports, for the session.

    While it is active the test process's settings point at them (``NEXA_PSP_URL``, ``NEXA_TRANSPORT_URL``,
    ``NEXA_SMS_URL``, ``NEXA_WHATSAPP_URL``, through ``override_settings`` for the whole session), the same
    variables are in ``os.environ`` and in :func:`subprocess_env`, so Celery workers and ASGI servers
    started by tests reach the same simulators. Use :func:`simulator_control` in tests: it resets them."""
    from django.test.utils import override_settings

    log_dir = tmp_path_factory.mktemp("simulators")
    started = [_start_simulator(name, log_dir) for name in SIMULATOR_SPECS]
    try:
        for simulator in started:
            _wait_for_simulator(simulator)
        handles = Simulators(**{simulator.name: simulator for simulator in started})
        urls = handles.env
        previous = {name: os.environ.get(name) for name in urls}
        os.environ.update(urls)
        override = override_settings(**urls)
        override.enable()
        try:
            yield handles
        finally:
            override.disable()
            for name, value in previous.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
    finally:
        for simulator in started:
            simulator.stop()


@pytest.fixture
def simulator_control(simulators) -> Simulators:
    """The session's simulators, reset (ledgers, config, idempotency stores) before and after the test,
    with every circuit breaker closed: ``simulator_control.psp.refuse({...})``, ``.sms.outage()``,
    ``.transport.latency([50, 300])``, ``.psp.entries("payout")``, ``.psp.request_count()`` …"""
    from nexa.platform.breakers import breaker_reset

    simulators.reset_all()
    breaker_reset()
    yield simulators
    simulators.reset_all()
    breaker_reset()


@dataclass
class CeleryWorkerProcess:
    """A running ``celery worker`` subprocess (see :func:`celery_worker_process`)."""

    process: subprocess.Popen
    hostname: str
    log_path: Path

    def ping(self, timeout: float = 1.0) -> bool:
        replies = celery_app.control.ping(destination=[self.hostname], timeout=timeout)
        return any(self.hostname in reply for reply in replies)

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)  # warm shutdown: finish the current task, then exit
        try:
            self.process.wait(timeout=WORKER_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=WORKER_STOP_TIMEOUT)


@pytest.fixture(scope="module")
def celery_worker_includes() -> list[str]:
    """Extra modules the test worker imports (``-I``); override in a test module to add consumers."""
    return ["tests.platform.outbox_consumers"]


@pytest.fixture(scope="module")
def celery_worker_process(subprocess_env, celery_worker_includes, tmp_path_factory):
    """A REAL Celery worker (``celery -A nexa worker``, solo pool, acks_late from settings) consuming every
    queue against the test database and the tests' Redis. Queues are purged first so stale messages of
    earlier runs cannot interfere. The worker sees ``NEXA_TEST_CELERY_WORKER=1``."""
    celery_bin = Path(sys.executable).with_name("celery")
    if not celery_bin.exists():
        celery_bin = Path(shutil.which("celery") or "celery")
    hostname = f"nexa-test-{os.getpid()}-{uuid.uuid4().hex[:8]}@tests"
    log_path = tmp_path_factory.mktemp("celery-worker") / "worker.log"

    celery_app.control.purge()
    command = [
        str(celery_bin),
        "-A",
        "nexa",
        "worker",
        "-Q",
        WORKER_QUEUES,
        "--pool=solo",
        "--concurrency=1",
        "--loglevel=INFO",
        "-n",
        hostname,
        "--without-heartbeat",
        "--without-mingle",
        "--without-gossip",
    ]
    for module in celery_worker_includes:
        command += ["-I", module]
    env = {**subprocess_env, "NEXA_TEST_CELERY_WORKER": "1"}
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(command, cwd=BASE_DIR, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    worker = CeleryWorkerProcess(process=process, hostname=hostname, log_path=log_path)
    try:
        deadline = time.monotonic() + WORKER_START_TIMEOUT
        while not worker.ping(timeout=0.5):
            if process.poll() is not None:
                pytest.fail(f"celery worker exited with {process.returncode}:\n{worker.log_tail()}")
            if time.monotonic() > deadline:
                pytest.fail(f"celery worker not ready after {WORKER_START_TIMEOUT}s:\n{worker.log_tail()}")
        yield worker
    finally:
        worker.stop()


# --- a live ASGI server (uvicorn) on the test database -------------------------------------------

SERVER_START_TIMEOUT = 60.0


def free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class AsgiServerProcess:
    """A running ``uvicorn nexa.asgi:application`` subprocess (see :func:`asgi_server_factory`)."""

    process: subprocess.Popen
    port: int
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 80) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(sig)
        try:
            self.process.wait(timeout=WORKER_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=WORKER_STOP_TIMEOUT)

    def kill(self) -> None:
        """SIGKILL: the process dies without closing its sockets (crash simulation)."""
        self.stop(signal.SIGKILL)


def wait_until_live_sessions_closed(timeout: float = 10.0) -> None:
    """Wait (bounded) until no live server process holds an operator session: after a test closed its socket
    clients (or browsers), their disconnect transactions must not race the database flush of the teardown."""
    from operators.models import OperatorSession

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        instances = set(OperatorSession.objects.values_list("server_instance", flat=True))
        if not any(_process_alive(instance) for instance in instances):
            return
        time.sleep(0.05)


def _process_alive(server_instance: str) -> bool:
    pid = server_instance.rpartition(":")[2]
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="module")
def asgi_server_factory(subprocess_env, tmp_path_factory):
    """``asgi_server_factory(extra_env=None)`` starts a REAL uvicorn serving ``nexa.asgi`` (HTTP and
    WebSocket) against the test database and the tests' Redis, waits for ``/healthz``, and stops it
    at the end of the module. Call it twice for two server processes sharing Redis."""
    import httpx

    started: list[AsgiServerProcess] = []

    def start(extra_env: dict[str, str] | None = None) -> AsgiServerProcess:
        port = free_port()
        log_path = tmp_path_factory.mktemp("asgi-server") / "server.log"
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            "nexa.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            "--timeout-graceful-shutdown",
            "5",
        ]
        env = {**subprocess_env, "NEXA_BENCH": "1", **(extra_env or {})}
        with log_path.open("wb") as log_file:
            process = subprocess.Popen(command, cwd=BASE_DIR, env=env, stdout=log_file, stderr=subprocess.STDOUT)
        server = AsgiServerProcess(process=process, port=port, log_path=log_path)
        started.append(server)
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while True:
            if process.poll() is not None:
                pytest.fail(f"ASGI server exited with {process.returncode}:\n{server.log_tail()}")
            try:
                if httpx.get(f"{server.base_url}/healthz", timeout=1.0).status_code == 200:
                    return server
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"ASGI server not ready after {SERVER_START_TIMEOUT}s:\n{server.log_tail()}")
            time.sleep(0.1)

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def asgi_server(asgi_server_factory) -> AsgiServerProcess:
    """One live ASGI server for the module."""
    return asgi_server_factory()
