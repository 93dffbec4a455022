"""The audit log as CSV (``GET /v1/audit/export.csv``), written with :mod:`csv`.

* **Counted first.** The export is pinned to the database clock at the start (rows committed
  later are not part of it), counted, and refused with a 422 problem when more rows match than
  ``NEXA_AUDIT_EXPORT_MAX_ROWS``: the caller narrows ``from``/``to`` instead of receiving a
  truncated file that looks complete.
* **Streamed in keyset batches.** Rows are read newest first in batches of
  :data:`BATCH_SIZE` (``WHERE (created_at, id) < last``), each batch its own short query, so no
  transaction or server-side cursor stays open while a slow client downloads. Under ASGI the
  batches are fetched through ``sync_to_async`` and the response body is an async iterator
  (Django would otherwise read a synchronous iterator to the end before sending a byte).
* **Safe to open in a spreadsheet.** A cell starting with ``= + - @``, tab or carriage return
  is prefixed with an apostrophe, so Excel/LibreOffice/Sheets show it as text instead of
  evaluating it (CSV/formula injection, OWASP).
"""

import csv
import io
import json
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connections
from django.db.models import Q, QuerySet

from audit.models import AuditEntry
from nexa.platform.problems import Problem
from nexa.platform.renderers import neutralise_formula

COLUMNS = (
    "created_at",
    "action",
    "actor",
    "entity_urn",
    "case_urn",
    "reason",
    "correlation_urn",
    "before_json",
    "after_json",
)
BATCH_SIZE = 2000


def _json_cell(value) -> str:
    if value is None:
        return ""
    return json.dumps(value, cls=DjangoJSONEncoder, sort_keys=True, ensure_ascii=False)


def entry_row(entry: AuditEntry) -> list[str]:
    cells = [
        entry.created_at.isoformat(),
        entry.action,
        entry.actor,
        entry.entity_urn,
        entry.case_urn or "",
        entry.reason,
        entry.correlation_urn,
        _json_cell(entry.before),
        _json_cell(entry.after),
    ]
    return [neutralise_formula(cell) for cell in cells]


def _render(rows: Sequence[Sequence[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue()


@dataclass(frozen=True)
class AuditExport:
    """A counted export, ready to stream."""

    queryset: QuerySet[AuditEntry]
    snapshot: datetime
    row_count: int

    def filename(self, airline: str) -> str:
        return f"audit-{airline}-{self.snapshot.astimezone(UTC):%Y%m%dT%H%M%SZ}.csv"

    def _batch(self, after: AuditEntry | None) -> list[AuditEntry]:
        queryset = self.queryset
        if after is not None:
            queryset = queryset.filter(
                Q(created_at__lt=after.created_at) | Q(created_at=after.created_at, id__lt=after.id),
                created_at__lte=after.created_at,
            )
        return list(queryset.order_by("-created_at", "-id")[:BATCH_SIZE])

    def chunks(self) -> Iterator[str]:
        """The CSV text: the header, then one chunk per batch (synchronous servers)."""
        yield _render([COLUMNS])
        last = None
        while batch := self._batch(last):
            yield _render([entry_row(entry) for entry in batch])
            last = batch[-1]

    async def achunks(self) -> AsyncIterator[str]:
        """The same chunks for ASGI servers; each batch is read in Django's sync thread."""
        yield _render([COLUMNS])
        last = None
        fetch = sync_to_async(self._batch, thread_sensitive=True)
        while batch := await fetch(last):
            yield _render([entry_row(entry) for entry in batch])
            last = batch[-1]


def _database_now(queryset: QuerySet) -> datetime:
    with connections[queryset.db].cursor() as cursor:
        cursor.execute("SELECT clock_timestamp()")
        return cursor.fetchone()[0]


def audit_export_prepare(queryset: QuerySet[AuditEntry], *, max_rows: int | None = None) -> AuditExport:
    """Pin ``queryset`` (already tenant-scoped and filtered) to now, count it and refuse an
    export above ``max_rows`` (default ``NEXA_AUDIT_EXPORT_MAX_ROWS``) with a 422 problem."""
    max_rows = settings.NEXA_AUDIT_EXPORT_MAX_ROWS if max_rows is None else max_rows
    snapshot = _database_now(queryset)
    pinned = queryset.filter(created_at__lte=snapshot)
    # Count at most one row past the cap: enough to refuse, without counting millions.
    row_count = pinned.order_by()[: max_rows + 1].count()
    if row_count > max_rows:
        raise Problem(
            status=422,
            slug="export-too-large",
            title="Too many rows to export",
            detail=(
                f"More than {max_rows} audit rows match; narrow the range with 'from' and 'to' "
                "(or filter by 'actor' or 'action') and export it in parts."
            ),
            extensions={
                "maxRows": max_rows,
                "errors": [
                    {"field": "from", "message": f"Narrow the range to at most {max_rows} rows."},
                    {"field": "to", "message": f"Narrow the range to at most {max_rows} rows."},
                ],
            },
        )
    return AuditExport(queryset=pinned, snapshot=snapshot, row_count=row_count)
