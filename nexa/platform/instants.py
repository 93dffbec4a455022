"""Instants from the wire, ready for the database."""

import datetime as dt


def as_utc(value: dt.datetime) -> dt.datetime:
    """An aware datetime in UTC. RFC 3339 allows offsets up to ±23:59 and PostgreSQL only ±15:59, so
    instants are handed to the database in UTC; one past the datetime range is clamped to its end."""
    try:
        return value.astimezone(dt.UTC)
    except OverflowError:
        return dt.datetime.min.replace(tzinfo=dt.UTC) if value.year == 1 else dt.datetime.max.replace(tzinfo=dt.UTC)
