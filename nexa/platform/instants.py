"""Instants from the wire, ready for the database, and back onto the wire (:func:`iso`)."""

import datetime as dt
from typing import overload


def as_utc(value: dt.datetime) -> dt.datetime:
    """An aware datetime in UTC. RFC 3339 allows offsets up to ±23:59 and PostgreSQL only ±15:59, so
    instants are handed to the database in UTC; one past the datetime range is clamped to its end."""
    try:
        return value.astimezone(dt.UTC)
    except OverflowError:
        return dt.datetime.min.replace(tzinfo=dt.UTC) if value.year == 1 else dt.datetime.max.replace(tzinfo=dt.UTC)


@overload
def iso(moment: dt.datetime) -> str: ...
@overload
def iso(moment: None) -> None: ...


def iso(moment: dt.datetime | None) -> str | None:
    """The one way an instant goes on the wire: ISO 8601 in UTC with a ``Z`` suffix
    (``2026-11-22T20:40:00Z``, microseconds when there are any); ``None`` stays ``None``. A naive
    datetime is a programming error (``ValueError``): its instant is unknown."""
    if moment is None:
        return None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("iso() needs an aware datetime")
    text = moment.astimezone(dt.UTC).isoformat()
    return text.removesuffix("+00:00") + "Z"
