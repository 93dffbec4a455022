"""manage.py import_manifest and purge_passenger_data."""

import csv
import datetime as dt
import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from audit.models import AuditEntry
from cases.models import CaseStatus, SubCase
from nexa.platform.roles import Role
from tests.cases.factories import CaseFactory, SubCaseFactory, passenger_row

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


@pytest.fixture
def json_file(tmp_path):
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({"passengers": [passenger_row(i) for i in range(3)]}))
    return path


@pytest.fixture
def csv_file(tmp_path):
    path = tmp_path / "manifest.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["first_name", "last_name", "pnr", "tier", "special_needs", "email", "phone"])
        writer.writerow(["Ana", "Lopez", "ABC123", "BUSINESS", "WHEELCHAIR;INFANT", "ana@example.com", "+34600111222"])
        writer.writerow(["Pedro, Jr.", "Lopez", "ABC123", "", "", "", ""])
    return path


def test_import_json(json_file):
    case = CaseFactory()
    output = run("import_manifest", case.urn, str(json_file))
    assert "Imported 3 passenger(s)" in output
    assert SubCase.objects.filter(case=case).count() == 3
    entry = AuditEntry.objects.get(action="case.manifest_appended")
    assert entry.actor == "urn:nexa:system:import-manifest" and entry.after == {"added": 3, "skippedExisting": 0}


def test_import_csv(csv_file):
    case = CaseFactory()
    run("import_manifest", case.urn, str(csv_file))
    ana, pedro = SubCase.objects.filter(case=case).order_by("created_at", "id")
    assert (ana.tier, ana.special_needs, ana.phone) == ("BUSINESS", ["WHEELCHAIR", "INFANT"], "+34600111222")
    assert (pedro.first_name, pedro.tier, pedro.email) == ("Pedro, Jr.", "ECONOMY", "")


def test_rerunning_the_same_file_adds_nothing(json_file):
    case = CaseFactory()
    run("import_manifest", case.urn, str(json_file))
    output = run("import_manifest", case.urn, str(json_file))
    assert "Imported 0 passenger(s)" in output and "3 already on the manifest" in output
    assert SubCase.objects.filter(case=case).count() == 3


def test_dry_run_writes_nothing(json_file):
    case = CaseFactory()
    output = run("import_manifest", case.urn, str(json_file), "--dry-run")
    assert "3 new" in output and "nothing written" in output
    assert not SubCase.objects.exists() and not AuditEntry.objects.exists()


def test_one_invalid_row_imports_nothing(tmp_path):
    case = CaseFactory()
    path = tmp_path / "bad.json"
    path.write_text(json.dumps([passenger_row(0), passenger_row(1, email="@")]))
    with pytest.raises(CommandError, match="1 problem"):
        run("import_manifest", case.urn, str(path))
    assert not SubCase.objects.exists()


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("m.txt", "x", "use a .json or .csv"),
        ("m.json", "{not json", "not valid JSON"),
        ("m.csv", "first_name,seat\nAna,12A\n", "unknown columns seat"),
    ],
)
def test_unreadable_files_are_refused(tmp_path, name, content, message):
    case = CaseFactory()
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(CommandError, match=message):
        run("import_manifest", case.urn, str(path))


def test_unknown_case_is_refused(json_file):
    with pytest.raises(CommandError, match="no case"):
        run("import_manifest", "urn:nexa:case:01a20000-0000-7000-8000-000000000000", str(json_file))


# --- purge ------------------------------------------------------------------------------------------

LONG_AGO = dt.date(2020, 1, 10)


@pytest.fixture
def purge_world():
    due = CaseFactory(status=CaseStatus.CLOSED, flight_date=LONG_AGO, retention_until=dt.date(2020, 4, 9))
    family = [
        SubCaseFactory(case=due, pnr="FAM001", special_needs=["MEDICAL"], onward_flight="IB1", status="CLOSED"),
        SubCaseFactory(case=due, pnr="FAM001", status="CLOSED"),
    ]
    open_case = CaseFactory(flight_date=LONG_AGO, retention_until=dt.date(2020, 4, 9))
    kept_open = SubCaseFactory(case=open_case)
    not_yet = CaseFactory(status=CaseStatus.CLOSED, retention_until=dt.date(2999, 1, 1))
    kept_recent = SubCaseFactory(case=not_yet, status="CLOSED")
    return {"due": due, "family": family, "kept": [kept_open, kept_recent]}


def test_purge_anonymises_only_closed_cases_past_retention(purge_world):
    output = run("purge_passenger_data")
    assert "Anonymised 2 passenger(s) in 1 case(s)" in output

    first, second = (SubCase.objects.get(pk=s.pk) for s in purge_world["family"])
    for sub_case in (first, second):
        assert sub_case.first_name == sub_case.last_name == "REDACTED"
        assert sub_case.email == sub_case.phone == sub_case.onward_flight == ""
        assert sub_case.special_needs == [] and sub_case.anonymised_at is not None
        assert sub_case.status == "CLOSED" and sub_case.tier == "ECONOMY" and sub_case.version == 2
        assert sub_case.pnr != "FAM001" and len(sub_case.pnr) == 6
    assert first.pnr == second.pnr  # who travelled together stays visible

    for kept in purge_world["kept"]:
        fresh = SubCase.objects.get(pk=kept.pk)
        assert fresh.first_name == kept.first_name and fresh.anonymised_at is None

    entry = AuditEntry.objects.get(action="case.passenger_data_purged")
    assert entry.entity_urn == purge_world["due"].urn and entry.after["anonymisedSubCases"] == 2


def test_purge_dry_run_writes_nothing(purge_world):
    output = run("purge_passenger_data", "--dry-run")
    assert "2 passenger(s) in 1 case(s) would be anonymised" in output
    assert not SubCase.objects.filter(anonymised_at__isnull=False).exists()
    assert not AuditEntry.objects.exists()


def test_purge_is_idempotent(purge_world):
    run("purge_passenger_data")
    snapshot = list(SubCase.objects.order_by("id").values())
    output = run("purge_passenger_data")
    assert "Anonymised 0 passenger(s) in 0 case(s)" in output
    assert list(SubCase.objects.order_by("id").values()) == snapshot
    assert AuditEntry.objects.filter(action="case.passenger_data_purged").count() == 1


def test_no_personal_data_reaches_the_audit_log(client_for, json_file):
    """Audit rows outlive the purge, so they must never hold names or contacts."""
    case = CaseFactory()
    run("import_manifest", case.urn, str(json_file))
    client_for("IB", Role.AIRPORT_OPERATOR).post(f"/v1/cases/{case.urn}/passenger-groups", {}, format="json")
    dumped = json.dumps(list(AuditEntry.objects.values("before", "after", "reason")))
    for sub_case in SubCase.objects.filter(case=case):
        assert sub_case.first_name not in dumped and sub_case.email not in dumped and sub_case.phone not in dumped
    assert AuditEntry.objects.count() > 3


def test_purge_also_forgets_notification_recipients():
    """The passenger-data purge reaches the notification log: full addresses go, masked ones stay."""
    import datetime as dt

    from cases import services
    from cases.models import CaseStatus
    from nexa.platform.auth import Principal
    from nexa.platform.roles import Role
    from notifications.models import Notification
    from tests.cases.factories import CaseFactory, SubCaseFactory

    case = CaseFactory(status=CaseStatus.CLOSED, retention_until=dt.date(2020, 1, 1))
    sub_case = SubCaseFactory(case=case, airline=case.airline, status="CLOSED", email="maria@example.com")
    Notification.objects.create(
        airline=case.airline,
        case=case,
        sub_case=sub_case,
        channel="EMAIL",
        recipient="maria@example.com",
        masked_recipient="m***@example.com",
        template="compensation_summary",
        language="en",
        status="SENT",
        idempotency_key="purge-test:EMAIL",
        requested_by="urn:nexa:system:saga",
    )
    principal = Principal(airline=case.airline, role=Role.ADMIN, operator_urn="urn:nexa:system:purge", subject="purge")
    assert services.case_passenger_data_purge(principal=principal, case=case, today=dt.date(2026, 11, 22)) == 1
    row = Notification.objects.get(idempotency_key="purge-test:EMAIL")
    assert row.recipient == "" and row.masked_recipient == "m***@example.com"
