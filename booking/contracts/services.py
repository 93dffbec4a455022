"""Commands on contracts: create, and update into a new version. Each runs in one transaction, takes the
:class:`~nexa.platform.auth.Principal`, writes one audit row with before/after and publishes
``contract:changed`` through the outbox.

Overlap: two current contracts of one airline for one hotel must not share a night. The service checks it
first to name the contracts in the way (422 ``errors``), and the database enforces it whatever the race
(exclusion constraint :data:`~booking.contracts.models.NO_OVERLAP_CONSTRAINT`): the loser of two concurrent
writes waits for the winner's commit, then fails the constraint and gets the same 422.
"""

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.apps import apps
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from audit import services as audit
from booking.airports import airport_get
from booking.contracts import events
from booking.contracts.models import NO_OVERLAP_CONSTRAINT, Contract
from booking.models import Hotel
from nexa.platform.auth import Principal
from nexa.platform.problems import Problem, conflict_problem, not_found_problem, validation_problem
from nexa.platform.urns import InvalidUrn, parse_urn


@dataclass(frozen=True, slots=True)
class ContractTerms:
    """What a contract says (validated for shape by the API's serializer)."""

    hotel_urn: str
    airport: str
    valid_from: dt.date
    valid_to: dt.date
    allotment: int
    rate_amount: Decimal
    rate_currency: str
    release_hours: int
    meals_included: tuple[str, ...] = ()
    cancellation_terms: str = ""


def contract_snapshot(contract: Contract) -> dict[str, Any]:
    """The audited (and rendered) terms: no personal data, only the contract's terms."""
    return {
        "contractUrn": contract.urn,
        "version": contract.version,
        "hotelUrn": contract.hotel_urn,
        "airport": contract.airport,
        "validFrom": contract.valid_from.isoformat(),
        "validTo": contract.valid_to.isoformat(),
        "allotment": contract.allotment,
        "rate": {"amount": f"{contract.rate_amount:.2f}", "currency": contract.rate_currency},
        "releaseHours": contract.release_hours,
        "mealsIncluded": list(contract.meals_included),
        "cancellationTerms": contract.cancellation_terms,
    }


def _terms_errors(terms: ContractTerms) -> list[dict[str, str]]:

    errors = []
    try:
        parse_urn(terms.hotel_urn, "hotel")
    except InvalidUrn as error:
        errors.append({"field": "hotelUrn", "message": str(error)})
    if airport_get(iata=terms.airport) is None:
        errors.append({"field": "airport", "message": f"{terms.airport!r} is not an IATA airport code we know."})
    if terms.valid_to < terms.valid_from:
        errors.append({"field": "validTo", "message": "must not be before validFrom."})
    return errors


def _catalog_errors(*, airline: str, terms: ContractTerms) -> list[dict[str, str]]:
    """The hotel must be one of the airline's catalog hotels (``booking.Hotel``) and the contract's airport
    the hotel's. Another airline's hotel gets the same answer as an unknown one: its existence is not
    revealed. Called after :func:`_terms_errors` (the URN's shape is already checked)."""
    hotel = Hotel.objects.filter(airline=airline, id=parse_urn(terms.hotel_urn, "hotel").id).first()
    if hotel is None:
        return [{"field": "hotelUrn", "message": f"{terms.hotel_urn} is not a hotel of the airline's catalog."}]
    if hotel.airport != terms.airport:
        return [
            {
                "field": "airport",
                "message": f"must be the hotel's airport, {hotel.airport} (not {terms.airport}).",
            }
        ]
    return []


def _overlapping(*, airline: str, terms: ContractTerms, exclude_contract_id=None) -> list[Contract]:
    overlapping = Contract.objects.filter(
        airline=airline,
        hotel_urn=terms.hotel_urn,
        current=True,
        valid_from__lte=terms.valid_to,
        valid_to__gte=terms.valid_from,
    )
    if exclude_contract_id is not None:
        overlapping = overlapping.exclude(contract_id=exclude_contract_id)
    return list(overlapping.order_by("valid_from", "id"))


def _overlap_problem(overlapping: Sequence[Contract]) -> Problem:
    errors = [
        {
            "field": "validFrom",
            "message": (
                f"overlaps {other.urn} (version {other.version}, {other.valid_from.isoformat()} to "
                f"{other.valid_to.isoformat()}) for the same hotel."
            ),
        }
        for other in overlapping
    ] or [{"field": "validFrom", "message": "overlaps another current contract for the same hotel."}]
    return Problem(
        status=422,
        slug="contract-overlap",
        title="Another contract covers these nights at this hotel",
        detail=f"{len(errors)} current contract(s) for this hotel overlap validFrom..validTo.",
        extensions={"errors": errors},
    )


def _version_conflict(*, contract_urn: str, current_version: int, expected_version: int) -> Problem:
    return conflict_problem(
        slug="version-conflict",
        title="The contract changed since you read it",
        detail=(
            f"{contract_urn} is at version {current_version}, not {expected_version}; "
            "reload it and retry with the current version."
        ),
        version=current_version,
    )


_HOTEL_CONTRACTS_LOCK_SQL = "SELECT pg_advisory_xact_lock(hashtextextended(%s, 11))"


def _lock_hotel_contracts(*, airline: str, hotel_urn: str) -> None:
    """Serialise the writes of one hotel's contracts (until the transaction ends). Concurrent inserts that
    only the exclusion constraint orders wait on each other's uncommitted rows and, three at a time, can
    deadlock (seen in CI: a 500); queued here, each writer sees the others' committed rows in its overlap
    check, and the constraint stays the backstop."""
    with connection.cursor() as cursor:
        cursor.execute(_HOTEL_CONTRACTS_LOCK_SQL, [f"contracts|{airline}|{hotel_urn}"])


def _insert(contract: Contract, *, terms: ContractTerms) -> None:
    try:
        with transaction.atomic():
            contract.save(force_insert=True)
    except IntegrityError as error:
        if NO_OVERLAP_CONSTRAINT not in str(error):
            raise
        # Lost a race: a concurrent write committed an overlapping contract after our check.
        raise _overlap_problem(
            _overlapping(airline=contract.airline, terms=terms, exclude_contract_id=contract.contract_id)
        ) from None


def _new_row(*, principal: Principal, terms: ContractTerms, **identity) -> Contract:
    return Contract(
        airline=principal.airline,
        hotel_urn=terms.hotel_urn,
        airport=terms.airport,
        valid_from=terms.valid_from,
        valid_to=terms.valid_to,
        allotment=terms.allotment,
        rate_amount=terms.rate_amount,
        rate_currency=terms.rate_currency,
        release_hours=terms.release_hours,
        meals_included=list(terms.meals_included),
        cancellation_terms=terms.cancellation_terms,
        created_by=principal.operator_urn,
        **identity,
    )


def contract_create(*, principal: Principal, terms: ContractTerms) -> Contract:
    """A new contract at version 1. Bad references are a 400 naming the field; overlap with a current contract
    of the same hotel is a 422 ``contract-overlap`` naming each one in ``errors``. A hotel that is not in the
    airline's catalog is a 400 on ``hotelUrn``; an ``airport`` other than the hotel's a 400 on ``airport``."""
    errors = _terms_errors(terms) or _catalog_errors(airline=principal.airline, terms=terms)
    if errors:
        raise validation_problem(errors)
    with transaction.atomic():
        _lock_hotel_contracts(airline=principal.airline, hotel_urn=terms.hotel_urn)
        overlapping = _overlapping(airline=principal.airline, terms=terms)
        if overlapping:
            raise _overlap_problem(overlapping)
        contract = _new_row(principal=principal, terms=terms)
        _insert(contract, terms=terms)
        audit.record(
            principal=principal, action="contract.created", entity_urn=contract.urn, after=contract_snapshot(contract)
        )
        events.publish_contract_changed(contract=contract, change="created")
    return contract


def contract_update(
    *, principal: Principal, contract_urn: str, expected_version: int, terms: ContractTerms
) -> Contract:
    """Version ``expected_version + 1`` of the contract with ``terms``; earlier versions stay as they were.
    Another airline's or an unknown contract is a 404; a stale ``expected_version`` a 409 with the current
    ``version``; overlap as for :func:`contract_create` (the contract's own earlier versions do not count)."""
    urn = parse_urn(contract_urn, "contract")
    errors = _terms_errors(terms)
    if errors:
        raise validation_problem(errors)
    with transaction.atomic():
        current = (
            Contract.objects.select_for_update()
            .filter(airline=principal.airline, contract_id=urn.id, current=True)
            .first()
        )
        if current is None:
            # Either no such contract, or a concurrent update superseded the row we waited for.
            latest = Contract.objects.filter(airline=principal.airline, contract_id=urn.id, current=True).first()
            if latest is None:
                raise not_found_problem()
            raise _version_conflict(
                contract_urn=latest.urn, current_version=latest.version, expected_version=expected_version
            )
        if current.version != expected_version:
            raise _version_conflict(
                contract_urn=current.urn, current_version=current.version, expected_version=expected_version
            )
        # After the lookup: another airline's contract stays a 404 whatever hotel the body names.
        if errors := _catalog_errors(airline=principal.airline, terms=terms):
            raise validation_problem(errors)
        _lock_hotel_contracts(airline=principal.airline, hotel_urn=terms.hotel_urn)
        overlapping = _overlapping(airline=principal.airline, terms=terms, exclude_contract_id=current.contract_id)
        if overlapping:
            raise _overlap_problem(overlapping)
        before = contract_snapshot(current)
        Contract.objects.filter(pk=current.pk).update(current=False, superseded_at=timezone.now())
        contract = _new_row(
            principal=principal, terms=terms, contract_id=current.contract_id, version=current.version + 1
        )
        _insert(contract, terms=terms)
        audit.record(
            principal=principal,
            action="contract.updated",
            entity_urn=contract.urn,
            before=before,
            after=contract_snapshot(contract),
        )
        events.publish_contract_changed(contract=contract, change="updated")
    return contract


# --- demo data ------------------------------------------------------------------------------------------

# (airline, airport) → the terms every demo hotel there gets (seed_demo; docs/contracts.md).
DEMO_CONTRACT_AIRPORTS = {("IB", "MAD"): ("EUR", Decimal("89.00")), ("LH", "FRA"): ("EUR", Decimal("104.00"))}
DEMO_CONTRACT_HOTELS_PER_AIRPORT = 2


def demo_contracts_seed(
    *,
    principal_for: Callable[[str], Principal],
    hotel_urns_for: Callable[[str, str], Sequence[str]],
    today: dt.date | None = None,
) -> list[str]:
    """Contracts for the demo airports (IB at MAD, LH at FRA): one per hotel for the first
    :data:`DEMO_CONTRACT_HOTELS_PER_AIRPORT` of ``hotel_urns_for(airline, airport)``, valid from the start of
    this year to the end of next year. Idempotent: a hotel that already has a current contract of the airline
    is left alone. No hotels → no contracts. Returns a line per contract created."""
    today = today or timezone.localdate()
    lines = []
    for (airline, airport), (currency, rate) in DEMO_CONTRACT_AIRPORTS.items():
        principal = principal_for(airline)
        for index, hotel_urn in enumerate(list(hotel_urns_for(airline, airport))[:DEMO_CONTRACT_HOTELS_PER_AIRPORT]):
            if Contract.objects.filter(airline=airline, hotel_urn=hotel_urn, current=True).exists():
                continue
            terms = ContractTerms(
                hotel_urn=hotel_urn,
                airport=airport,
                valid_from=dt.date(today.year, 1, 1),
                valid_to=dt.date(today.year + 1, 12, 31),
                allotment=40 - 15 * index,
                rate_amount=rate + 10 * index,
                rate_currency=currency,
                release_hours=0 if index == 0 else 24,
                meals_included=("BREAKFAST",) if index == 0 else ("BREAKFAST", "DINNER"),
                cancellation_terms="Free cancellation until 18:00 local time on the day of arrival.",
            )
            contract = contract_create(principal=principal, terms=terms)
            lines.append(f"contract {contract.urn} for {hotel_urn} at {airport} ({airline})")
    return lines


def catalog_hotel_urns(airline: str, airport: str) -> list[str]:
    """URNs of the airline's catalog hotels at ``airport``, nearest first, when the hotel catalog model
    (``booking.Hotel``: airline, airport, urn, distance_km) is installed; none before it is."""

    try:
        hotel_model = apps.get_model("booking", "Hotel")
    except LookupError:
        return []
    fields = {field.name for field in hotel_model._meta.get_fields()}
    hotels = hotel_model.objects.filter(**({"airline": airline} if "airline" in fields else {}), airport=airport)
    if "distance_km" in fields:
        hotels = hotels.order_by("distance_km")
    return [hotel.urn for hotel in hotels[:DEMO_CONTRACT_HOTELS_PER_AIRPORT]]
