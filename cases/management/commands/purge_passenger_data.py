"""``manage.py purge_passenger_data [--dry-run]``: anonymise the passengers of closed cases past
their retention date (``retention_until``; see ``NEXA_PASSENGER_DATA_RETENTION_DAYS``).

Safe to run on a schedule: already anonymised passengers are left alone, so a rerun changes
nothing. Each case is purged in its own transaction and audited.
"""

import sys

from django.core.management.base import BaseCommand
from django.db.models import Count, Q
from django.utils import timezone
from tqdm import tqdm

from cases import services
from cases.models import Case, CaseStatus
from nexa.platform.auth import Principal
from nexa.platform.roles import Role

ACTOR = "urn:nexa:system:purge-passenger-data"


class Command(BaseCommand):
    help = "Anonymise passengers of CLOSED cases whose retention date has passed."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="report what would be anonymised; write nothing")

    def handle(self, *args, dry_run: bool, **options):
        today = timezone.localdate()
        due = list(
            Case.objects.filter(status=CaseStatus.CLOSED, retention_until__lt=today)
            .annotate(pending=Count("subcases", filter=Q(subcases__anonymised_at__isnull=True)))
            .filter(pending__gt=0)
            .order_by("retention_until", "id")
        )
        passengers = sum(case.pending for case in due)
        if dry_run:
            self.stdout.write(f"Dry run — {passengers} passenger(s) in {len(due)} case(s) would be anonymised.")
            return
        anonymised = 0
        for case in tqdm(due, unit="case", disable=None, file=sys.stderr):
            principal = Principal(airline=case.airline, role=Role.ADMIN, operator_urn=ACTOR, subject=ACTOR)
            anonymised += services.case_passenger_data_purge(principal=principal, case=case, today=today)
        self.stdout.write(self.style.SUCCESS(f"Anonymised {anonymised} passenger(s) in {len(due)} case(s)."))
