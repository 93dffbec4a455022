"""Per-principal rate limit (429 problem with Retry-After); the rate is ``NEXA_RATE_LIMIT``."""

from rest_framework.throttling import SimpleRateThrottle


class PrincipalRateThrottle(SimpleRateThrottle):
    scope = "principal"

    def get_cache_key(self, request, view):
        principal = getattr(request, "auth", None)
        if principal is None or not hasattr(principal, "operator_urn"):
            return None  # unauthenticated requests are refused before they cost anything
        return self.cache_format % {"scope": self.scope, "ident": f"{principal.airline}:{principal.operator_urn}"}
