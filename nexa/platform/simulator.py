"""The HTTP server base of the provider simulators (ARCHITECTURE §7; docs/providers.md).

A simulator is a separate process (``python -m booking.simulators psp --port N``) speaking the
provider's HTTP API, with an in-memory ledger of every effect. Pure standard library (no Django), so
it starts in a fraction of a second. Every simulator answers:

- ``GET /_health`` → 200; ``GET /_ledger`` → ``{entries: [...], requestCount, config}`` (every effect,
  for tests to assert exactly-once; ``requestCount`` counts provider API requests received);
- ``POST /_control`` with any of ``latencyMs`` (``n`` or ``[min, max]``, before the effect),
  ``latencyAfterMs`` (after the effect, before the answer), ``errorRate`` (0..1: transient errors),
  ``errorStatus`` (503 default, or 429/500/502/504), ``outage`` (``true``: every request 503;
  ``"drop"``: the connection is closed without an answer), ``refuse`` (``{"<subject or *>": code}``),
  ``approvedTemplates`` (WhatsApp), ``faultAfterProcessing`` (``{"<path or *>": status | "drop"}``:
  the request is processed — its effect made and stored under its key — and then the answer is lost:
  a 5xx, or the connection closed as a timeout would; replays of that key are answered the same way;
  ``"*"`` applies to every API route, a path such as ``"/v1/payouts"`` to that exact path only) —
  switchable at runtime; ``POST /_reset`` → initial state.
- ``GET /v1/idempotency-keys/{key}`` (URL-encoded key) → ``{key, state: "COMPLETED", status, response}``
  for a key whose effect was made; 409 ``idempotency_key_in_flight`` while a request with that key is
  still being processed; 404 ``idempotency_key_not_found`` when no request with that key was ever
  executed (the status lookup a saga uses to resolve a step whose outcome it does not know).

Effects are idempotent by the ``Idempotency-Key`` header (required on every effectful request): the
same key with the same method, path and body replays the stored answer (``Idempotent-Replayed: true``)
without a second effect; the same key with a different request is a 422 ``idempotency_key_reused``.
Only successful answers are stored, so a refused or failed request can be retried with its key.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import signal
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

from nexa.platform.instants import iso

DROP = object()  # a handler result: close the connection without answering


class SimulatorError(Exception):
    """An error answer: ``{"error": {"code", "message"}}`` with ``status`` (or a custom ``body``)."""

    def __init__(self, status: int, code: str, message: str = "", body: dict | None = None):
        super().__init__(message or code)
        self.status = status
        self.code = code
        self.message = message or code
        self.body = body

    def answer(self) -> tuple[int, dict]:
        return self.status, self.body or {"error": {"code": self.code, "message": self.message}}


@dataclass
class Route:
    method: str
    pattern: re.Pattern
    handler: Callable[..., tuple[int, Any]]
    effectful: bool


def route(method: str, path: str, *, effectful: bool = True):
    """Decorator: ``@route("POST", r"/v1/payouts/(?P<payout_id>[^/]+)/reverse")``."""

    def mark(fn):
        fn._route = (method, re.compile(f"^{path}$"), effectful)
        return fn

    return mark


def utcnow() -> datetime:
    return datetime.now(UTC)


def parse_time(value: Any, field: str) -> datetime:
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise SimulatorError(400, "invalid_request", f"{field} must be an ISO 8601 time")
    if moment.tzinfo is None:
        raise SimulatorError(400, "invalid_request", f"{field} must carry a UTC offset")
    return moment


def parse_amount(value: Any, field: str = "amount") -> Decimal:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise SimulatorError(400, "invalid_request", f"{field} must be a decimal string")
    if not amount.is_finite() or amount <= 0:
        raise SimulatorError(400, "invalid_request", f"{field} must be positive")
    return amount.quantize(Decimal("0.01"))


def money(amount: Decimal) -> str:
    return str(amount.quantize(Decimal("0.01")))


def require(body: dict, *fields: str) -> None:
    missing = [name for name in fields if body.get(name) in (None, "")]
    if missing:
        raise SimulatorError(400, "invalid_request", f"missing fields: {', '.join(missing)}")


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


class Simulator:
    """Base of a simulator: routes (``@route`` methods), config, ledger, idempotency store."""

    name = "simulator"
    default_config: dict[str, Any] = {}

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.routes = [
            Route(method, pattern, getattr(self, attr), effectful)
            for attr in dir(type(self))
            if (spec := getattr(getattr(type(self), attr), "_route", None))
            for method, pattern, effectful in [spec]
        ]
        self.reset()

    # --- state -------------------------------------------------------------------------------------

    def reset(self) -> None:
        with self.lock:
            # Requests still sleeping in their latency when the reset comes never apply their effect.
            self.generation = getattr(self, "generation", 0) + 1
            self.config: dict[str, Any] = {
                "latencyMs": [0, 0],
                "latencyAfterMs": [0, 0],
                "errorRate": 0.0,
                "errorStatus": 503,
                "outage": False,
                "refuse": {},
                "faultAfterProcessing": {},
                **json.loads(json.dumps(self.default_config)),
            }
            self.entries: list[dict] = []
            self.request_count = 0
            self.stored: dict[str, tuple[str, int, Any]] = {}
            self.in_flight: dict[str, int] = {}
            self.reset_state()

    def reset_state(self) -> None:
        """Subclasses: clear their own in-memory state."""

    def record(self, kind: str, **fields: Any) -> dict:
        entry = {"seq": len(self.entries) + 1, "type": kind, "at": iso(utcnow()), **fields}
        self.entries.append(entry)
        return entry

    def refusal_for(self, *subjects: str | None) -> str | None:
        refuse = self.config.get("refuse") or {}
        for subject in subjects:
            if subject and subject in refuse:
                return refuse[subject]
        return refuse.get("*")

    def control(self, body: dict) -> dict:
        allowed = set(self.config)
        unknown = set(body) - allowed
        if unknown:
            raise SimulatorError(400, "invalid_request", f"unknown settings: {', '.join(sorted(unknown))}")
        with self.lock:
            for key in ("latencyMs", "latencyAfterMs"):
                if key in body:
                    value = body[key]
                    pair = [value, value] if isinstance(value, (int, float)) else list(value)
                    if len(pair) != 2 or any(not isinstance(v, (int, float)) or v < 0 for v in pair):
                        raise SimulatorError(400, "invalid_request", f"{key} is n or [min, max] milliseconds")
                    body[key] = sorted(pair)
            if "errorRate" in body and not 0 <= float(body["errorRate"]) <= 1:
                raise SimulatorError(400, "invalid_request", "errorRate is between 0 and 1")
            if body.get("outage") not in (None, True, False, "drop"):
                raise SimulatorError(400, "invalid_request", 'outage is true, false or "drop"')
            if "refuse" in body and not isinstance(body["refuse"] or {}, dict):
                raise SimulatorError(400, "invalid_request", "refuse is {subject: code}")
            if "refuse" in body:
                body["refuse"] = body["refuse"] or {}
            if "faultAfterProcessing" in body:
                faults = body["faultAfterProcessing"] or {}
                if not isinstance(faults, dict) or any(
                    v != "drop" and (not isinstance(v, int) or isinstance(v, bool) or not 500 <= v <= 599)
                    for v in faults.values()
                ):
                    raise SimulatorError(400, "invalid_request", 'faultAfterProcessing is {path: 5xx | "drop"}')
                body["faultAfterProcessing"] = faults
            self.config.update(body)
            return dict(self.config)

    def ledger(self) -> dict:
        with self.lock:
            return {
                "simulator": self.name,
                "entries": list(self.entries),
                "requestCount": self.request_count,
                "config": dict(self.config),
            }

    # --- dispatch ----------------------------------------------------------------------------------

    def handle(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, Any, dict] | object:
        path = path.split("?", 1)[0]
        if path == "/_health" and method == "GET":
            return 200, {"status": "ok", "simulator": self.name}, {}
        if path == "/_ledger" and method == "GET":
            return 200, self.ledger(), {}
        if path in ("/_control", "/_reset") and method == "POST":
            try:
                if path == "/_reset":
                    self.reset()
                    return 200, self.ledger()["config"], {}
                return 200, self.control(_decode(raw)), {}
            except SimulatorError as error:
                return (*error.answer(), {})
        key = headers.get("idempotency-key", "").strip().strip('"')
        with self.lock:
            self.request_count += 1
            config = dict(self.config)
            generation = self.generation
            if key and method != "GET":
                self.in_flight[key] = self.in_flight.get(key, 0) + 1
        try:
            result = self._dispatch(method, path, key, raw, config, generation)
        finally:
            if key and method != "GET":
                with self.lock:
                    left = self.in_flight.get(key, 1) - 1
                    if left > 0:
                        self.in_flight[key] = left
                    else:
                        self.in_flight.pop(key, None)
        fault = _fault_for(config, path)
        if fault is not None and result is not DROP:
            if fault == "drop":
                return DROP
            return fault, {"error": {"code": "answer_lost", "message": "simulated fault after processing"}}, {}
        return result

    def lookup_key(self, key: str) -> tuple[int, dict]:
        """The status lookup by idempotency key (``GET /v1/idempotency-keys/{key}``)."""
        with self.lock:
            if key in self.stored:
                _, status, answer = self.stored[key]
                return 200, {"key": key, "state": "COMPLETED", "status": status, "response": answer}
            if key in self.in_flight:
                return 409, {"error": {"code": "idempotency_key_in_flight", "message": "still being processed"}}
        return 404, {"error": {"code": "idempotency_key_not_found", "message": "no request with this key was executed"}}

    def _dispatch(
        self, method: str, path: str, key: str, raw: bytes, config: dict, generation: int
    ) -> tuple[int, Any, dict] | object:
        if config["outage"] == "drop":
            return DROP
        if config["outage"]:
            return 503, {"error": {"code": "outage", "message": f"{self.name} is down"}}, {"Retry-After": "5"}
        _sleep(config["latencyMs"])
        if config["errorRate"] and random.random() < float(config["errorRate"]):
            status = int(config["errorStatus"])
            return status, {"error": {"code": "temporarily_unavailable", "message": "simulated fault"}}, {}
        if method == "GET" and (lookup := _LOOKUP.match(path)):
            return (*self.lookup_key(unquote(lookup.group(1))), {})
        for candidate in self.routes:
            match = candidate.pattern.match(path)
            if match and candidate.method == method:
                break
        else:
            return 404, {"error": {"code": "not_found", "message": f"no route {method} {path}"}}, {}
        try:
            body = _decode(raw)
            with self.lock:
                if self.generation != generation:
                    raise SimulatorError(503, "simulator_reset", "the simulator was reset while this request waited")
            if not candidate.effectful:
                with self.lock:
                    status, answer = candidate.handler(body, **match.groupdict())
                return status, answer, {}
            if not key:
                raise SimulatorError(400, "idempotency_key_required", "Idempotency-Key header is required")
            fingerprint = hashlib.sha256(
                json.dumps([method, path, body], sort_keys=True, separators=(",", ":")).encode()
            ).hexdigest()
            with self.lock:
                if self.generation != generation:
                    raise SimulatorError(503, "simulator_reset", "the simulator was reset while this request waited")
                if key in self.stored:
                    stored_fingerprint, status, answer = self.stored[key]
                    if stored_fingerprint != fingerprint:
                        raise SimulatorError(
                            422, "idempotency_key_reused", "this Idempotency-Key was used with another request"
                        )
                    return status, answer, {"Idempotent-Replayed": "true"}
                status, answer = candidate.handler(body, **match.groupdict())
                if 200 <= status < 300:
                    self.stored[key] = (fingerprint, status, answer)
            _sleep(config["latencyAfterMs"])
            return status, answer, {}
        except SimulatorError as error:
            return (*error.answer(), {})


_LOOKUP = re.compile(r"^/v1/idempotency-keys/([^/]+)$")


def _fault_for(config: dict, path: str) -> int | str | None:
    faults = config.get("faultAfterProcessing") or {}
    if path in faults:
        return faults[path]
    return faults.get("*")


def _sleep(window: list) -> None:
    low, high = window
    if high > 0:
        time.sleep(random.uniform(low, high) / 1000)


def _decode(raw: bytes) -> dict:
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise SimulatorError(400, "invalid_json", "the body is not JSON")
    if not isinstance(body, dict):
        raise SimulatorError(400, "invalid_json", "the body must be a JSON object")
    return body


def make_server(simulator: Simulator, host: str, port: int, *, verbose: bool = False) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = f"nexa-{simulator.name}-simulator"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            headers = {name.lower(): value for name, value in self.headers.items()}
            result = simulator.handle(self.command, self.path, headers, raw)
            if result is DROP:
                self.close_connection = True
                return
            status, body, extra = result
            data = b"" if body is None or status == 204 else json.dumps(body).encode()
            self.send_response(status)
            if data:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in extra.items():
                self.send_header(name, value)
            self.end_headers()
            if data:
                self.wfile.write(data)

        do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _serve  # noqa: N815

        def log_message(self, format: str, *args: Any) -> None:
            if verbose:
                super().log_message(format, *args)

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        allow_reuse_address = True
        request_queue_size = 256

    return Server((host, port), Handler)


def serve_main(prog: str, simulators: dict[str, Callable[[], Simulator]], argv: list[str] | None = None) -> int:
    """``python -m <prog> <kind> --port N [--host H] [--verbose]``: serve until SIGTERM/SIGINT."""

    parser = argparse.ArgumentParser(prog=f"python -m {prog}", description="Run a provider simulator.")
    parser.add_argument("kind", choices=sorted(simulators))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    server = make_server(simulators[args.kind](), args.host, args.port, verbose=args.verbose)

    def stop(signum, frame):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"{args.kind} simulator on http://{args.host}:{server.server_address[1]}", flush=True)  # noqa: T201
    server.serve_forever(poll_interval=0.2)
    server.server_close()
    return 0
