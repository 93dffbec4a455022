"""Real clients for the presence-channel tests, each with bounded waits.

* :class:`PyClient` — python-socketio's ``AsyncClient`` on its own event-loop thread, driven from sync
  test code (so tests can commit with the ORM directly between steps).
* :class:`NodeClient` — socket.io-client v4 under node (``js/client.js``): commands as JSON lines on
  stdin, everything it sees as JSON lines on stdout.
* :class:`RawSocket` — a bare ``websockets`` connection for protocol-level checks (frames, close codes).
"""

from __future__ import annotations

import asyncio
import json
import queue
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import socketio
import websockets

BASE_DIR = Path(__file__).resolve().parents[3]
NODE_SCRIPT = Path(__file__).resolve().parent / "js" / "client.js"
SOCKETIO_PATH = "/ws/cases"
DEFAULT_TIMEOUT = 10.0


@dataclass
class Seen:
    """One thing a client observed: ``kind`` is the event name or a reserved name (connect, ...)."""

    kind: str
    args: list[Any] = field(default_factory=list)
    at: float = field(default_factory=time.monotonic)


class _Inbox:
    def __init__(self) -> None:
        self._queue: queue.Queue[Seen] = queue.Queue()
        self.history: list[Seen] = []

    def put(self, seen: Seen) -> None:
        self._queue.put(seen)

    def wait_for(self, kind: str, predicate=None, timeout: float = DEFAULT_TIMEOUT) -> Seen:
        """The first not-yet-consumed ``kind`` matching ``predicate(args)``, waiting at most ``timeout``."""
        for seen in self.history:
            if seen.kind == kind and not getattr(seen, "_taken", False) and (predicate is None or predicate(seen.args)):
                seen._taken = True
                return seen
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {kind!r} within {timeout}s; saw {[s.kind for s in self.history]}")
            try:
                seen = self._queue.get(timeout=remaining)
            except queue.Empty:
                continue
            self.history.append(seen)
            if seen.kind == kind and (predicate is None or predicate(seen.args)):
                seen._taken = True
                return seen

    def drain(self, seconds: float) -> list[Seen]:
        """Collect everything seen during ``seconds``."""
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                self.history.append(self._queue.get(timeout=remaining))
            except queue.Empty:
                break
        return self.history

    def kinds(self) -> list[str]:
        self.drain(0)
        return [seen.kind for seen in self.history]


class PyClient:
    """python-socketio ``AsyncClient`` (websocket transport) on a private loop thread."""

    def __init__(self, ws_base_url: str, *, reconnection: bool = False) -> None:
        self.url = ws_base_url.replace("ws://", "http://")
        self.inbox = _Inbox()
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.client: socketio.AsyncClient = self.call(self._make(reconnection))

    def call(self, coroutine, timeout: float = DEFAULT_TIMEOUT):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    async def _make(self, reconnection: bool) -> socketio.AsyncClient:
        client = socketio.AsyncClient(reconnection=reconnection)

        async def on_any(event, *args):
            self.inbox.put(Seen(event, list(args)))

        async def on_connect():
            self.inbox.put(Seen("connect"))

        async def on_connect_error(*args):
            self.inbox.put(Seen("connect_error", list(args)))

        async def on_disconnect(*args):
            self.inbox.put(Seen("disconnect", list(args)))

        client.on("*", on_any)
        client.on("connect", on_connect)
        client.on("connect_error", on_connect_error)
        client.on("disconnect", on_disconnect)
        return client

    def connect(self, token: str, *, path: str = SOCKETIO_PATH) -> None:
        self.call(
            self.client.connect(
                self.url, socketio_path=path, auth={"token": token}, transports=["websocket"], wait_timeout=5
            )
        )

    def emit(self, event: str, data: Any) -> None:
        self.call(self.client.emit(event, data))

    def call_ack(self, event: str, data: Any, timeout: float = DEFAULT_TIMEOUT) -> Any:
        return self.call(self.client.call(event, data, timeout=timeout), timeout=timeout + 1)

    def subscribe(self, case_urn: str) -> Any:
        return self.call_ack("subscribe", {"caseUrn": case_urn})

    @property
    def connected(self) -> bool:
        return self.client.connected

    def close(self) -> None:
        try:
            if self.client.connected:
                self.call(self.client.disconnect(), timeout=5)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=5)


class NodeClient:
    """socket.io-client v4 under node (``io(url, {path, auth: {token}, transports: ['websocket']})``)."""

    def __init__(self, ws_base_url: str, token: str, **options: Any) -> None:
        config = {"url": ws_base_url.replace("ws://", "http://"), "token": token, **options}
        self.inbox = _Inbox()
        self.stderr: list[str] = []
        self.process = subprocess.Popen(
            ["node", str(NODE_SCRIPT), json.dumps(config)],
            cwd=BASE_DIR,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            line = line.strip()
            if not line:
                continue
            message = json.loads(line)
            kind = message.pop("type")
            if kind == "event":
                self.inbox.put(Seen(message["event"], message["args"]))
            else:
                self.inbox.put(Seen(kind, [message]))

    def _read_stderr(self) -> None:
        for line in self.process.stderr:
            self.stderr.append(line)

    def send(self, op: str, **fields: Any) -> None:
        self.process.stdin.write(json.dumps({"op": op, **fields}) + "\n")
        self.process.stdin.flush()

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.send("exit")
                self.process.wait(timeout=5)
            except (BrokenPipeError, OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait(timeout=5)


class RawSocket:
    """A bare WebSocket to ``/ws/cases/?EIO=4&transport=websocket`` (one loop thread, sync API)."""

    def __init__(self, ws_base_url: str, *, path: str = "/ws/cases/", query: str = "EIO=4&transport=websocket"):
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.ws = self._call(self._open(f"{ws_base_url}{path}?{query}"))

    @staticmethod
    async def _open(url: str):
        return await websockets.connect(url, max_size=None, open_timeout=5)

    def _call(self, coroutine, timeout: float = DEFAULT_TIMEOUT):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def send(self, frame: str | bytes) -> None:
        self._call(self.ws.send(frame))

    def recv(self, timeout: float = 5.0) -> str | bytes:
        return self._call(asyncio.wait_for(self.ws.recv(), timeout), timeout=timeout + 1)

    def recv_until(self, prefix: str, timeout: float = 5.0) -> str:
        """The next text frame starting with ``prefix`` (server pings and other frames are skipped)."""
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            frame = self.recv(timeout=remaining)
            if isinstance(frame, str) and frame.startswith(prefix):
                return frame
        raise AssertionError(f"no frame starting with {prefix!r} within {timeout}s")

    def wait_closed(self, timeout: float = 5.0) -> int | None:
        """Read until the server closes; the close code it sent."""
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                self.recv(timeout=remaining)
            except websockets.ConnectionClosed:
                return self.ws.close_code
            except TimeoutError:
                break
        raise AssertionError(f"socket still open after {timeout}s")

    def handshake(self, token: str) -> dict:
        """Read the open packet, CONNECT with ``token``; the CONNECT reply's data."""
        opening = self.recv()
        assert opening.startswith("0{"), opening
        self.send("40" + json.dumps({"token": token}))
        reply = self.recv_until("4")
        assert reply.startswith("40{"), reply
        return json.loads(reply[2:])

    @property
    def is_open(self) -> bool:
        return self.ws.close_code is None

    def close(self) -> None:
        try:
            self._call(self.ws.close(), timeout=5)
        except Exception:  # noqa: BLE001 (already closed by the server)
            pass
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=5)
