"""Correlation URNs (ARCHITECTURE §3.5): every request gets ``urn:nexa:correlation:<uuid>``.

An incoming ``X-Correlation-Id`` is honoured when it is our URN or a bare UUID; otherwise the
trace id of a W3C ``traceparent`` is used; otherwise a new one is made. The URN is echoed in the
``X-Correlation-Id`` response header and is the ``instance`` of every problem.
"""

import re
import uuid

import structlog

from nexa.platform.context import correlation_urn_var
from nexa.platform.urns import new_urn

_PREFIX = "urn:nexa:correlation:"
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-(?P<trace>[0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")

logger = structlog.get_logger(__name__)


def correlation_urn_from_headers(correlation_id: str | None, traceparent: str | None) -> str:
    if correlation_id:
        candidate = correlation_id.strip()
        if candidate.startswith(_PREFIX):
            candidate = candidate[len(_PREFIX) :]
        try:
            return _PREFIX + str(uuid.UUID(candidate))
        except ValueError:
            pass
    if traceparent:
        match = _TRACEPARENT.match(traceparent.strip().lower())
        if match and match.group("trace") != "0" * 32:
            return _PREFIX + str(uuid.UUID(hex=match.group("trace")))
    return new_urn("correlation")


class CorrelationMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        urn = correlation_urn_from_headers(request.headers.get("X-Correlation-Id"), request.headers.get("traceparent"))
        request.correlation_urn = urn
        token = correlation_urn_var.set(urn)
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(correlation_urn=urn, method=request.method, path=request.path)
        try:
            response = self.get_response(request)
        finally:
            correlation_urn_var.reset(token)
        response["X-Correlation-Id"] = urn
        return response
