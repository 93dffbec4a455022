"""Strict JSON parsing: oversized, non-UTF-8 and malformed bodies are clear problems, never 500s."""

import json
import re

from django.conf import settings
from rest_framework.parsers import JSONParser

from nexa.platform.problems import Problem

# JSON can carry U+0000 only as the escape \u0000 (a raw control character is invalid JSON); PostgreSQL
# text cannot store it, so a body holding one is refused here instead of failing at the INSERT (a 500).
# An even run of backslashes before it is escaped backslashes, not an escape.
_NUL_ESCAPE = re.compile(r"(?<!\\)(?:\\\\)*\\u0000", re.IGNORECASE)


class NexaJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read(limit + 1) if limit is not None else stream.read()
        if limit is not None and len(raw) > limit:
            raise Problem(
                status=413,
                slug="payload-too-large",
                title="Request body too large",
                detail=f"The request body is larger than {limit} bytes.",
            )
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise Problem(
                status=400,
                slug="malformed-body",
                title="Malformed request body",
                detail=f"The body is not valid UTF-8 (byte {error.start}).",
            ) from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise Problem(
                status=400,
                slug="malformed-body",
                title="Malformed request body",
                detail=f"The body is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}.",
            ) from None
        if _NUL_ESCAPE.search(text):
            raise Problem(
                status=400,
                slug="malformed-body",
                title="Malformed request body",
                detail="A string in the body holds U+0000 (NUL), which no field accepts.",
            )
        return data
