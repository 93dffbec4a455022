"""Prometheus metrics: request counts and latency by route and status.

With several server processes set ``PROMETHEUS_MULTIPROC_DIR`` (``make run`` does) so
``/metrics`` aggregates them all.
"""

import time

from prometheus_client import Counter, Histogram

REQUESTS = Counter("nexa_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram(
    "nexa_http_request_duration_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)


def _route_of(request) -> str:
    match = getattr(request, "resolver_match", None)
    # The route pattern, not the concrete path: URNs would explode label cardinality.
    return match.route if match is not None and match.route else "unmatched"


class MetricsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        route = _route_of(request)
        if route != "metrics":
            elapsed = time.perf_counter() - started
            REQUESTS.labels(request.method, route, str(response.status_code)).inc()
            LATENCY.labels(request.method, route).observe(elapsed)
        return response
