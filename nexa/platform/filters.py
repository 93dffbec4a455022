"""The one filter base for list routes (issue 10): every list route's query string is parsed by a
:class:`QueryFilters` serializer, so a bad value is a 400 problem naming the parameter and the
view receives typed values. ``limit`` and ``cursor`` are the paginator's (``nexa.platform.pagination``).

Time ranges mean the same on every route (:class:`InstantRangeFilters`): the range is
**half-open, ``[from, to)``** — ``from`` inclusive, ``to`` exclusive, so consecutive ranges never
overlap and never leave a gap. Each bound is a date or a date-time with a UTC offset:

* a date-time is an instant (``2026-11-22T21:40:00+01:00``, ``…Z``); a ``+`` sent unencoded arrives
  as a space and is read as ``+``; one without an offset is ambiguous and a 400;
* a date ``D`` is the UTC day ``[D 00:00Z, D+1 00:00Z)``: ``from=D`` starts at its first instant and
  ``to=D`` ends after its last, so ``from=2026-11-22&to=2026-11-22`` is that whole day
  (``to=9999-12-31`` has no end: no upper bound);
* values are normalised to UTC (PostgreSQL takes offsets up to ±15:59 only); an instant outside
  the representable range is a 400 "Out of range.";
* ``to`` before ``from`` is a 400 naming ``to``; an empty value (``?from=``) is absent.
"""

import datetime as dt
import re
from typing import Any

from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers
from rest_framework.fields import empty

from nexa.platform.inputs import DATETIME_MAX_LENGTH, strict_int_or_none
from nexa.platform.openapi import DATE_OR_DATE_TIME_SCHEMA, EMPTY_IS_ABSENT
from nexa.platform.urns import InvalidUrn, parse_urn

# "…T10:00:00 01:00": an unencoded "+" in a query string arrives as a space.
_OFFSET_SENT_AS_SPACE = re.compile(r" (\d{2}(:?\d{2})?)$")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class QueryField(serializers.Field):
    """A query parameter: absent unless sent (``empty_is_absent``: also when sent empty), then
    ``to_internal_value`` sees the raw string. Absent is ``None`` in the parsed values."""

    def __init__(self, *, empty_is_absent: bool = False, **kwargs):
        self.empty_is_absent = empty_is_absent
        kwargs.setdefault("required", False)
        if not kwargs["required"]:
            kwargs.setdefault("default", None)
        super().__init__(**kwargs)

    def get_value(self, dictionary):
        value = dictionary.get(self.field_name, empty)
        if value == "" and self.empty_is_absent:
            return empty
        return value

    def to_representation(self, value):  # pragma: no cover - filters are input only
        return value


class ChoiceFilter(QueryField):
    default_error_messages = {"invalid_choice": "must be one of {choices}"}

    def __init__(self, choices, **kwargs):
        self.choices = tuple(choices)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if data not in self.choices:
            self.fail("invalid_choice", choices=", ".join(self.choices))
        return data


class TextFilter(QueryField):
    """Surrounding whitespace stripped, then 1 to ``max_length`` characters."""

    default_error_messages = {"length": "Give 1 to {max_length} characters."}

    def __init__(self, *, max_length: int, **kwargs):
        self.max_length = max_length
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        value = str(data).strip()
        if not value or len(value) > self.max_length:
            self.fail("length", max_length=self.max_length)
        return value


class UrnFilter(QueryField):
    """A ``urn:nexa:<kind>:…`` query parameter (a malformed one is a 400 naming it)."""

    def __init__(self, kind: str, **kwargs):
        self.kind = kind
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        try:
            parse_urn(data, self.kind)
        except InvalidUrn as error:
            raise serializers.ValidationError(error.message) from None
        return data


class IntegerFilter(QueryField):
    """ASCII digits within ``minimum..maximum`` ("²" and 10**5000 are refused, never a 500)."""

    default_error_messages = {"invalid": "An integer from {minimum} to {maximum}."}

    def __init__(self, *, minimum: int, maximum: int, **kwargs):
        self.minimum, self.maximum = minimum, maximum
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        number = strict_int_or_none(data, minimum=self.minimum, maximum=self.maximum)
        if number is None:
            self.fail("invalid", minimum=self.minimum, maximum=self.maximum)
        return number


class InstantBoundField(QueryField):
    """``from`` (``end=False``) or ``to`` (``end=True``) of a half-open range; see the module
    docstring. Returns an aware UTC datetime, or ``None`` for ``to=9999-12-31`` (no bound)."""

    default_error_messages = {
        "invalid": "must be a date (2026-11-22) or a date-time with a UTC offset (2026-11-22T18:30:00Z)",
        "naive": "Include a UTC offset, e.g. 2026-11-22T18:30:00+01:00 or …Z.",
        "out_of_range": "Out of range.",
    }

    def __init__(self, *, end: bool, **kwargs):
        self.end = end
        kwargs.setdefault("empty_is_absent", True)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str) or len(data) > DATETIME_MAX_LENGTH:
            self.fail("invalid")
        text = _OFFSET_SENT_AS_SPACE.sub(r"+\1", data.strip())
        if _DATE.fullmatch(text):
            return self._day_bound(text)
        try:
            parsed = parse_datetime(text)
        except ValueError:  # well-formed but impossible: 12:99, month 13
            parsed = None
        if parsed is None:
            self.fail("invalid")
        if parsed.tzinfo is None:
            self.fail("naive")
        try:
            return parsed.astimezone(dt.UTC)
        except (OverflowError, ValueError):
            self.fail("out_of_range")

    def _day_bound(self, text: str) -> dt.datetime | None:
        try:
            day = dt.date.fromisoformat(text)
        except ValueError:
            self.fail("invalid")
        if self.end:
            if day == dt.date.max:
                return None  # the whole of 9999-12-31: no upper bound
            day += dt.timedelta(days=1)
        return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


class QueryFilters(serializers.Serializer):
    """Base of every list route's query serializer. ``parse(request)`` → the typed values (absent
    filters are ``None``), or a 400 validation problem listing each bad parameter."""

    @classmethod
    def parse(cls, request, **context: Any) -> dict[str, Any]:
        params = getattr(request, "query_params", None) or request.GET
        serializer = cls(data=params, context={"request": request, **context})
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)

    def to_representation(self, instance):  # pragma: no cover - filters are input only
        raise NotImplementedError("query filters parse input; they render nothing")


class InstantRangeFilters(QueryFilters):
    """``from``/``to``, half-open ``[from, to)``: the one meaning of a time range on every route.
    Parsed values are under ``from`` and ``to``."""

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = InstantBoundField(end=False)
        fields["to"] = InstantBoundField(end=True)
        return fields

    def validate(self, attrs):
        start, end = attrs.get("from"), attrs.get("to")
        if start is not None and end is not None and end < start:
            raise serializers.ValidationError({"to": "must not be before from"})
        return attrs


def instant_range_parameters(what: str) -> list[OpenApiParameter]:
    """The OpenAPI parameters of :class:`InstantRangeFilters`, worded alike on every route;
    ``what`` is the instant the range bounds ("Scheduled departure", "Recorded")."""
    return [
        OpenApiParameter(
            "from",
            DATE_OR_DATE_TIME_SCHEMA,
            description=(
                f"{what} at or after this instant: a date-time with a UTC offset, or a date (from its first "
                "instant, UTC)."
            ),
            extensions=EMPTY_IS_ABSENT,
        ),
        OpenApiParameter(
            "to",
            DATE_OR_DATE_TIME_SCHEMA,
            description=(
                f"{what} before this instant (exclusive: the range is [from, to)); a date covers that whole UTC "
                "day. Not before from."
            ),
            extensions=EMPTY_IS_ABSENT,
        ),
    ]
