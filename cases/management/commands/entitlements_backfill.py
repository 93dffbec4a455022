"""``manage.py entitlements_backfill [--airline XX] [--case URN | --since DATE] [--dry-run]``: compute every
sub-case's entitlements and store them as snapshots (``cases.Entitlement``, one per sub-case).

The route always answers the live computation; the snapshot is the record finance reconciles against and
what the route reports as ``snapshot`` (its time, and whether it still matches). Safe to re-run: the
snapshot is upserted per sub-case and an unchanged one is not rewritten, so a second run reports every
sub-case ``unchanged`` and writes nothing. An engineer's tool: it runs across airlines unless ``--airline``
narrows it; each sub-case is computed as a system principal of its own airline.
"""

import datetime as dt
import sys

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from tqdm import tqdm

from cases import selectors, services
from cases.models import Case, SubCase
from nexa.platform.auth import Principal
from nexa.platform.roles import Role
from nexa.platform.urns import InvalidUrn, parse_urn

ACTOR = "urn:nexa:system:entitlements-backfill"


class Command(BaseCommand):
    help = "Compute and store the entitlements of existing sub-cases (idempotent; --dry-run writes nothing)."

    def add_arguments(self, parser):
        parser.add_argument("--airline", help="only this airline's cases (IATA code, e.g. IB)")
        which = parser.add_mutually_exclusive_group()
        which.add_argument("--case", help="only this case (urn:nexa:case:…)")
        which.add_argument("--since", help="only cases whose flight date is on or after DATE (YYYY-MM-DD)")
        parser.add_argument("--dry-run", action="store_true", help="report what would change; write nothing")

    def handle(self, *args, airline=None, case=None, since=None, dry_run=False, **options):
        cases = Case.objects.all()
        if airline:
            cases = cases.filter(airline=airline.strip().upper())
        if case:
            try:
                cases = cases.filter(id=parse_urn(case, "case").id)
            except InvalidUrn as error:
                raise CommandError(f"--case: {error.message}") from None
            if not cases.exists():
                raise CommandError(f"--case: no case {case}" + (f" of airline {airline}" if airline else ""))
        if since:
            try:
                cases = cases.filter(flight_date__gte=dt.date.fromisoformat(since))
            except ValueError:
                raise CommandError(f"--since: {since!r} is not a date (YYYY-MM-DD)") from None
        sub_cases = (
            SubCase.objects.filter(case__in=cases.values("id"))
            .select_related("case")
            .order_by("case__created_at", "case_id", "created_at", "id")
        )
        counts = {"created": 0, "updated": 0, "unchanged": 0}
        total = sub_cases.count()
        for sub_case in tqdm(sub_cases.iterator(chunk_size=500), total=total, unit="passenger", file=sys.stderr):
            principal = Principal(airline=sub_case.airline, role=Role.ADMIN, operator_urn=ACTOR, subject=ACTOR)
            now = timezone.now()
            data = selectors.subcase_entitlements(principal=principal, sub_case=sub_case, now=now)
            outcome = services.entitlement_snapshot_store(
                principal=principal, sub_case=sub_case, data=data, computed_at=now, dry_run=dry_run
            )
            counts[outcome] += 1
        summary = ", ".join(f"{count} {outcome}" for outcome, count in counts.items())
        if dry_run:
            self.stdout.write(f"Dry run — {total} sub-case(s): {summary} (nothing written).")
        else:
            self.stdout.write(self.style.SUCCESS(f"{total} sub-case(s): {summary}."))
