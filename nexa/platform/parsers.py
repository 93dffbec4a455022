"""Strict JSON parsing: oversized, non-UTF-8 and malformed bodies are clear problems, never 500s.

Beyond RFC 8259 syntax, a body is refused (400 ``malformed-body`` with ``errors: [{field, message}]``)
when it holds something no route accepts and that would otherwise fail deep inside the stack:

* nesting deeper than ``MAX_JSON_DEPTH`` (a body nested 100 000 levels overflows Python's recursion
  limit while decoding, and anything deeper than a few levels is no request of ours);
* ``NaN``, ``Infinity`` or ``-Infinity`` (not JSON, though Python's decoder accepts them; PostgreSQL's
  ``jsonb`` refuses them), and numbers a double cannot hold (``1e400`` decodes to infinity);
* integers longer than ``MAX_INTEGER_DIGITS`` digits (Python refuses to convert more than 4 300);
* strings or keys holding U+0000 or a lone surrogate (PostgreSQL refuses NUL in ``text`` and ``jsonb``,
  and a lone surrogate cannot be encoded as UTF-8).

The body size limit (413) is checked before any of this.
"""

import json
import math
import re

from django.conf import settings
from rest_framework.parsers import JSONParser

from nexa.platform.problems import Problem

MAX_JSON_DEPTH = 64
# 2**64 has 20 digits; nothing we accept needs more. Longer literals are refused before int() runs.
MAX_INTEGER_DIGITS = 20


class _Refused(ValueError):
    """A decode hook refused a literal (``field`` unknown at that point: the body)."""


def _refuse_constant(name: str):
    raise _Refused(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Refused(f"the number {text[:40]} is out of range")
    return value


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise _Refused(f"an integer of {len(text.lstrip('-'))} digits is out of range")
    return int(text)


_decoder = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite_float, parse_int=_bounded_int)


def _malformed(detail: str, errors: list[dict[str, str]] | None = None) -> Problem:
    return Problem(
        status=400,
        slug="malformed-body",
        title="Malformed request body",
        detail=detail,
        extensions={"errors": errors or [{"field": "body", "message": detail}]},
    )


_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_A_BRACKET = re.compile(r"[^\[\]{}]+")


def _max_depth_exceeded(text: str, limit: int) -> bool:
    """Nesting of ``[``/``{`` outside strings deeper than ``limit``, without recursion: strings and then
    everything but brackets are dropped by regular expressions (C speed), and only the brackets left
    are walked. Only called when the text holds more than ``limit`` brackets at all."""
    depth = 0
    for char in _NOT_A_BRACKET.sub("", _JSON_STRING.sub("", text)):
        if char in "[{":
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def _path(parent: str, key) -> str:
    if isinstance(key, int):
        return f"{parent}[{key}]"
    return f"{parent}.{key}" if parent else str(key)


# What PostgreSQL cannot store in text or jsonb: NUL, and lone UTF-16 surrogates (not Unicode scalar
# values, so not encodable as UTF-8). Both can only arrive as \u escapes (raw, they are invalid JSON or
# invalid UTF-8), which is what the cheap pre-checks look for.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_ESCAPED_UNSTORABLE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")
_UNSTORABLE_MESSAGE = "must not contain NUL (U+0000) or a lone surrogate (U+D800 to U+DFFF)"


def _printable_key(key: str) -> str:
    return _UNSTORABLE.sub(lambda match: f"\\u{ord(match.group()):04x}", key)


def _unstorable_fields(value, limit: int = 20) -> list[str]:
    """Dotted paths (``pickup.address``, ``items[2].reason``) of strings or keys holding a character
    PostgreSQL refuses (:data:`_UNSTORABLE`)."""
    found: list[str] = []
    stack = [("", value)]
    while stack and len(found) < limit:
        path, node = stack.pop()
        if isinstance(node, str):
            if _UNSTORABLE.search(node):
                found.append(path or "body")
        elif isinstance(node, dict):
            for key, child in node.items():
                if _UNSTORABLE.search(key):
                    found.append(_path(path, _printable_key(key)))
                else:
                    stack.append((_path(path, key), child))
        elif isinstance(node, list):
            stack.extend((_path(path, index), child) for index, child in enumerate(node))
    return sorted(found)


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
        # Cheap first (C-speed counts), then the scan only for bodies with that many brackets at all.
        if text.count("[") + text.count("{") > MAX_JSON_DEPTH and _max_depth_exceeded(text, MAX_JSON_DEPTH):
            raise _malformed(f"The body is nested deeper than {MAX_JSON_DEPTH} levels.")
        try:
            data = _decoder.decode(text)
        except json.JSONDecodeError as error:
            raise Problem(
                status=400,
                slug="malformed-body",
                title="Malformed request body",
                detail=f"The body is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}.",
            ) from None
        except _Refused as error:
            raise _malformed(f"The body is not valid JSON: {error}.") from None
        except RecursionError:  # belt and braces: the depth scan above refuses these first
            raise _malformed(f"The body is nested deeper than {MAX_JSON_DEPTH} levels.") from None
        if _ESCAPED_UNSTORABLE.search(text):
            fields = _unstorable_fields(data)
            if fields:
                raise _malformed(
                    "Strings must not contain NUL (U+0000) or lone surrogates (U+D800 to U+DFFF).",
                    [{"field": field, "message": _UNSTORABLE_MESSAGE} for field in fields],
                )
        return data
