"""What every benchmark sets up beside its load: the server's environment, Django in the bench process
(on the bench database, migrated), and the ASGI server ``make run`` uses on a free loopback port."""

from __future__ import annotations

import os
from dataclasses import dataclass

from nexa import devstack

# The throttle still runs on every request; it just never refuses during a run.
NEVER_REFUSING_RATE_LIMIT = "1000000000/min"


def bench_environ(services: devstack.Services, **extra: str) -> dict[str, str]:
    """The server's environment: NEXA_BENCH routes (``/v1/_bench/ping``, ``/v1/_bench/write``), no debug."""
    return services.environ(NEXA_BENCH="1", DEBUG="0", NEXA_RATE_LIMIT=NEVER_REFUSING_RATE_LIMIT, **extra)


def setup_django(env: dict[str, str]) -> None:
    """Django in this process against ``env``'s database, Redis and simulators; migrates the database."""
    for name in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "NEXA_STATE_DIR"):
        os.environ[name] = env[name]
    for name, value in env.items():
        if name.startswith("NEXA_") and name.endswith("_URL"):
            os.environ[name] = value
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nexa.settings")
    os.environ.setdefault("LOG_FORMAT", "console")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


@dataclass(frozen=True, slots=True)
class BenchServer:
    base_url: str
    command: list[str]


def start_server(
    supervisor: devstack.Supervisor, env: dict[str, str], *, name: str, server: str, workers: int
) -> BenchServer:
    """``server`` (a ``devstack.SERVER_CHOICES`` kind) without access log, its output in ``<state>/<name>.log``
    and its metrics in a fresh ``prometheus-<name>`` directory; returns once ``/healthz`` answers."""
    port = devstack.free_port()
    base_url = f"http://127.0.0.1:{port}"
    command = devstack.server_command(server, port=port, workers=workers, access_log=False)
    server_env = {**env, "PROMETHEUS_MULTIPROC_DIR": devstack.fresh_prometheus_dir(f"prometheus-{name}")}
    with (devstack.state_dir() / f"{name}.log").open("w") as log_file:  # the child keeps its own descriptor
        supervisor.start(server, command, server_env, stdout=log_file, stderr=log_file)
    devstack.wait_http(f"{base_url}/healthz", supervisor, timeout=60)
    return BenchServer(base_url=base_url, command=command)
