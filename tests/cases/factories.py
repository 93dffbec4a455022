"""factory_boy factories for the cases domain, and helpers that build request bodies."""

import datetime as dt

import factory

from cases.models import Case, Cause, PassengerGroup, SubCase, Tier

FLIGHT_DATE = dt.date(2026, 11, 22)

# Compensation items (POST /v1/subcases/{urn}/compensate), shared by the saga and compensate tests.
MEAL = {"type": "MEAL", "amount": "25.00", "currency": "EUR"}
CASH = {"type": "CASH", "amount": "250.00", "currency": "EUR", "regulation": "EU261"}
TRANSPORT = {
    "type": "TRANSPORT",
    "provider": "UBER",
    "pickup": {"lat": 40.4719, "lng": -3.5626, "address": "MAD T4"},
    "dropoff": {"lat": 40.4168, "lng": -3.7038, "address": "Hotel Centro"},
}


class CaseFactory(factory.django.DjangoModelFactory):
    """A case at MAD; each gets its own flight number so the one-open-case rule never bites."""

    class Meta:
        model = Case

    airline = "IB"
    airport = "MAD"
    flight_number = factory.Sequence(lambda n: f"IB{1000 + n}")
    flight_date = FLIGHT_DATE
    scheduled_departure = factory.LazyAttribute(
        lambda case: dt.datetime.combine(case.flight_date, dt.time(20, 30), tzinfo=dt.UTC)
    )
    cause = Cause.CANCELLATION
    declared_by = "urn:nexa:user:ib-ops"
    retention_until = factory.LazyAttribute(lambda case: case.flight_date + dt.timedelta(days=90))


class PassengerGroupFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PassengerGroup

    case = factory.SubFactory(CaseFactory)
    airline = factory.SelfAttribute("case.airline")
    label = factory.Sequence(lambda n: f"GRP-{n + 1}")


class SubCaseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SubCase

    case = factory.SubFactory(CaseFactory)
    airline = factory.SelfAttribute("case.airline")
    first_name = factory.Sequence(lambda n: f"Ana{n}")
    last_name = "Garcia"
    pnr = factory.Sequence(lambda n: f"P{n:05d}"[-6:])
    tier = Tier.ECONOMY
    email = factory.LazyAttribute(lambda s: f"{s.first_name.lower()}@example.com")
    phone = "+34600123456"


def passenger_row(index: int = 0, **overrides) -> dict:
    """A valid manifest row (wire names)."""
    row = {
        "firstName": f"Luis{index}",
        "lastName": "Martin",
        "pnr": f"R{index:05d}"[-6:],
        "tier": "ECONOMY",
        "email": f"luis{index}@example.com",
        "phone": "+34 600 123 456",
    }
    row.update(overrides)
    return {key: value for key, value in row.items() if value is not None}


def declaration(**overrides) -> dict:
    """A valid POST /v1/cases body."""
    body = {
        "airport": "MAD",
        "flightNumber": "IB3166",
        "flightDate": "2026-11-22",
        "scheduledDeparture": "2026-11-22T21:40:00+01:00",
        "cause": "CANCELLATION",
        "note": "Storm over the bay",
    }
    body.update(overrides)
    return {key: value for key, value in body.items() if value is not None}
