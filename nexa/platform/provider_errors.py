"""The error types every external provider adapter raises (ARCHITECTURE §7); described in
:mod:`nexa.platform.providers`, which hands them on. A module of their own so that the circuit breakers
(:mod:`nexa.platform.breakers`) and the HTTP client that calls through them (:mod:`nexa.platform.providers`)
both build on them without importing each other."""

from __future__ import annotations


class ProviderError(Exception):
    """Base of every provider error: ``provider``, ``code``, ``message``, ``attempt_detail``."""

    def __init__(self, *, provider: str, code: str, message: str = "", attempt_detail: dict | None = None):
        self.provider = provider
        self.code = code
        self.message = message or code
        detail = {"provider": provider, "code": code, "message": self.message}
        detail.update(attempt_detail or {})
        self.attempt_detail = detail
        super().__init__(f"{provider}: {code}: {self.message}")

    def __reduce__(self):  # picklable (Celery, multiprocessing) despite keyword-only __init__
        return _rebuild_error, (type(self), self.__dict__.copy())


def _rebuild_error(cls: type, state: dict) -> ProviderError:
    error = cls.__new__(cls)
    Exception.__init__(error, f"{state.get('provider')}: {state.get('code')}: {state.get('message')}")
    error.__dict__.update(state)
    return error


class ProviderTransientError(ProviderError):
    """Timeouts, connection errors, 408/429/5xx: safe to retry with backoff (same idempotency key)."""


class ProviderPermanentError(ProviderError):
    """The provider refused the request; retrying the same request cannot succeed."""


class ProviderUnavailable(ProviderError):
    """The dependency's circuit breaker is open: the call was not attempted."""

    def __init__(
        self, *, domain: str, provider: str | None = None, message: str = "", attempt_detail: dict | None = None
    ):
        self.domain = domain
        detail = {"domain": domain, "httpStatus": None, **(attempt_detail or {})}
        super().__init__(
            provider=provider or domain,
            code="circuit_open",
            message=message or f"The {domain} circuit is open; the call was not attempted.",
            attempt_detail=detail,
        )
