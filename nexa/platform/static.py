"""Static files served by the app (WhiteNoise), streamed asynchronously under ASGI.

WhiteNoise 6 is WSGI-shaped: as Django middleware it answers with a ``FileResponse`` over a synchronous file
iterator. Django's ASGI handler can only read that by pulling the whole file into a list in one thread hop,
and warns ("StreamingHttpResponse must consume synchronous iterators …") in every server process. Under ASGI
this middleware hands Django an asynchronous iterator instead, reading one chunk per thread hop (64 KiB, the
handler's chunk size); under WSGI (the test client, a WSGI server) the response is WhiteNoise's own.
"""

import os
from collections.abc import AsyncIterator, Iterator

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from whitenoise.middleware import WhiteNoiseMiddleware

_next_chunk = sync_to_async(next, thread_sensitive=False)


async def _read_async(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    while (chunk := await _next_chunk(chunks, None)) is not None:
        yield chunk


class StaticFilesMiddleware(WhiteNoiseMiddleware):
    def add_files(self, root, prefix=None):
        # A STATIC_ROOT that collectstatic has not filled (tests, a fresh clone with DEBUG: files come from the
        # finders) is nothing to serve, not a warning in every process start.
        if root == self.static_root and not self.autorefresh and not os.path.isdir(root):
            return
        super().add_files(root, prefix)

    @staticmethod
    def serve(static_file, request):
        response = WhiteNoiseMiddleware.serve(static_file, request)
        if response.streaming and isinstance(request, ASGIRequest):
            # The file stays registered for closing with the response (FileResponse's resource closers).
            response.streaming_content = _read_async(iter(response.streaming_content))
        return response
