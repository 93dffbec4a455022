"""Load the demo data ``make run`` relies on: ``manage.py seed_demo``. Idempotent.

Two airlines (IB, LH), their tenant settings, and two operators per role per airline, each
with a Django user for the console login (password ``nexa-demo``; supervisors and admins are
staff so Django admin works, within their airline and role: nobody is a superuser — a superuser is
made only by ``createsuperuser`` — and every user joins their role's admin group through
``sync_role_permissions``). Then two realistic open disruptions, declared by each airline's
seeded supervisor through the cases services (data and flow in ``_demo.py`` next to this
command): IB3190 cancelled at MAD with 180 passengers and LH1190 delayed overnight at FRA with 300,
their passengers grouped. A re-run — on any day — reuses the open demo cases and
adds nothing twice.
"""

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from booking import services as booking_services
from nexa.platform.auth import Principal, is_production
from nexa.platform.models import TenantSettings
from nexa.platform.roles import Role
from operators.management.commands._demo import demo_disruptions_ensure
from operators.models import Operator
from policies.services import demo_policies_seed

AIRLINES = {"IB": "Iberia", "LH": "Lufthansa"}
OPERATORS_PER_ROLE = 2
DEMO_PASSWORD = "nexa-demo"
STAFF_ROLES = {Role.ADMIN, Role.OPS_SUPERVISOR}


def demo_username(airline: str, role: Role, number: int = 1) -> str:
    """``ib-ops-supervisor``, ``ib-ops-supervisor-2``, …"""
    base = f"{airline.lower()}-{role.value.lower().replace('_', '-')}"
    return base if number == 1 else f"{base}-{number}"


def demo_operator_urn(airline: str, role: Role, number: int = 1) -> str:
    return f"urn:nexa:user:{demo_username(airline, role, number)}"


def demo_supervisor(airline: str) -> Principal:
    """The seeded ``<airline>-ops-supervisor``, who declares the airline's demo disruptions."""
    operator = demo_operator_urn(airline, Role.OPS_SUPERVISOR)
    return Principal(airline=airline, role=Role.OPS_SUPERVISOR, operator_urn=operator, subject=operator)


def _admin(airline: str) -> Principal:
    """The seeded ``<airline>-admin``, who activates the airline's demo policies (activation is ADMIN-only)."""
    operator = demo_operator_urn(airline, Role.ADMIN)
    return Principal(airline=airline, role=Role.ADMIN, operator_urn=operator, subject=operator)


class Command(BaseCommand):
    help = "Create or refresh the demo airlines, tenant settings, operators and their console users."

    def handle(self, *args, **options):
        if is_production():
            # Demo users have a published password: never in a production database.
            raise CommandError("seed_demo refuses to run with NEXA_ENV=production (demo users, published password).")
        self._seed()

    @transaction.atomic
    def _seed(self):
        user_model = get_user_model()
        created = 0
        for airline, airline_name in AIRLINES.items():
            # The demo shows the exception agent at work: its recommendations on every new review item.
            TenantSettings.objects.get_or_create(airline=airline, defaults={"agent_enabled": True})
            booking_services.hotels_seed_demo(
                airline=airline
            )  # the hotel catalog around the demo airports (booking/hotels.py)
            for role in Role:
                for number in range(1, OPERATORS_PER_ROLE + 1):
                    username = demo_username(airline, role, number)
                    label = role.value.replace("_", " ").title()
                    display_name = f"{airline_name} {label}" + (f" {number}" if number > 1 else "")
                    user, _ = user_model.objects.update_or_create(
                        username=username,
                        defaults={
                            "first_name": airline_name,
                            "last_name": label + (f" {number}" if number > 1 else ""),
                            "is_staff": role in STAFF_ROLES,
                            # A superuser crosses every airline: only ``createsuperuser`` makes one.
                            "is_superuser": False,
                            "is_active": True,
                        },
                    )
                    if not user.check_password(DEMO_PASSWORD):
                        user.set_password(DEMO_PASSWORD)
                        user.save(update_fields=["password"])
                    _, was_created = Operator.objects.update_or_create(
                        airline=airline,
                        operator_urn=demo_operator_urn(airline, role, number),
                        defaults={
                            "role": role.value,
                            "display_name": display_name,
                            "user": user,
                            "active": True,
                        },
                    )
                    created += was_created
        total = Operator.objects.filter(airline__in=AIRLINES).count()
        self.stdout.write(f"Demo data ready: airlines {', '.join(AIRLINES)}; {total} operators ({created} new).")
        call_command("sync_role_permissions", stdout=self.stdout)
        for result in demo_disruptions_ensure(principal_for=demo_supervisor):
            self.stdout.write(f"  {result.summary()}")
        for line in demo_policies_seed(principal_for=_admin):
            self.stdout.write(f"  {line}")
        for line in booking_services.demo_contracts_seed(
            principal_for=demo_supervisor, hotel_urns_for=booking_services.catalog_hotel_urns
        ):
            self.stdout.write(f"  {line}")
