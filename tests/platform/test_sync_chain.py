"""Under ASGI the whole middleware chain runs in sync mode (one thread hop per request, not one
per middleware): every middleware instance Django builds must be synchronous."""

from asgiref.sync import iscoroutinefunction
from django.core.handlers.asgi import ASGIHandler
from django.utils.deprecation import MiddlewareMixin


def _middleware_instances(handler):
    """Walk the chain Django built: each layer wraps the next through ``get_response``."""
    layer = handler._middleware_chain
    seen = []
    while layer is not None and len(seen) < 50:
        inner = getattr(layer, "__wrapped__", None) or getattr(layer, "func", None) or getattr(layer, "awaitable", None)
        if inner is not None and inner is not layer:
            layer = inner
            continue
        owner = getattr(layer, "__self__", None)
        candidate = owner if owner is not None else layer
        if isinstance(candidate, ASGIHandler):
            break  # reached the handler itself: the chain ends here
        if hasattr(candidate, "get_response"):
            seen.append(candidate)
            layer = candidate.get_response
            continue
        break
    return seen


def test_every_middleware_runs_synchronously_under_asgi():
    handler = ASGIHandler()
    middlewares = _middleware_instances(handler)
    names = [type(m).__name__ for m in middlewares]
    assert names[0] == "CorrelationMiddleware" and "SyncMiddlewareChain" in names, names
    for middleware in middlewares:
        if isinstance(middleware, MiddlewareMixin):
            assert not iscoroutinefunction(middleware), f"{type(middleware).__name__} runs in async mode"


def test_without_the_sync_chain_django_would_run_middlewares_async(settings):
    # The check above can fail: drop the innermost sync middleware and Django goes async again.
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if not m.endswith("SyncMiddlewareChain")]
    middlewares = _middleware_instances(ASGIHandler())
    assert any(isinstance(m, MiddlewareMixin) and iscoroutinefunction(m) for m in middlewares)
