"""Keep the middleware chain in one thread under ASGI.

In async mode Django runs each ``MiddlewareMixin`` middleware's ``process_request`` and
``process_response`` through ``sync_to_async``: about 18 thread hops per request, most of the
cost of a bare authenticated request. A sync-only middleware at the innermost position makes
Django build the whole chain in sync mode, so a request hops once into a worker thread, runs
every middleware there, and hops once more for the (sync) DRF view.
"""


class SyncMiddlewareChain:
    sync_capable = True
    async_capable = False

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)
