"""Print a development API token: ``manage.py issue_token --airline IB --role OPS_SUPERVISOR
--operator urn:nexa:user:opsA [--ttl 3600]``. Refuses when a real OIDC provider is configured, and
always with ``NEXA_ENV=production``."""

from django.core.management.base import BaseCommand, CommandError

from nexa.platform.auth import dev_issuer_enabled, issue_token
from nexa.platform.roles import Role


class Command(BaseCommand):
    help = "Mint a bearer token from the development issuer (disabled when OIDC_ISSUER is set)."

    def add_arguments(self, parser):
        parser.add_argument("--airline", required=True, help="IATA airline code, e.g. IB")
        parser.add_argument("--role", required=True, choices=[role.value for role in Role])
        parser.add_argument("--operator", required=True, help="operator URN, e.g. urn:nexa:user:opsA")
        parser.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds (default 3600)")

    def handle(self, *args, airline, role, operator, ttl, **options):
        if not dev_issuer_enabled():
            raise CommandError(
                "The development issuer is disabled (NEXA_ENV=production, or a real OIDC provider is configured)."
            )
        airline = airline.upper()
        if not (2 <= len(airline) <= 3 and airline.isalnum()):
            raise CommandError(f"{airline!r} is not an IATA airline code.")
        if ttl <= 0:
            raise CommandError("--ttl must be positive.")
        if not operator.strip():
            raise CommandError("--operator must not be empty.")
        self.stdout.write(issue_token(airline=airline, role=role, operator_urn=operator, ttl_seconds=ttl))
