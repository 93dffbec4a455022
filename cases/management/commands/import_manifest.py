"""``manage.py import_manifest CASE_URN FILE [--dry-run]``: append a manifest file to a case.

The file is ``.json`` (a list of rows, or ``{"passengers": [...]}``) or ``.csv`` (header row with
the same field names); rows are validated exactly as ``POST /v1/cases/{urn}/manifest`` does. All
or nothing: one invalid row and nothing is imported. Passengers already on the manifest (same
PNR and name) are skipped, so re-running the same file adds nothing twice.
"""

import sys

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from cases import selectors, services
from cases.manifest import ManifestFileError, read_manifest_file, validate_rows
from cases.models import Case
from nexa.platform.auth import Principal
from nexa.platform.problems import Problem
from nexa.platform.roles import Role
from nexa.platform.urns import InvalidUrn, parse_urn

DEFAULT_ACTOR = "urn:nexa:system:import-manifest"
MAX_PRINTED_ERRORS = 50


class Command(BaseCommand):
    help = "Append the passengers of a CSV or JSON manifest file to a case (validated like the API)."

    def add_arguments(self, parser):
        parser.add_argument("case_urn", help="urn:nexa:case:<uuid>")
        parser.add_argument("file", help="a .csv or .json manifest")
        parser.add_argument("--dry-run", action="store_true", help="validate and report; write nothing")
        parser.add_argument(
            "--operator", default=DEFAULT_ACTOR, help=f"operator URN the audit log records (default {DEFAULT_ACTOR})"
        )

    def handle(self, *args, case_urn: str, file: str, dry_run: bool, operator: str, **options):
        try:
            case = Case.objects.get(pk=parse_urn(case_urn, "case").id)
        except InvalidUrn as error:
            raise CommandError(error.message) from None
        except Case.DoesNotExist:
            raise CommandError(f"no case {case_urn}") from None
        if not operator.startswith("urn:"):
            raise CommandError("--operator must be a URN")
        principal = Principal(airline=case.airline, role=Role.OPS_SUPERVISOR, operator_urn=operator, subject=operator)

        try:
            rows = read_manifest_file(file)
        except ManifestFileError as error:
            raise CommandError(str(error)) from None
        validation = validate_rows(
            rows, existing=selectors.case_passenger_identities(principal=principal, case=case), skip_existing=True
        )
        if not validation.valid:
            for error in validation.errors[:MAX_PRINTED_ERRORS]:
                self.stderr.write(f"  {error['field']}: {error['message']}")
            raise CommandError(f"{validation.error_count} problem(s) in {file}; nothing was imported.")

        summary = (
            f"{len(rows)} row(s) in {file}: {len(validation.rows)} new, {validation.skipped} already on the manifest"
        )
        if dry_run:
            self.stdout.write(f"Dry run — {summary}; nothing written.")
            return

        with tqdm(total=len(validation.rows), unit="passenger", disable=None, file=sys.stderr) as progress:
            try:
                created = services.manifest_append(
                    principal=principal, case=case, rows=rows, skip_existing=True, on_progress=progress.update
                )
            except Problem as problem:
                raise CommandError(problem.detail_text) from None
        self.stdout.write(self.style.SUCCESS(f"Imported {len(created)} passenger(s) into {case.urn} — {summary}."))
