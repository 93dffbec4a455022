"""A small closed-loop HTTP/1.1 load generator for the benchmarks in bench/ (loopback only).

Raw asyncio streams with keep-alive (one connection per simulated client, no HTTP library on the
hot path) so the client costs as little CPU as possible: on the 2-core dev machine the client
shares the cores with the server under test. Each of ``concurrency`` clients sends a request,
reads the whole response, and sends the next one, for ``duration`` seconds after ``warmup``.

Reuse it from other benchmarks::

    from bench.load import measure, measure_ping_baseline, format_results, ratio_line

    baseline = measure_ping_baseline(base_url, token)                  # GET /v1/_bench/ping
    results = measure(base_url + "/v1/…", headers=…, method="POST", body_factory=…)
    print(ratio_line("compensate", results, baseline))                 # throughput vs ping, same run

The ping needs a server started with ``NEXA_BENCH=1`` (see bench/baseline.py).
"""

from __future__ import annotations

import asyncio
import json
import math
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field

DEFAULT_LEVELS = (1, 8, 32, 64)
PING_PATH = "/v1/_bench/ping"

# Called once per request with the request's sequence number: (extra headers, body or None).
BodyFactory = Callable[[int], tuple[Mapping[str, str], bytes | None]]


@dataclass
class LevelResult:
    """One concurrency level: throughput counts only completed 2xx responses."""

    concurrency: int
    duration_s: float
    ok: int
    errors: int
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    statuses: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Baseline:
    """The ping baseline of a run: later benchmarks divide their throughput by it."""

    url: str
    levels: list[LevelResult]

    def at(self, concurrency: int) -> LevelResult | None:
        return next((level for level in self.levels if level.concurrency == concurrency), None)

    @property
    def best(self) -> LevelResult:
        return max(self.levels, key=lambda level: level.rps)

    def ratio(self, result: LevelResult) -> float:
        """``result``'s throughput as a fraction of the ping's at the same concurrency (else the best)."""
        reference = self.at(result.concurrency) or self.best
        return result.rps / reference.rps if reference.rps else math.nan

    def as_dict(self) -> dict:
        return {"url": self.url, "levels": [level.as_dict() for level in self.levels]}


def percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return math.nan
    index = min(len(sorted_values) - 1, max(0, math.ceil(fraction * len(sorted_values)) - 1))
    return sorted_values[index]


def level_result(
    *, concurrency: int, duration: float, latencies: list[float], errors: int, statuses: dict[str, int]
) -> LevelResult:
    """Summarise one measured level: throughput and latency percentiles of the successful answers."""
    latencies = sorted(latencies)
    return LevelResult(
        concurrency=concurrency,
        duration_s=duration,
        ok=len(latencies),
        errors=errors,
        rps=len(latencies) / duration,
        p50_ms=percentile(latencies, 0.50) * 1000,
        p90_ms=percentile(latencies, 0.90) * 1000,
        p99_ms=percentile(latencies, 0.99) * 1000,
        max_ms=(latencies[-1] * 1000) if latencies else math.nan,
        statuses=dict(statuses),
    )


class _Connection:
    # Like httpx's keepalive_expiry: a connection idle this long is not reused, because the server closes
    # idle keep-alive connections (uvicorn after 5 s) and a request sent into that close is lost.
    KEEPALIVE_EXPIRY_SECONDS = 4.0

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.last_used = 0.0

    async def request(self, payload: bytes) -> int:
        if self.writer is not None and time.monotonic() - self.last_used > self.KEEPALIVE_EXPIRY_SECONDS:
            self.close()
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(payload)
        status, keep_alive = await _read_response(self.reader)
        self.last_used = time.monotonic()
        if not keep_alive:
            self.close()
        return status

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length, chunked, keep_alive = None, False, True
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
        elif name == b"connection" and value.strip().lower() == b"close":
            keep_alive = False
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length is not None:
        await reader.readexactly(length)
    else:  # no framing: the body runs to the end of the connection
        await reader.read()
        keep_alive = False
    return status, keep_alive


def _payload(method: str, target: str, host: str, headers: Mapping[str, str], body: bytes | None) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}", "Connection: keep-alive"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


async def run_level(
    url: str,
    *,
    concurrency: int,
    duration: float = 3.0,
    warmup: float = 0.5,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
    body_factory: BodyFactory | None = None,
    timeout: float = 10.0,
) -> LevelResult:
    """Closed loop at one concurrency; latencies and counts only after ``warmup``."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError("bench/ only loads loopback servers")
    host, port = parsed.hostname, parsed.port or 80
    target = parsed.path + (f"?{parsed.query}" if parsed.query else "")
    host_header = parsed.netloc
    base_headers = dict(headers or {})
    if body is not None or body_factory is not None:
        base_headers.setdefault("Content-Type", "application/json")
    fixed = None if body_factory else _payload(method, target, host_header, base_headers, body)

    loop = asyncio.get_running_loop()
    start = loop.time()
    measure_from = start + warmup
    stop_at = measure_from + duration
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    errors = 0
    sequence = 0

    async def client() -> None:
        nonlocal errors, sequence
        connection = _Connection(host, port)
        try:
            while (now := loop.time()) < stop_at:
                if fixed is None:
                    sequence += 1
                    extra, request_body = body_factory(sequence)
                    payload = _payload(method, target, host_header, {**base_headers, **extra}, request_body)
                else:
                    payload = fixed
                began = time.perf_counter()
                try:
                    status = await asyncio.wait_for(connection.request(payload), timeout)
                except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError):
                    connection.close()
                    if now >= measure_from:
                        errors += 1
                        statuses["error"] += 1
                    await asyncio.sleep(0.01)
                    continue
                elapsed = time.perf_counter() - began
                if now >= measure_from:
                    statuses[str(status)] += 1
                    if 200 <= status < 300:
                        latencies.append(elapsed)
                    else:
                        errors += 1
        finally:
            connection.close()

    await asyncio.gather(*(client() for _ in range(concurrency)))
    return level_result(
        concurrency=concurrency, duration=duration, latencies=latencies, errors=errors, statuses=statuses
    )


def _run(coroutine):
    """asyncio.run, on uvloop when installed (less client overhead)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


def measure(
    url: str,
    *,
    levels: Iterable[int] = DEFAULT_LEVELS,
    duration: float = 3.0,
    warmup: float = 0.5,
    pause: float = 0.3,
    **request,
) -> list[LevelResult]:
    """``run_level`` at each concurrency in turn (``request``: method, headers, body, body_factory)."""
    results = []
    for concurrency in levels:
        results.append(_run(run_level(url, concurrency=concurrency, duration=duration, warmup=warmup, **request)))
        time.sleep(pause)  # let the server settle (keep-alive sockets closing) between levels
    return results


def auth_headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Accept": "application/json"}


def check_ping(base_url: str, token: str) -> None:
    """Fail fast, with the server's answer, when the ping is not there (NEXA_BENCH unset, bad token…)."""
    import urllib.request

    request = urllib.request.Request(base_url.rstrip("/") + PING_PATH, headers=auth_headers(token))
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            json.loads(response.read())
    except Exception as error:
        detail = error.read().decode(errors="replace")[:300] if hasattr(error, "read") else ""
        raise RuntimeError(f"GET {PING_PATH} failed: {error} {detail}") from error


def measure_ping_baseline(
    base_url: str,
    token: str,
    *,
    levels: Iterable[int] = DEFAULT_LEVELS,
    duration: float = 3.0,
    warmup: float = 0.5,
) -> Baseline:
    """Throughput and latency of the authenticated bare ``GET /v1/_bench/ping`` on ``base_url``."""
    check_ping(base_url, token)
    url = base_url.rstrip("/") + PING_PATH
    return Baseline(
        url=url, levels=measure(url, levels=levels, duration=duration, warmup=warmup, headers=auth_headers(token))
    )


def format_results(title: str, results: Iterable[LevelResult]) -> str:
    rows = [
        title,
        f"{'conc':>5} {'req/s':>9} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8} {'ok':>7} {'errors':>6}",
    ]
    for r in results:
        rows.append(
            f"{r.concurrency:>5} {r.rps:>9.0f} {r.p50_ms:>8.2f} {r.p90_ms:>8.2f} {r.p99_ms:>8.2f} {r.max_ms:>8.1f}"
            f" {r.ok:>7} {r.errors:>6}"
        )
    return "\n".join(rows)


def ratio_line(name: str, results: Iterable[LevelResult], baseline: Baseline) -> str:
    """One greppable line per level: ``RATIO <name> c=32 rps=… ping_rps=… ratio=0.62 p99_ms=…``."""
    lines = []
    for r in results:
        reference = baseline.at(r.concurrency) or baseline.best
        lines.append(
            f"RATIO {name} c={r.concurrency} rps={r.rps:.0f} ping_rps={reference.rps:.0f}"
            f" ratio={baseline.ratio(r):.3f} p50_ms={r.p50_ms:.2f} p99_ms={r.p99_ms:.2f} errors={r.errors}"
        )
    return "\n".join(lines)


def summary_line(name: str, results: Iterable[LevelResult]) -> str:
    """``BASELINE <name> c=1:rps/p50/p99 c=8:…``: one line to compare runs."""
    parts = [f"c={r.concurrency}:{r.rps:.0f}rps/{r.p50_ms:.2f}ms/{r.p99_ms:.2f}ms" for r in results]
    return f"BASELINE {name} " + " ".join(parts)
