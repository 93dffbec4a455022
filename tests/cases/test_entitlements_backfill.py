"""``manage.py entitlements_backfill``: one snapshot per sub-case, idempotent, --dry-run writes nothing,
and --airline / --case / --since choose the cases."""

import datetime as dt
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from audit.models import AuditEntry
from cases import services
from cases.models import Entitlement
from nexa.platform.auth import Principal
from nexa.platform.roles import Role
from tests.cases.factories import CaseFactory, SubCaseFactory

pytestmark = pytest.mark.django_db


def backfill(*args) -> str:
    out = StringIO()
    call_command("entitlements_backfill", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def rows():
    return sorted(Entitlement.objects.values_list("id", "sub_case_id", "computed_at", "data"), key=lambda r: str(r[1]))


@pytest.fixture
def passengers():
    ib = CaseFactory(airline="IB", destination="FRA", flight_date=dt.date(2026, 11, 22))
    ib_old = CaseFactory(airline="IB", destination="JFK", flight_date=dt.date(2026, 10, 1))
    lh = CaseFactory(airline="LH", airport="FRA", destination="MAD", flight_date=dt.date(2026, 11, 22))
    return {
        "ib": [SubCaseFactory(case=ib, airline="IB"), SubCaseFactory(case=ib, airline="IB")],
        "ib_old": [SubCaseFactory(case=ib_old, airline="IB")],
        "lh": [SubCaseFactory(case=lh, airline="LH")],
    }


def test_it_stores_one_snapshot_per_sub_case_and_a_rerun_changes_nothing(passengers):
    assert "4 created, 0 updated, 0 unchanged" in backfill()
    first = rows()
    assert len(first) == 4
    snapshot = Entitlement.objects.get(sub_case=passengers["lh"][0])
    assert (snapshot.airline, snapshot.data["compensation"]["amount"]) == ("LH", "250.00")
    assert "computedAt" not in snapshot.data
    audits = AuditEntry.objects.filter(action="entitlement.snapshot_stored").count()
    assert audits == 4

    assert "0 created, 0 updated, 4 unchanged" in backfill()
    assert rows() == first  # same rows, same times: nothing rewritten
    assert AuditEntry.objects.filter(action="entitlement.snapshot_stored").count() == audits


def test_a_changed_entitlement_updates_its_row_in_place(passengers):
    backfill()
    sub_case = passengers["ib"][0]
    before = Entitlement.objects.get(sub_case=sub_case)
    principal = Principal(airline="IB", role=Role.ADMIN, operator_urn="urn:nexa:user:ib-admin", subject="a")
    services.subcase_reroute_record(principal=principal, sub_case=sub_case, rerouted_arrival_delay_minutes=60)

    assert "0 created, 1 updated, 3 unchanged" in backfill()
    after = Entitlement.objects.get(sub_case=sub_case)
    assert after.pk == before.pk and after.computed_at > before.computed_at
    assert (after.data["compensation"]["status"], after.data["compensation"]["amount"]) == ("NOT_OWED", "0.00")
    assert Entitlement.objects.count() == 4


def test_dry_run_writes_nothing(passengers):
    out = backfill("--dry-run")
    assert "Dry run" in out and "4 created" in out
    assert Entitlement.objects.count() == 0
    assert not AuditEntry.objects.filter(action="entitlement.snapshot_stored").exists()


def test_case_airline_and_since_choose_the_cases(passengers):
    backfill("--case", passengers["ib"][0].case.urn)
    assert {row[1] for row in rows()} == {p.pk for p in passengers["ib"]}
    Entitlement.objects.all().delete()

    backfill("--airline", "lh")
    assert {row[1] for row in rows()} == {passengers["lh"][0].pk}
    Entitlement.objects.all().delete()

    backfill("--since", "2026-11-01", "--airline", "IB")
    assert {row[1] for row in rows()} == {p.pk for p in passengers["ib"]}


def test_another_airlines_case_is_not_found_under_airline(passengers):
    with pytest.raises(CommandError, match="no case"):
        backfill("--airline", "IB", "--case", passengers["lh"][0].case.urn)
    assert Entitlement.objects.count() == 0


@pytest.mark.parametrize(
    "args",
    [
        ("--case", "urn:nexa:subcase:0190a0a0-0000-7000-8000-000000000000"),
        ("--since", "yesterday"),
        ("--case", "urn:nexa:case:0190a0a0-0000-7000-8000-000000000000", "--since", "2026-01-01"),
    ],
)
def test_bad_arguments_are_refused(args):
    with pytest.raises(CommandError):
        backfill(*args)
