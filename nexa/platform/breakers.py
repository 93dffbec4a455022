"""Circuit breakers, one per external dependency, state shared across processes (ARCHITECTURE §3.9).

pybreaker's ``CircuitBreaker`` with ``CircuitRedisStorage`` on our Redis client (``get_redis()`` has
``decode_responses=False``, which the storage needs: it decodes the state bytes itself). Keys live under
``nexa:breaker:<name>:pybreaker:*``, so every web process and Celery worker sees the same state.

- Only :class:`~nexa.platform.providers.ProviderTransientError` counts as a failure; a refusal
  (permanent error) proves the provider is answering and does not open the circuit.
- ``NEXA_BREAKER_FAIL_MAX`` consecutive transient failures open it; the call that trips it raises its
  own transient error, later calls raise :class:`~nexa.platform.providers.ProviderUnavailable` without
  calling the provider. After ``NEXA_BREAKER_RESET_SECONDS`` one trial call is let through
  (half-open): success closes the circuit, a transient failure opens it for another period.
"""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime
from typing import Any, TypeVar

import pybreaker
from django.conf import settings
from redis.exceptions import RedisError

from nexa.platform.provider_errors import ProviderTransientError, ProviderUnavailable
from nexa.platform.redis import get_redis

T = TypeVar("T")

# The dependencies known today; hotel vendors add their own names ("vendor-<code>").
DEPENDENCIES = ("psp", "sms", "whatsapp", "transport-uber", "transport-cabify")
KEY_PREFIX = "nexa:breaker:"

_lock = threading.Lock()
_breakers: dict[tuple[int, str], pybreaker.CircuitBreaker] = {}


class RedisStorage(pybreaker.CircuitRedisStorage):
    """pybreaker's Redis storage with ``opened_at`` kept to the millisecond (pybreaker truncates it to
    whole seconds, which shortens a short reset timeout by up to a second)."""

    @property
    def opened_at(self) -> datetime | None:
        try:
            value = self._redis.get(self._namespace("opened_at_ms"))
        except RedisError:
            self.logger.exception("RedisError")
            return None
        return datetime.fromtimestamp(int(value) / 1000, UTC) if value else None

    @opened_at.setter
    def opened_at(self, now: datetime) -> None:
        try:
            self._redis.set(self._namespace("opened_at_ms"), int(now.timestamp() * 1000))
        except RedisError:
            self.logger.exception("RedisError")


def _not_a_failure(error: BaseException) -> bool:
    return not isinstance(error, ProviderTransientError)


def breaker_for(name: str) -> pybreaker.CircuitBreaker:
    """The process's breaker for dependency ``name`` (state in Redis; limits read from settings)."""
    key = (os.getpid(), name)
    breaker = _breakers.get(key)
    if breaker is None:
        with _lock:
            breaker = _breakers.get(key)
            if breaker is None:
                storage = RedisStorage(pybreaker.STATE_CLOSED, get_redis(), namespace=f"{KEY_PREFIX}{name}")
                breaker = pybreaker.CircuitBreaker(
                    fail_max=settings.NEXA_BREAKER_FAIL_MAX,
                    reset_timeout=settings.NEXA_BREAKER_RESET_SECONDS,
                    exclude=[_not_a_failure],
                    state_storage=storage,
                    name=name,
                    throw_new_error_on_trip=False,
                )
                _breakers[key] = breaker
    # Read every time, so a settings override (tests) applies to an existing breaker.
    breaker.fail_max = settings.NEXA_BREAKER_FAIL_MAX
    breaker.reset_timeout = settings.NEXA_BREAKER_RESET_SECONDS
    return breaker


def call_through_breaker(name: str, fn, *args: Any, **kwargs: Any):
    """``fn(*args, **kwargs)`` guarded by the breaker ``name``; open → :class:`ProviderUnavailable`."""
    try:
        # Not ``breaker.call()``: it holds the breaker's lock for the whole call, which would serialise
        # every concurrent request to a provider in this process. The state objects are safe to use
        # directly (transitions take the lock themselves); concurrent trial calls while half-open are
        # possible, as they are across processes anyway.
        return breaker_for(name).state.call(fn, *args, **kwargs)
    except pybreaker.CircuitBreakerError as error:
        raise ProviderUnavailable(domain=name) from error


def _known_names() -> set[str]:
    names = set(DEPENDENCIES)
    suffix = ":pybreaker:state"
    for raw in get_redis().scan_iter(match=f"{KEY_PREFIX}*{suffix}", count=500):
        key = raw.decode() if isinstance(raw, bytes) else raw
        names.add(key[len(KEY_PREFIX) : -len(suffix)])
    return names


def breaker_states() -> dict[str, str]:
    """``{name: "closed" | "open" | "half-open"}`` for every known dependency (for ops)."""
    return {name: breaker_for(name).current_state for name in sorted(_known_names())}


def breaker_reset(name: str | None = None) -> None:
    """Close ``name``'s circuit (every known one when ``None``) and zero its counters (ops, tests)."""
    for each in [name] if name else sorted(_known_names()):
        breaker = breaker_for(each)
        breaker.close()
        breaker._state_storage.reset_counter()
