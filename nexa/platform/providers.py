"""External providers (ARCHITECTURE §7): the shared error types and a small httpx-based client.

Every adapter (PSP, transport, SMS/WhatsApp, hotel vendors) raises only these errors:

- :class:`ProviderTransientError` — timeouts, connection failures, 408/429/5xx: retry with backoff.
  These, and only these, count as failures for the dependency's circuit breaker.
- :class:`ProviderPermanentError` — the provider answered and refused (``insufficient_funds``,
  ``card_declined``, ``fraud_hold``, ``invalid_recipient``, ``template_not_approved`` …): do not retry,
  compensate.
- :class:`ProviderUnavailable` — the dependency's circuit is open; nothing was sent. Synchronous routes
  answer :func:`problem_for_unavailable` (503, ``failedDomain``, ``Retry-After: 30``).

Each error's ``attempt_detail`` is a JSON-serialisable dict (provider, operation, HTTP status, the
provider's error code and message, idempotency key, duration) for saga attempt records.

The error types live in :mod:`nexa.platform.provider_errors` (the circuit breakers use them too) and are
handed on from here, where every adapter imports them.
"""

from __future__ import annotations

import functools
import os
import time
from typing import Any
from urllib.parse import quote

import httpx
import structlog
from django.conf import settings

from nexa.platform import breakers
from nexa.platform.problems import Problem, downstream_unavailable_problem
from nexa.platform.provider_errors import (
    ProviderError,
    ProviderPermanentError,
    ProviderTransientError,
    ProviderUnavailable,
    _rebuild_error,
)

# One structured line per provider call (httpx's own per-request INFO line is silenced in
# nexa.platform.logging): provider, operation, status and duration, never the body (it may carry PII).
logger = structlog.get_logger("nexa.providers")

__all__ = [
    "ProviderError",
    "ProviderHttpClient",
    "ProviderPermanentError",
    "ProviderTransientError",
    "ProviderUnavailable",
    "_rebuild_error",  # pickles of provider errors made before the move name it here
    "problem_for_unavailable",
    "provider_timeout",
]


def problem_for_unavailable(error: ProviderUnavailable) -> Problem:
    """The 503 problem a synchronous route answers while a dependency's circuit is open."""
    return downstream_unavailable_problem(error.domain)


# --- the HTTP client every adapter uses ------------------------------------------------------------

TRANSIENT_STATUSES = frozenset({408, 425, 429})


def provider_timeout() -> httpx.Timeout:
    return httpx.Timeout(
        settings.NEXA_PROVIDER_TIMEOUT_SECONDS,
        connect=settings.NEXA_PROVIDER_CONNECT_TIMEOUT_SECONDS,
    )


@functools.cache
def _http_client(pid: int, base_url: str) -> httpx.Client:
    # One pooled client per process and provider URL (``pid`` keeps a forked child off its parent's sockets).
    return httpx.Client(base_url=base_url, limits=httpx.Limits(max_connections=100))


class ProviderHttpClient:
    """JSON over HTTP to one provider, through the circuit breaker named ``breaker``.

    ``request()`` returns the decoded JSON body of a 2xx answer (``{}`` when empty) and raises the
    error types above otherwise.
    """

    def __init__(self, *, provider: str, breaker: str, base_url: str, timeout: httpx.Timeout | None = None):
        if not base_url:
            raise ValueError(f"no URL configured for provider {provider!r}")
        self.provider = provider
        self.breaker = breaker
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout or provider_timeout()

    @property
    def http(self) -> httpx.Client:
        return _http_client(os.getpid(), self.base_url)

    def request(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        idempotency_key: str | None = None,
        json: Any = None,
    ) -> dict:
        try:
            return breakers.call_through_breaker(
                self.breaker, self._send, method, path, operation=operation, idempotency_key=idempotency_key, json=json
            )
        except ProviderUnavailable as error:
            raise ProviderUnavailable(
                domain=error.domain,
                provider=self.provider,
                attempt_detail={
                    "operation": operation,
                    "method": method,
                    "path": path,
                    "idempotencyKey": idempotency_key,
                },
            ) from error

    def lookup_idempotency_key(self, idempotency_key: str) -> dict | None:
        """The provider's status lookup by idempotency key (``GET /v1/idempotency-keys/{key}``): the
        answer it gave the request made with that key, or ``None`` when the provider confirms no request
        with that key was ever executed. A request with that key still in flight is transient (ask again
        later); so is any 5xx or timeout — the outcome stays unknown."""

        try:
            found = self.request(
                "GET", f"/v1/idempotency-keys/{quote(idempotency_key, safe='')}", operation="lookup_idempotency_key"
            )
        except ProviderPermanentError as error:
            if error.code == "idempotency_key_not_found":
                return None
            if error.code == "idempotency_key_in_flight":
                raise ProviderTransientError(
                    provider=error.provider, code=error.code, message=error.message, attempt_detail=error.attempt_detail
                ) from error
            raise
        response = found.get("response")
        return response if isinstance(response, dict) else {}

    def _send(self, method: str, path: str, *, operation: str, idempotency_key: str | None, json: Any) -> dict:
        headers = {"Accept": "application/json"}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        detail: dict[str, Any] = {
            "provider": self.provider,
            "operation": operation,
            "method": method,
            "path": path,
            "idempotencyKey": idempotency_key,
            "httpStatus": None,
        }
        started = time.monotonic()
        try:
            response = self.http.request(method, path, json=json, headers=headers, timeout=self.timeout)
        except httpx.TimeoutException as exc:
            detail["durationMs"] = round((time.monotonic() - started) * 1000)
            _log_call(detail, outcome="timeout")
            raise ProviderTransientError(
                provider=self.provider, code="timeout", message=f"{type(exc).__name__}: {exc}", attempt_detail=detail
            ) from exc
        except httpx.TransportError as exc:
            detail["durationMs"] = round((time.monotonic() - started) * 1000)
            _log_call(detail, outcome="connection_error")
            raise ProviderTransientError(
                provider=self.provider,
                code="connection_error",
                message=f"{type(exc).__name__}: {exc}",
                attempt_detail=detail,
            ) from exc
        detail["durationMs"] = round((time.monotonic() - started) * 1000)
        detail["httpStatus"] = response.status_code
        body = _json_or_none(response)
        if response.is_success:
            _log_call(detail, outcome="ok")
            return body if isinstance(body, dict) else {}
        code, message = _error_code_and_message(body, response)
        _log_call(detail, outcome=code)
        if response.status_code >= 500 or response.status_code in TRANSIENT_STATUSES:
            raise ProviderTransientError(provider=self.provider, code=code, message=message, attempt_detail=detail)
        raise ProviderPermanentError(provider=self.provider, code=code, message=message, attempt_detail=detail)


def _log_call(detail: dict[str, Any], *, outcome: str) -> None:
    log = logger.info if outcome == "ok" else logger.warning
    log(
        "provider.call",
        provider=detail["provider"],
        operation=detail["operation"],
        method=detail["method"],
        path=detail["path"],
        http_status=detail["httpStatus"],
        duration_ms=detail["durationMs"],
        outcome=outcome,
    )


def _json_or_none(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return None


def _error_code_and_message(body: Any, response: httpx.Response) -> tuple[str, str]:
    """``{"error": {"code", "message"}}``, ``{"code", "message"}`` (Uber) or Meta's ``{"error": {"message",
    "code", "error_subcode", "error_data": {"details"}}}``; else ``http_<status>``."""
    error = body.get("error", body) if isinstance(body, dict) else None
    if isinstance(error, dict):
        code = error.get("code") or error.get("error_code")
        message = error.get("message") or error.get("detail") or ""
        if code is not None:
            return str(code), str(message or response.reason_phrase)
    text = response.text[:200] if response.content else ""
    return f"http_{response.status_code}", text or response.reason_phrase
