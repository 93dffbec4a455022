"""Builders for booking tests: the demo hotel catalog, vendor offers the hotel simulators accept (their
rate keys are deterministic), contract offers, and a PLANNED allocation in the shape of the stored plan
(docs/booking.md; the allocate part writes the same shape)."""

from __future__ import annotations

import datetime as dt
import time
from decimal import Decimal
from typing import Any

from django.utils import timezone

from booking.contracts.services import ContractTerms, contract_create
from booking.hotel_data import vendor_hotel_id
from booking.hotels import hotels_seed_demo
from booking.models import Hotel
from cases import saga
from cases.models import Allocation, AllocationStatus, DemandKind, DemandStatus, DemandWave, SubCaseStatus
from nexa.platform.auth import Principal
from nexa.platform.roles import Role
from tests.cases.factories import CaseFactory, SubCaseFactory

MAD_HOTELS = {"mad-melia-barajas": "Meliá Barajas", "mad-auditorium": "Hotel Auditorium Madrid",
              "mad-hilton-airport": "Hilton Madrid Airport"}  # fmt: skip


def supervisor(airline: str = "IB") -> Principal:
    return Principal(
        airline=airline,
        role=Role.OPS_SUPERVISOR,
        operator_urn=f"urn:nexa:user:{airline.lower()}-ops_supervisor",
        subject=f"{airline.lower()}-sup",
    )


def check_in_day() -> dt.date:
    return timezone.now().date() + dt.timedelta(days=1)


def hotel(airline: str, key: str) -> Hotel:
    hotels_seed_demo(airline=airline)
    return Hotel.objects.get(airline=airline, airport="MAD", name=MAD_HOTELS[key])


def vendor_offer(
    airline: str, key: str, *, vendor: str = "stayhub", check_in: dt.date, nights: int = 1, rooms: int = 1, rate="90.00"
) -> dict[str, Any]:
    """An offer id the hotel simulator holds (geo-post rate key: hotel|in|out|rooms|adults)."""
    out = check_in + dt.timedelta(days=nights)
    ref = f"{vendor_hotel_id(vendor, key)}|{check_in.isoformat()}|{out.isoformat()}|{rooms}|1"
    row = hotel(airline, key)
    return {
        "offerId": f"{vendor}~{ref}",
        "hotelUrn": row.urn,
        "hotelName": row.name,
        "source": "VENDOR",
        "vendor": vendor,
        "contractUrn": "",
        "nightlyRate": {"amount": str(rate), "currency": "EUR"},
    }


def contract_offer(airline: str, key: str, *, allotment: int = 5, rate="80.00", release_hours: int = 0):
    row = hotel(airline, key)
    contract = contract_create(
        principal=supervisor(airline),
        terms=ContractTerms(
            hotel_urn=row.urn,
            airport="MAD",
            valid_from=timezone.now().date() - dt.timedelta(days=1),
            valid_to=timezone.now().date() + dt.timedelta(days=30),
            allotment=allotment,
            rate_amount=Decimal(rate),
            rate_currency="EUR",
            release_hours=release_hours,
        ),
    )
    return contract, {
        "offerId": f"contract~{contract.urn}",
        "hotelUrn": row.urn,
        "hotelName": row.name,
        "source": "CONTRACT",
        "vendor": "",
        "contractUrn": contract.urn,
        "nightlyRate": {"amount": str(rate), "currency": "EUR"},
    }


def passengers(case, count: int, status: str = SubCaseStatus.ALLOCATED, **kw):
    return [SubCaseFactory(case=case, airline=case.airline, status=status, **kw) for _ in range(count)]


def allocation_for(case, groups: list[tuple[list, list[dict[str, Any]]]], *, check_in: dt.date, nights: int = 1):
    """A PLANNED allocation: per group (its sub-cases, its offers: primary first then alternatives), one
    room per passenger."""
    wave = DemandWave.objects.create(
        airline=case.airline,
        case=case,
        kind=DemandKind.INITIAL,
        status=DemandStatus.ALLOCATED,
        check_in=check_in,
        nights=nights,
        rooms=sum(len(members) for members, _ in groups),
        people=sum(len(members) for members, _ in groups),
        requested_by="urn:nexa:user:ib-ops",
        expires_at=timezone.now() + dt.timedelta(hours=1),
    )
    allocation = Allocation.objects.create(
        airline=case.airline, case=case, demand=wave, plan={}, created_by="urn:nexa:user:ib-ops_supervisor"
    )
    assignments = []
    for index, (members, offers) in enumerate(groups):
        primary, *alternatives = offers
        assignments.append(
            {
                "groupUrn": f"urn:nexa:group:00000000-0000-4000-8000-{index:012d}",
                "groupLabel": f"GRP-{index + 1}",
                **primary,
                "rooms": [{"occupants": [m.urn], "accessible": False, "escort": False} for m in members],
                "policyUrn": "",
                "reason": "test",
                "checkIn": check_in.isoformat(),
                "nights": nights,
                "alternatives": alternatives,
            }
        )
    allocation.plan = {
        "allocationUrn": allocation.urn,
        "demandUrn": f"urn:nexa:demand:{wave.pk}",
        "caseUrn": case.urn,
        "assignments": assignments,
        "unallocated": [],
        "partialFailures": [],
    }
    allocation.status = AllocationStatus.PLANNED
    allocation.save()
    return allocation


def new_case(airline: str = "IB"):
    return CaseFactory(airline=airline)


def drive(run, *, max_calls: int = 80):
    """Call the engine like the task does, honouring its waits, until it has nothing more to do."""
    for _ in range(max_calls):
        wait = saga.execute(run.pk)
        if wait is None:
            run.refresh_from_db()
            return run
        time.sleep(min(wait, 0.2))
    raise AssertionError(f"{run.urn} still wants to run after {max_calls} calls")
