"""Strict JSON parsing: oversized, non-UTF-8 and malformed bodies are clear problems, never 500s."""

import json

from django.conf import settings
from rest_framework.parsers import JSONParser

from nexa.platform.problems import Problem


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
            return json.loads(text)
        except json.JSONDecodeError as error:
            raise Problem(
                status=400,
                slug="malformed-body",
                title="Malformed request body",
                detail=f"The body is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}.",
            ) from None
