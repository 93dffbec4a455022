"""Strict parsing of untrusted values shared by every route (ARCHITECTURE §3.5: bad input is a 400
problem naming the field, never a 500).

The traps these close:

* ``django.utils.dateparse.parse_datetime`` *raises* ``ValueError`` for a well-formed but impossible
  value (``2024-01-01T12:99:00Z``, month 13), and an aware datetime near year 1 or 9999 cannot be
  converted to UTC (``OverflowError``);
* ``str.isdigit()`` is true for ``²`` (which ``int()`` refuses) and for ``٣`` (which ``int()`` takes), and
  a number past 64 bits does not fit a PostgreSQL ``bigint``: integers from headers and query
  strings are ASCII digits within the column's range.
"""

import datetime as dt
import re

from django.utils.dateparse import parse_datetime
from rest_framework import serializers

from nexa.platform.problems import validation_problem

PG_INTEGER_MAX = 2**31 - 1  # PostgreSQL integer (Django IntegerField, PositiveIntegerField)
PG_BIGINT_MAX = 2**63 - 1  # PostgreSQL bigint (BigIntegerField)
DATETIME_MAX_LENGTH = 64
_ASCII_DIGITS = re.compile(r"[0-9]{1,19}")


def parse_aware_datetime(value: object) -> dt.datetime | None:
    """An ISO 8601 date-time with a UTC offset → an aware datetime in UTC. ``None`` for anything else:
    not a string, malformed, impossible (``12:99``), without an offset, or not representable in UTC."""
    if not isinstance(value, str) or len(value) > DATETIME_MAX_LENGTH:
        return None
    try:
        parsed = parse_datetime(value.strip())
    except ValueError:
        return None
    if parsed is None or parsed.tzinfo is None:
        return None
    try:
        return parsed.astimezone(dt.UTC)
    except (OverflowError, ValueError):
        return None


def is_naive_datetime(value: object) -> bool:
    """A well-formed, possible date-time that lacks its UTC offset (for a precise message)."""
    if not isinstance(value, str) or len(value) > DATETIME_MAX_LENGTH:
        return False
    try:
        parsed = parse_datetime(value.strip())
    except ValueError:
        return False
    return parsed is not None and parsed.tzinfo is None


def strict_int_or_none(raw: object, *, minimum: int = 0, maximum: int = PG_BIGINT_MAX) -> int | None:
    """``raw`` as an integer in ``minimum..maximum`` when it is 1 to 19 ASCII digits (surrounding spaces
    and tabs allowed), else ``None``. Never raises."""
    if not isinstance(raw, str):
        return None
    value = raw.strip(" \t")
    if not _ASCII_DIGITS.fullmatch(value):
        return None
    number = int(value)
    return number if minimum <= number <= maximum else None


def parse_strict_int(raw: str, *, field: str, minimum: int = 1, maximum: int = PG_BIGINT_MAX) -> int:
    """``raw`` (a header or query value) as an integer in ``minimum..maximum``: ASCII digits only
    (surrounding spaces allowed), else a 400 problem naming ``field``."""
    number = strict_int_or_none(raw, minimum=minimum, maximum=maximum)
    if number is None:
        raise validation_problem(
            [{"field": field, "message": f"must be an integer from {minimum} to {maximum} in ASCII digits"}]
        )
    return number


def int_header(request, name: str, *, minimum: int = 1, maximum: int = PG_BIGINT_MAX) -> int | None:
    """The integer header ``name`` (``None`` when absent), parsed by :func:`parse_strict_int`."""
    raw = request.headers.get(name)
    if raw is None:
        return None
    return parse_strict_int(raw, field=name, minimum=minimum, maximum=maximum)


class AwareDateTimeField(serializers.DateTimeField):
    """An ISO 8601 date-time that must carry a UTC offset (a local time without one is ambiguous);
    impossible or out-of-range values are a validation error, never an exception. Returns UTC."""

    default_error_messages = {
        **serializers.DateTimeField.default_error_messages,
        "naive": "Include a UTC offset, e.g. 2026-11-22T21:40:00+01:00 or …Z.",
        "not_a_datetime": "Must be an ISO 8601 date-time with a UTC offset, e.g. 2026-11-22T21:40:00+01:00.",
    }

    def to_internal_value(self, value):
        if isinstance(value, dt.datetime):  # from Python callers only; JSON never gives one
            return super().to_internal_value(value)
        parsed = parse_aware_datetime(value)
        if parsed is None:
            self.fail("naive" if is_naive_datetime(value) else "not_a_datetime")
        return parsed
