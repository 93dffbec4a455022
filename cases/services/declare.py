"""Declaring a disruption (a case), optionally with its manifest."""

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import IntegrityError, transaction

from audit import services as audit
from booking.selectors import airport_get
from cases.entitlements import regulation_for
from cases.manifest import normalise_flight_number, validate_rows
from cases.models import Case, CaseStatus, Cause
from cases.services._common import _case_status_refresh
from cases.services.manifest import _insert_subcases, _record_manifest_append
from nexa.platform.auth import Principal
from nexa.platform.problems import Problem, conflict_problem, validation_problem

DUPLICATE_CASE_CONSTRAINT = "case_one_open_per_flight"

NOTE_MAX_LENGTH = 4000
# A declared departure may sit one day either side of the flight date: flight dates are local,
# clients often send UTC, and an overnight departure crosses midnight.
DEPARTURE_DATE_TOLERANCE = dt.timedelta(days=1)


def _duplicate_case(existing: Case) -> Problem:
    return conflict_problem(
        slug="duplicate-case",
        title="An open case already exists for this flight",
        detail=(
            f"{existing.flight_number} on {existing.flight_date} at {existing.airport} already has an open case "
            f"({existing.urn}); add passengers to it instead."
        ),
        existingCaseUrn=existing.urn,
    )


def catalog_country(iata: str) -> str | None:
    airport = airport_get(iata=iata)
    return airport.country if airport else None


# --- cases ---------------------------------------------------------------------------------------------


def _destination_errors(*, airport_code: str, destination: str) -> tuple[list[dict[str, str]], str]:
    """The optional final destination (the entitlements' distance band): a catalog IATA code other than
    the disrupted airport; returns (errors, normalised code or "")."""
    code = destination.strip().upper() if isinstance(destination, str) else ""
    if not code:
        return [], ""
    if len(code) != 3 or airport_get(iata=code) is None:
        return [{"field": "destination", "message": f"{destination!r} is not an IATA code in the airport catalog"}], ""
    if code == airport_code:
        return [{"field": "destination", "message": "must differ from the disrupted airport"}], ""
    return [], code


def _declaration_errors(
    *, airport: str, flight_number: str, flight_date: dt.date, scheduled_departure: dt.datetime, cause: str, note: str
) -> tuple[list[dict[str, str]], str, str | None]:
    """Validate a declaration; returns (errors, normalised airport, normalised flight number)."""
    errors: list[dict[str, str]] = []
    airport_code = airport.strip().upper() if isinstance(airport, str) else ""
    catalog_airport = airport_get(iata=airport_code) if len(airport_code) == 3 else None
    if catalog_airport is None:
        errors.append({"field": "airport", "message": f"{airport!r} is not an IATA code in the airport catalog"})
    number = normalise_flight_number(flight_number)
    if number is None:
        errors.append({"field": "flightNumber", "message": "must be a flight number such as IB3166"})
    if cause not in Cause.values:
        errors.append({"field": "cause", "message": f"must be one of {', '.join(Cause.values)}"})
    if not isinstance(flight_date, dt.date) or isinstance(flight_date, dt.datetime):
        errors.append({"field": "flightDate", "message": "must be a date (YYYY-MM-DD)"})
    if not isinstance(scheduled_departure, dt.datetime) or scheduled_departure.tzinfo is None:
        errors.append({"field": "scheduledDeparture", "message": "must be a date-time with a UTC offset"})
    elif catalog_airport is not None and isinstance(flight_date, dt.date):
        local = scheduled_departure.astimezone(ZoneInfo(catalog_airport.time_zone))
        if abs(dt.datetime.combine(local.date(), dt.time()) - dt.datetime.combine(flight_date, dt.time())) > (
            DEPARTURE_DATE_TOLERANCE
        ):
            errors.append(
                {
                    "field": "scheduledDeparture",
                    "message": f"is {local.date()} local time at {catalog_airport.iata}, "
                    f"more than a day from flightDate {flight_date}",
                }
            )
    if len(note) > NOTE_MAX_LENGTH:
        errors.append({"field": "note", "message": f"at most {NOTE_MAX_LENGTH} characters"})
    return errors, airport_code, number


def case_declare(
    *,
    principal: Principal,
    airport: str,
    flight_number: str,
    flight_date: dt.date,
    scheduled_departure: dt.datetime,
    cause: str,
    note: str = "",
    passengers: Sequence[Mapping[str, Any]] = (),
    destination: str = "",
) -> Case:
    """Declare a disruption, optionally with its manifest. Invalid input is a 400 problem naming
    every bad field (``passengers[3].email`` …); a second open case for the same flight, date and
    airport is a 409 problem carrying ``existingCaseUrn``.

    The disrupted airport is the flight's origin; ``destination`` (optional) gives the entitlements their
    distance band, and the regulation is fixed from the origin's country (cases/entitlements.py)."""
    errors, airport_code, number = _declaration_errors(
        airport=airport,
        flight_number=flight_number,
        flight_date=flight_date,
        scheduled_departure=scheduled_departure,
        cause=cause,
        note=note,
    )
    destination_errors, destination_code = _destination_errors(airport_code=airport_code, destination=destination)
    errors.extend(destination_errors)
    validation = validate_rows(list(passengers), field_prefix="passengers")
    errors.extend(validation.errors)
    if errors:
        raise validation_problem(errors)

    with transaction.atomic():
        duplicate_of = Case.objects.filter(
            airline=principal.airline, flight_number=number, flight_date=flight_date, airport=airport_code
        ).exclude(status=CaseStatus.CLOSED)
        existing = duplicate_of.first()
        if existing is not None:
            raise _duplicate_case(existing)
        case = Case(
            airline=principal.airline,
            airport=airport_code,
            flight_number=number,
            flight_date=flight_date,
            scheduled_departure=scheduled_departure,
            cause=cause,
            note=note,
            declared_by=principal.operator_urn,
            origin=airport_code,
            destination=destination_code,
            regulation=regulation_for(origin_country=catalog_country(airport_code)),
            retention_until=flight_date + dt.timedelta(days=settings.NEXA_PASSENGER_DATA_RETENTION_DAYS),
        )
        try:
            with transaction.atomic():
                case.save(force_insert=True)
        except IntegrityError as error:
            # Lost the race against a concurrent declaration of the same flight.
            existing = duplicate_of.first() if DUPLICATE_CASE_CONSTRAINT in str(error) else None
            if existing is None:
                raise
            raise _duplicate_case(existing) from None
        audit.record(
            principal=principal,
            action="case.declared",
            entity_urn=case.urn,
            case_urn=case.urn,
            after={
                "airport": case.airport,
                "flightNumber": case.flight_number,
                "flightDate": case.flight_date.isoformat(),
                "scheduledDeparture": case.scheduled_departure.isoformat(),
                "cause": case.cause,
                "origin": case.origin,
                "destination": case.destination,
                "regulation": case.regulation,
                "status": case.status,
                "retentionUntil": case.retention_until.isoformat(),
            },
        )
        if validation.rows:
            _insert_subcases(case=case, rows=validation.rows)
            _record_manifest_append(principal=principal, case=case, added=len(validation.rows), skipped=0)
        _case_status_refresh(principal=principal, case=case)
    return case
