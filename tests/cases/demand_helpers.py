"""Builders shared by the demand wave tests (tests/cases/test_demand*.py)."""

import datetime as dt

from django.utils import timezone

from cases.models import DemandKind, DemandStatus, DemandWave, DemandWaveMember, SubCaseStatus
from nexa.platform.auth import Principal
from nexa.platform.roles import Role
from tests.cases.factories import CaseFactory, PassengerGroupFactory, SubCaseFactory


def principal(airline: str = "IB", role: Role = Role.AIRPORT_OPERATOR) -> Principal:
    operator = f"urn:nexa:user:{airline.lower()}-{str(role).lower()}"
    return Principal(airline=airline, role=role, operator_urn=operator, subject=operator)


def today() -> dt.date:
    return timezone.now().date()


def demand_body(**overrides) -> dict:
    body = {"kind": "INITIAL", "checkIn": today().isoformat(), "nights": 1, "reason": "IB3166 cancelled"}
    body.update(overrides)
    return {key: value for key, value in body.items() if value is not None}


def grouped_case(airline: str = "IB", sizes=(2,), **case_fields):
    """A case with one GROUPED group per entry of ``sizes``; returns (case, [group, …], [[sub_case, …], …])."""
    case = CaseFactory(airline=airline, **case_fields)
    groups, members = [], []
    for size in sizes:
        group = PassengerGroupFactory(case=case, airline=airline)
        groups.append(group)
        members.append(
            [SubCaseFactory(case=case, airline=airline, group=group, status=SubCaseStatus.GROUPED) for _ in range(size)]
        )
    return case, groups, members


def make_wave(case, sub_cases, *, kind=DemandKind.INITIAL, status=DemandStatus.PENDING_APPROVAL, ttl_minutes=30):
    """A wave written directly (not through the service), for tests of what reads and resolves it."""
    now = timezone.now()
    wave = DemandWave.objects.create(
        airline=case.airline,
        case=case,
        kind=kind,
        status=status,
        check_in=today(),
        nights=1,
        rooms=max(1, (len(sub_cases) + 1) // 2),
        people=len(sub_cases),
        reason="storm",
        requested_by=f"urn:nexa:user:{case.airline.lower()}-airport_operator",
        created_at=now,
        expires_at=now + dt.timedelta(minutes=ttl_minutes),
    )
    DemandWaveMember.objects.bulk_create(
        DemandWaveMember(airline=case.airline, wave=wave, sub_case=s, group_id=s.group_id) for s in sub_cases
    )
    return wave


def lapse(wave) -> None:
    """Move the wave past its TTL (time travel by data, never by sleeping)."""
    DemandWave.objects.filter(pk=wave.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
