"""``manage.py sync_role_permissions [--dry-run]``: one Django group per operator role with the admin
permissions that role has through the API, and every user in exactly their active operator's role
group (operators/permissions.py). Idempotent: a second run changes nothing and says so. Run it after
``migrate`` (seed_demo runs it; changing an operator's role in admin keeps that user in line)."""

from django.core.management.base import BaseCommand, CommandError

from operators.permissions import MissingPermissions, role_permissions_sync


class Command(BaseCommand):
    help = "Create/refresh the per-role Django groups and put each operator's user in their role's group."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Print what would change; change nothing.")

    def handle(self, *args, dry_run: bool = False, **options):
        try:
            report = role_permissions_sync(dry_run=dry_run)
        except MissingPermissions as error:
            raise CommandError(str(error)) from error
        prefix = "would " if dry_run else ""
        for change in report.changes:
            self.stdout.write(f"  {prefix}{change}")
        if report.changes:
            self.stdout.write(f"Role permissions: {len(report.changes)} change(s){' (dry run)' if dry_run else ''}.")
        else:
            self.stdout.write("Role permissions: already in line, nothing to change.")
