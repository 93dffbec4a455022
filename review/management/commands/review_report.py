"""``manage.py review_report --week 2026-W48 [--airline IB] [--format json|csv] [--output FILE]``: the weekly
ops report of manual review, the same as ``GET /v1/manual-review/reports/weekly`` (review/reports.py).

With ``--airline``, that airline's report (the route's JSON object, or its CSV). Without it, one report per
airline that has items created in the week: JSON as an array of those objects, CSV as one table (the
``airline`` column tells them apart). Written to stdout, or to ``--output`` (the file is replaced only when the
report is complete). A progress bar on stderr counts the items read. Read-only: safe to re-run.
"""

import json
import os
import sys
import tempfile
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from nexa.platform.auth import Principal
from nexa.platform.renderers import csv_text
from nexa.platform.roles import Role
from review import reports, selectors

ACTOR = "urn:nexa:system:review-report"


class Command(BaseCommand):
    help = "Write the weekly manual-review report (JSON or CSV) for an ISO week (UTC), like the API's."

    def add_arguments(self, parser):
        parser.add_argument("--week", required=True, help="ISO week, e.g. 2026-W48 (items created in it, UTC)")
        parser.add_argument("--airline", help="only this airline (IATA code, e.g. IB); default: every airline")
        parser.add_argument("--format", choices=("json", "csv"), default="json", dest="output_format")
        parser.add_argument("--output", help="write to FILE instead of stdout")

    def handle(self, *args, week, airline=None, output_format="json", output=None, **options):
        try:
            iso_week = reports.parse_iso_week(week)
        except ValueError as error:
            raise CommandError(f"--week: {error}") from None
        if airline is not None:
            airline = airline.strip().upper()
            if len(airline) not in (2, 3) or not airline.isalnum():
                raise CommandError(f"--airline: {airline!r} is not an airline code (e.g. IB)")
            airlines = [airline]
        else:
            airlines = reports.weekly_airlines(week=iso_week)
        target = Path(output) if output else None
        if target is not None and not target.parent.is_dir():
            raise CommandError(f"--output: no directory {target.parent}")

        total = sum(reports.weekly_item_count(airline=code, week=iso_week) for code in airlines)
        made = []
        with tqdm(total=total, unit="item", file=sys.stderr, desc=iso_week.label) as bar:
            for code in airlines:
                principal = Principal(airline=code, role=Role.ADMIN, operator_urn=ACTOR, subject=ACTOR)
                made.append(selectors.review_weekly_report(principal=principal, week=week, progress=bar.update))
        text = self._render(made, output_format, single=airline is not None)
        if target is None:
            self.stdout.write(text, ending="")
        else:
            self._write(target, text)
            self.stderr.write(
                f"{iso_week.label}: {total} item(s) of {len(made)} airline(s) written to {target} ({output_format})."
            )

    @staticmethod
    def _render(made: list[dict], output_format: str, *, single: bool) -> str:
        if output_format == "csv":
            rows = [list(reports.CSV_COLUMNS)]
            for report in made:
                rows += reports.report_csv_rows(report, header=False)
            return csv_text(rows)
        return json.dumps(made[0] if single else made, indent=2, ensure_ascii=False) + "\n"

    @staticmethod
    def _write(target: Path, text: str) -> None:
        """Through a temporary file in the same directory, renamed over the target: never a half report."""
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(handle, "w", encoding="utf-8", newline="") as file:
                file.write(text)
            os.replace(temporary, target)
        except OSError as error:
            Path(temporary).unlink(missing_ok=True)
            raise CommandError(f"--output: cannot write {target}: {error}") from None
