"""Per-principal rate limit (429 problem with Retry-After); the rate is ``NEXA_RATE_LIMIT``.

A fixed-window counter in Redis through the process-wide client: Django's cache would open a
new Redis connection per request under ASGI (caches are per async context), and its
read-then-write counting is not atomic across processes.
"""

import time

from redis.exceptions import RedisError
from rest_framework.throttling import BaseThrottle, SimpleRateThrottle

from nexa.platform.redis import get_redis


class PrincipalRateThrottle(BaseThrottle):
    scope = "principal"

    def __init__(self):
        rate = SimpleRateThrottle.THROTTLE_RATES.get(self.scope)
        self.num_requests, self.duration = SimpleRateThrottle.parse_rate(None, rate)
        self._wait = 0.0

    def allow_request(self, request, view) -> bool:
        principal = getattr(request, "auth", None)
        if principal is None or not hasattr(principal, "operator_urn") or not self.num_requests:
            return True  # unauthenticated requests are refused before they cost anything
        now = time.time()
        window = int(now // self.duration)
        key = f"nexa:throttle:{self.scope}:{principal.airline}:{principal.operator_urn}:{window}"
        pipeline = get_redis().pipeline(transaction=False)
        pipeline.incr(key)
        pipeline.expire(key, self.duration + 1)
        count, _ = pipeline.execute()
        if count <= self.num_requests:
            return True
        self._wait = (window + 1) * self.duration - now
        return False

    def wait(self) -> float:
        return self._wait


# --- sliding-window budgets (per resource, not per principal) ------------------------------------------

# One atomic script: drop entries older than the window, count, and add this one only when under the
# limit; else answer the milliseconds until the oldest entry leaves the window. Redis's own clock
# (TIME), so every process agrees on "now".
_SLIDING_WINDOW_TAKE = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local window_ms = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms - window_ms)
if redis.call('ZCARD', KEYS[1]) >= limit then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  local wait = window_ms
  if oldest[2] then wait = tonumber(oldest[2]) + window_ms - now_ms end
  return {0, wait}
end
redis.call('ZADD', KEYS[1], now_ms, ARGV[3])
redis.call('PEXPIRE', KEYS[1], window_ms)
return {1, 0}
"""


class SlidingWindowBudget:
    """At most ``limit`` uses of one resource in any ``window_seconds`` (a sliding log in a Redis sorted
    set, checked and taken atomically by one Lua script, so concurrent callers on any process can never
    take more than ``limit`` together). :meth:`take` returns ``(taken, retry_after_seconds)``; a use whose
    work failed afterwards can be handed back with :meth:`give_back`."""

    def __init__(self, key: str, *, limit: int, window_seconds: int):
        self.key = key
        self.limit = limit
        self.window_ms = int(window_seconds * 1000)

    def take(self, token: str) -> tuple[bool, int]:
        if self.limit <= 0:
            return False, max(self.window_ms // 1000, 1)
        redis_client = get_redis()
        taken, wait_ms = redis_client.eval(_SLIDING_WINDOW_TAKE, 1, self.key, self.window_ms, self.limit, token)
        return bool(taken), max(int(-(-int(wait_ms) // 1000)), 1) if not taken else 0

    def give_back(self, token: str) -> None:
        """Hand a use back (its work failed). Best effort: it runs while another error is raised, and a
        use that cannot be handed back only errs on the safe side."""
        try:
            get_redis().zrem(self.key, token)
        except RedisError:
            pass
