"""Selectors other apps use: tenant-scoped always, and the dashboard's cases section."""

import datetime as dt

import pytest

from cases import selectors
from nexa.platform.auth import Principal
from nexa.platform.problems import Problem
from nexa.platform.roles import Role
from tests.cases.factories import CaseFactory, SubCaseFactory

pytestmark = pytest.mark.django_db

IB = Principal(airline="IB", role=Role.AIRPORT_OPERATOR, operator_urn="urn:nexa:user:ib", subject="ib")


def test_case_get_is_tenant_scoped():
    mine, theirs = CaseFactory(), CaseFactory(airline="LH")
    assert selectors.case_get(principal=IB, case_urn=mine.urn) == mine
    with pytest.raises(Problem) as missing:
        selectors.case_get(principal=IB, case_urn=theirs.urn)
    assert missing.value.status_code == 404


def test_case_subcase_counts_lists_every_status():
    case = CaseFactory()
    SubCaseFactory.create_batch(2, case=case)
    SubCaseFactory(case=case, status="BOOKED")
    counts = selectors.case_subcase_counts(principal=IB, case=case)
    assert counts["PENDING"] == 2 and counts["BOOKED"] == 1 and counts["FAILED"] == 0 and len(counts) == 10


def test_case_counts_by_status_and_airport():
    CaseFactory.create_batch(2, airport="MAD")
    CaseFactory(airport="MAD", status="CLOSED")
    CaseFactory(airport="BCN", status="IN_PROGRESS")
    CaseFactory(airline="LH", airport="FRA")
    counts = selectors.case_counts_by_status_and_airport(principal=IB)
    assert counts["total"] == 4
    assert counts["byStatus"]["OPEN"] == 2 and counts["byStatus"]["CLOSED"] == 1
    assert [(entry["airport"], entry["total"]) for entry in counts["byAirport"]] == [("MAD", 3), ("BCN", 1)]
    assert counts["byAirport"][1]["byStatus"]["IN_PROGRESS"] == 1


def test_oldest_open_cases_skips_closed_and_other_airlines():
    first = CaseFactory(scheduled_departure=dt.datetime(2026, 11, 22, 9, tzinfo=dt.UTC))
    CaseFactory(status="CLOSED")
    CaseFactory(airline="LH")
    second = CaseFactory(status="IN_PROGRESS")
    oldest = selectors.oldest_open_cases(principal=IB, limit=10)
    assert [case.urn for case in oldest] == [first.urn, second.urn]
    assert (oldest[0].airport, oldest[0].status) == ("MAD", "OPEN")
    assert oldest[0].scheduled_departure == dt.datetime(2026, 11, 22, 9, tzinfo=dt.UTC)
    assert len(selectors.oldest_open_cases(principal=IB, limit=1)) == 1
