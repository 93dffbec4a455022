"""Instants onto the wire: :func:`iso`, the one way a datetime is rendered (UTC, `Z`)."""

import datetime as dt
from typing import overload


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
