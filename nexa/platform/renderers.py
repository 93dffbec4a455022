"""Renderers for routes that answer a body they build themselves (CSV export, HTML voucher): DRF's content
negotiation must accept their media type, and the view's body passes through untouched. Also the CSV cell
rule every CSV answer follows (:func:`neutralise_formula`)."""

import csv
import io
from collections.abc import Iterable, Sequence

from django.http import HttpResponse
from rest_framework.renderers import BaseRenderer

# A cell a spreadsheet would evaluate as a formula (CSV/formula injection, OWASP).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralise_formula(cell: str) -> str:
    """``=HYPERLINK(…)`` → ``'=HYPERLINK(…)``: shown as text by spreadsheets, never evaluated."""
    return "'" + cell if cell.startswith(FORMULA_PREFIXES) else cell


def csv_text(rows: Iterable[Sequence[object]]) -> str:
    """``rows`` as CSV text (``csv.writer``, CRLF line ends); every cell as text, formulas neutralised."""
    buffer = io.StringIO()
    csv.writer(buffer).writerows(
        [neutralise_formula("" if cell is None else str(cell)) for cell in row] for row in rows
    )
    return buffer.getvalue()


def passthrough_renderer(media_type: str, format_name: str) -> type[BaseRenderer]:
    """A renderer class that lets ``Accept: <media_type>`` through and returns the view's body as is."""

    class PassthroughRenderer(BaseRenderer):
        charset = "utf-8"

        def render(self, data, accepted_media_type=None, renderer_context=None):
            return data

    PassthroughRenderer.media_type = media_type
    PassthroughRenderer.format = format_name
    PassthroughRenderer.__name__ = PassthroughRenderer.__qualname__ = f"{format_name.upper()}Renderer"
    return PassthroughRenderer


def private_html_response(html: str) -> HttpResponse:
    """An HTML page that names passengers (a voucher): never kept by a shared cache, never indexed, and a
    passenger link's token never leaves in a Referer (the page links to a maps site). The API's voucher
    routes and the console's voucher page answer through it."""
    response = HttpResponse(html, content_type="text/html; charset=utf-8")
    response["Cache-Control"] = "private, no-store"
    response["Referrer-Policy"] = "no-referrer"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response
