"""Cursor pagination for every list route (ARCHITECTURE §3.7).

``GET …?limit=50&cursor=…`` → ``{"items": [...], "nextCursor": "…" | null, "hasMore": bool}``.

How it works
------------
* **Keyset (seek), never OFFSET.** The view declares a total ordering, e.g.
  ``("-created_at", "-id")`` (directions may be mixed; the last field must be unique). The
  cursor carries the last row's values of those fields and the next page is
  ``WHERE (a < x) OR (a = x AND b > y) …`` plus a redundant ``a <= x`` bound, so an index on
  the ordering columns starts scanning at the cursor: page 10 000 costs what page 1 costs.
  ``limit + 1`` rows are fetched to know ``hasMore`` without a COUNT.
* **Snapshot.** The first page pins a snapshot — the database clock for a datetime
  ``snapshot_field`` (default ``created_at``), else the current ``MAX`` of a monotonically
  increasing column — and every page of the walk keeps only rows with
  ``snapshot_field <= snapshot``. Rows inserted after page 1 therefore never appear in, or
  shift, later pages.

  The window this leaves: ``created_at`` defaults to ``now()``, the *start* of the inserting
  transaction. A transaction that started before the snapshot but commits after it writes a
  row that passes the filter; if that row sorts after the current position it shows up on a
  later page (if it sorts before, the walk simply never sees it). Transactions are short
  (milliseconds), so in practice this concerns rows being committed while page 1 is read.
* **Opaque, signed cursors.** Compact JSON, URL-safe base64, HMAC-signed with ``SECRET_KEY``
  (``django.core.signing``; ``SECRET_KEY_FALLBACKS`` keep old cursors valid during a key
  rotation). The cursor is bound to its scope — route path, ordering, the other query
  parameters (filters) and the caller's airline — so a tampered, truncated, garbage or
  foreign cursor is a 400 problem on the ``cursor`` field, never a 500 and never another
  tenant's rows. Values are decoded with each model field's ``to_python``.

Use
---
::

    class AuditList(NexaAPIView):
        @extend_schema_paginated(AuditEntrySerializer, parameters=[...filters...])
        def get(self, request):
            queryset = audit_entries(principal=request.auth, ...)
            return paginate(request, queryset, ordering=("-created_at", "-id"),
                            serialize=row_serializer(AuditEntrySerializer))

:class:`CursorPaginator` gives the :class:`Page` without rendering, for composition routes.
"""

import base64
import hashlib
import json
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core import signing
from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured, ValidationError
from django.db import connections, models
from django.db.models import Max, Q, QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from nexa.platform.problems import validation_problem

LIMIT_PARAM = "limit"
CURSOR_PARAM = "cursor"
_CURSOR_VERSION = 1
_SIGNER_SALT = "nexa.platform.pagination.cursor"
_DIGITS = re.compile(r"[0-9]{1,9}")


def _signer() -> signing.Signer:
    # "." is outside the URL-safe base64 alphabet, so the cursor needs no percent-encoding.
    return signing.Signer(salt=_SIGNER_SALT, sep=".", algorithm="sha256")


def _cursor_error(message: str):
    return validation_problem([{"field": CURSOR_PARAM, "message": message}])


_BAD_CURSOR = "The cursor is invalid or has been altered; start again without a cursor."


# --- ordering ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Key:
    field: models.Field
    descending: bool

    @property
    def column(self) -> str:
        return self.field.attname

    @property
    def order_by(self) -> str:
        return ("-" if self.descending else "") + self.column


def _resolve_field(model: type[models.Model], name: str) -> models.Field:
    if name == "pk":
        return model._meta.pk
    try:
        field = model._meta.get_field(name)
    except FieldDoesNotExist:
        raise ImproperlyConfigured(f"pagination: {model.__name__} has no field {name!r}") from None
    if not getattr(field, "concrete", False) or field.many_to_many or field.one_to_many:
        raise ImproperlyConfigured(f"pagination: {model.__name__}.{name} is not a column")
    return field


def _resolve_ordering(queryset: QuerySet, ordering: Sequence[str] | None) -> tuple[_Key, ...]:
    model = queryset.model
    if ordering is None:
        ordering = tuple(queryset.query.order_by) or (
            tuple(model._meta.ordering) if queryset.query.default_ordering else ()
        )
    if not ordering:
        raise ImproperlyConfigured("pagination: declare an ordering, e.g. ('-created_at', '-id')")
    keys: list[_Key] = []
    for item in ordering:
        if not isinstance(item, str) or item.startswith("?") or "__" in item:
            raise ImproperlyConfigured(f"pagination: ordering entries must be field names, got {item!r}")
        descending = item.startswith("-")
        field = _resolve_field(model, item.lstrip("-+"))
        if field.null:
            raise ImproperlyConfigured(f"pagination: {model.__name__}.{field.name} is nullable; keysets need NOT NULL")
        if any(key.field is field for key in keys):
            raise ImproperlyConfigured(f"pagination: {field.name} appears twice in the ordering")
        keys.append(_Key(field=field, descending=descending))
    last = keys[-1].field
    if not (last.primary_key or last.unique):
        raise ImproperlyConfigured(
            f"pagination: the ordering must end with a unique field (add the primary key after {last.name!r})"
        )
    return tuple(keys)


def _seek(keys: Sequence[_Key], values: Sequence[Any]) -> Q:
    """Rows strictly after ``values`` in the ordering ``keys``."""
    after: Q | None = None
    for index, key in enumerate(keys):
        term = Q(**{f"{key.column}__{'lt' if key.descending else 'gt'}": values[index]})
        for previous, value in zip(keys[:index], values[:index], strict=True):
            term &= Q(**{previous.column: value})
        after = term if after is None else after | term
    # Redundant with the OR above, but a plain range on the leading column is what lets the
    # index scan start at the cursor instead of filtering from the first row.
    first = keys[0]
    bound = Q(**{f"{first.column}__{'lte' if first.descending else 'gte'}": values[0]})
    return bound & after


# --- cursor encoding -------------------------------------------------------------------------------


def _dump(value: Any) -> Any:
    if isinstance(value, datetime | date | time):
        return value.isoformat()  # full microseconds (DjangoJSONEncoder would cut them)
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise ImproperlyConfigured(f"pagination: cannot put a {type(value).__name__} into a cursor")


def _load(field: models.Field, raw: Any) -> Any:
    if not isinstance(raw, str | int | float | bool):
        raise ValueError("bad cursor value")
    value = field.to_python(raw)
    if isinstance(value, datetime) and value.tzinfo is None:
        raise ValueError("naive datetime in cursor")
    return value


def _row_value(row: Any, key: _Key) -> Any:
    if isinstance(row, dict):  # .values() querysets
        return row[key.column] if key.column in row else row[key.field.name]
    return getattr(row, key.column)


def _scope_digest(request, keys: Sequence[_Key], snapshot_field: str | None, scope: str | None) -> str:
    params = _query_params(request)
    filters = sorted(
        (name, value) for name in params for value in params.getlist(name) if name not in (LIMIT_PARAM, CURSOR_PARAM)
    )
    principal = getattr(request, "auth", None)
    material = json.dumps(
        {
            "scope": scope if scope is not None else request.path,
            "ordering": [key.order_by for key in keys],
            "snapshot": snapshot_field,
            "filters": filters,
            "airline": getattr(principal, "airline", None),
        },
        separators=(",", ":"),
        sort_keys=True,
    )
    return base64.urlsafe_b64encode(hashlib.sha256(material.encode()).digest()[:12]).decode()


@dataclass(frozen=True, slots=True)
class _Position:
    values: tuple[Any, ...]
    snapshot: Any


def _encode_cursor(*, scope: str, values: Sequence[Any], snapshot: Any) -> str:
    payload = {"v": _CURSOR_VERSION, "s": scope, "k": [_dump(v) for v in values], "t": _dump(snapshot)}
    return _signer().sign_object(payload)


def _decode_cursor(raw: str, *, scope: str, keys: Sequence[_Key], snapshot_field: models.Field | None) -> _Position:
    if not raw:
        raise _cursor_error("The cursor is empty; omit the parameter to start at the first page.")
    if len(raw) > 2048:
        raise _cursor_error(_BAD_CURSOR)
    try:
        payload = _signer().unsign_object(raw)
    except (signing.BadSignature, ValueError, TypeError):
        raise _cursor_error(_BAD_CURSOR) from None
    if not isinstance(payload, dict) or payload.get("v") != _CURSOR_VERSION:
        raise _cursor_error(_BAD_CURSOR)
    if payload.get("s") != scope:
        raise _cursor_error(
            "The cursor belongs to another listing (route, ordering, filters or airline); "
            "repeat the query parameters it was issued with, or start again without a cursor."
        )
    raw_values, raw_snapshot = payload.get("k"), payload.get("t")
    if not isinstance(raw_values, list) or len(raw_values) != len(keys):
        raise _cursor_error(_BAD_CURSOR)
    try:
        values = tuple(_load(key.field, value) for key, value in zip(keys, raw_values, strict=True))
        snapshot = None
        if snapshot_field is not None and raw_snapshot is not None:
            snapshot = _load(snapshot_field, raw_snapshot)
    except (ValidationError, ValueError, TypeError):
        raise _cursor_error(_BAD_CURSOR) from None
    return _Position(values=values, snapshot=snapshot)


# --- paging ----------------------------------------------------------------------------------------


def _query_params(request):
    return getattr(request, "query_params", None) or request.GET


def parse_limit(request, *, default: int | None = None, maximum: int | None = None) -> int:
    """``?limit=``: an integer in 1..maximum (default ``NEXA_PAGE_SIZE_DEFAULT``); else a 400."""
    default = default if default is not None else settings.NEXA_PAGE_SIZE_DEFAULT
    maximum = maximum if maximum is not None else settings.NEXA_PAGE_SIZE_MAX
    raw = _query_params(request).get(LIMIT_PARAM)
    if raw is None:
        return default
    if not _DIGITS.fullmatch(raw) or not 1 <= int(raw) <= maximum:
        raise validation_problem([{"field": LIMIT_PARAM, "message": f"must be an integer from 1 to {maximum}"}])
    return int(raw)


@dataclass(frozen=True, slots=True)
class Page[T]:
    items: list[T]
    next_cursor: str | None
    has_more: bool

    def body(self, serialize: Callable[[T], Any]) -> dict[str, Any]:
        return {
            "items": [serialize(item) for item in self.items],
            "nextCursor": self.next_cursor,
            "hasMore": self.has_more,
        }


class CursorPaginator:
    """Keyset pagination with snapshot-pinned, signed cursors. One instance per route is fine
    (it holds configuration only).

    ``ordering``: field names with ``-`` for descending, ending with a unique field; ``None``
    takes the queryset's ``order_by`` (or the model's ``Meta.ordering``).
    ``snapshot_field``: a datetime column set to the database clock on insert (rows newer than
    the first page are hidden from the walk), or a monotonically increasing integer column;
    ``None`` for no snapshot. ``scope``: what the cursor is bound to besides ordering, filters
    and airline (default: the request path).
    """

    def __init__(
        self,
        *,
        ordering: Sequence[str] | None = None,
        snapshot_field: str | None = "created_at",
        scope: str | None = None,
        default_limit: int | None = None,
        max_limit: int | None = None,
    ):
        self.ordering = tuple(ordering) if ordering is not None else None
        self.snapshot_field = snapshot_field
        self.scope = scope
        self.default_limit = default_limit
        self.max_limit = max_limit

    def _take_snapshot(self, queryset: QuerySet, field: models.Field) -> Any:
        if isinstance(field, models.DateTimeField):
            with connections[queryset.db].cursor() as cursor:
                cursor.execute("SELECT clock_timestamp()")
                return cursor.fetchone()[0]
        return queryset.order_by().aggregate(snapshot=Max(field.attname))["snapshot"]

    def paginate_queryset[M](self, request, queryset: QuerySet[M]) -> Page[M]:
        if queryset.query.is_sliced:
            raise ImproperlyConfigured("pagination: pass an unsliced queryset")
        limit = parse_limit(request, default=self.default_limit, maximum=self.max_limit)
        keys = _resolve_ordering(queryset, self.ordering)
        snapshot_field = _resolve_field(queryset.model, self.snapshot_field) if self.snapshot_field else None
        scope = _scope_digest(request, keys, self.snapshot_field, self.scope)

        raw_cursor = _query_params(request).get(CURSOR_PARAM)
        if raw_cursor is None:
            position = None
            snapshot = self._take_snapshot(queryset, snapshot_field) if snapshot_field is not None else None
        else:
            position = _decode_cursor(raw_cursor, scope=scope, keys=keys, snapshot_field=snapshot_field)
            snapshot = position.snapshot

        queryset = queryset.order_by(*(key.order_by for key in keys))
        if snapshot_field is not None:
            if snapshot is None:  # nothing existed when the walk began (integer snapshot of an empty set)
                queryset = queryset.none()
            else:
                queryset = queryset.filter(**{f"{snapshot_field.attname}__lte": snapshot})
        if position is not None:
            queryset = queryset.filter(_seek(keys, position.values))

        rows = list(queryset[: limit + 1])
        has_more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = None
        if has_more:
            last = rows[-1]
            next_cursor = _encode_cursor(scope=scope, values=[_row_value(last, key) for key in keys], snapshot=snapshot)
        return Page(items=rows, next_cursor=next_cursor, has_more=has_more)


def row_serializer(serializer_class: type, **kwargs: Any) -> Callable[[Any], Any]:
    """``serialize`` for :func:`paginate` that builds the serializer's fields once per page: a DRF
    serializer made per row deep-copies every declared field each time, which was ~80 % of the CPU of a
    300-row manifest page (docs/benchmarks.md). For serializers that read only the row (no ``instance``)."""
    return serializer_class(**kwargs).to_representation


def paginate[M](
    request,
    queryset: QuerySet[M],
    *,
    serialize: Callable[[M], Any],
    ordering: Sequence[str] | None = None,
    snapshot_field: str | None = "created_at",
    scope: str | None = None,
) -> Response:
    """One page of ``queryset`` as ``{items, nextCursor, hasMore}`` (see the module docstring).
    Bad ``limit``/``cursor`` raise a 400 validation problem naming the field."""
    paginator = CursorPaginator(ordering=ordering, snapshot_field=snapshot_field, scope=scope)
    return Response(paginator.paginate_queryset(request, queryset).body(serialize))


# --- OpenAPI -------------------------------------------------------------------------------------

LIMIT_PARAMETER = OpenApiParameter(
    name=LIMIT_PARAM,
    type={"type": "integer", "minimum": 1, "maximum": settings.NEXA_PAGE_SIZE_MAX},
    location=OpenApiParameter.QUERY,
    required=False,
    description="Page size, 1 to 200 (default 50).",
)
CURSOR_PARAMETER = OpenApiParameter(
    name=CURSOR_PARAM,
    type=OpenApiTypes.STR,
    location=OpenApiParameter.QUERY,
    required=False,
    description=(
        "Opaque cursor from the previous page's nextCursor; omit for the first page. Repeat the same "
        "filters with it. The walk is pinned to a snapshot: rows created after the first page do not appear."
    ),
)
PAGINATION_PARAMETERS = [LIMIT_PARAMETER, CURSOR_PARAMETER]

_envelopes: dict[type, type[serializers.Serializer]] = {}


def paginated_serializer(item: type[serializers.BaseSerializer] | serializers.BaseSerializer) -> type:
    """The ``{items: [item], nextCursor, hasMore}`` envelope for ``item`` (cached, so each item
    serializer yields one named component ``Paginated<Item>List``)."""
    item_class = item if isinstance(item, type) else type(item)
    if item_class not in _envelopes:
        base = item_class.__name__.removesuffix("Serializer")
        name = f"Paginated{base}List"
        _envelopes[item_class] = type(
            f"{name}Serializer",
            (serializers.Serializer,),
            {
                "items": item_class(many=True),
                "nextCursor": serializers.CharField(
                    allow_null=True, help_text="Pass as ?cursor= for the next page; null on the last page."
                ),
                "hasMore": serializers.BooleanField(),
                "Meta": type("Meta", (), {"ref_name": name}),
                "__module__": __name__,
            },
        )
    return _envelopes[item_class]


def extend_schema_paginated(item, *, parameters: Sequence[OpenApiParameter] = (), **kwargs):
    """``@extend_schema`` for a paginated list route: limit/cursor parameters plus the view's
    own, and the envelope as the 200 response."""
    return extend_schema(
        parameters=[*PAGINATION_PARAMETERS, *parameters], responses={200: paginated_serializer(item)}, **kwargs
    )
