"""Per-principal rate limit (429 problem with Retry-After); the rate is ``NEXA_RATE_LIMIT``.

A fixed-window counter in Redis through the process-wide client: Django's cache would open a
new Redis connection per request under ASGI (caches are per async context), and its
read-then-write counting is not atomic across processes.
"""

import time

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
