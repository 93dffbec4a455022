"""``manage.py review_report``: the same report as the route, as JSON or CSV, to stdout or a file, per airline
or for every airline, with a progress bar on stderr and clear errors."""

import csv
import io
import json

import pytest
from django.core.management import CommandError, call_command

from nexa.platform.roles import Role
from review.models import ReviewCategory
from tests.cases.factories import CaseFactory
from tests.review.test_reports import WEEK, at, item

pytestmark = pytest.mark.django_db


def run(*args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("review_report", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.fixture
def items():
    ib, lh = CaseFactory(airline="IB"), CaseFactory(airline="LH")
    item(ReviewCategory.ALLOCATION_FAILED, created=at(1), resolved_after=20, case=ib)
    item(ReviewCategory.ALLOCATION_FAILED, created=at(2), resolved_after=40, case=ib)
    item(created=at(3), case=ib, attempted_hotels=[{"hotelUrn": None, "vendor": "stayhub", "reason": "hotel-full"}])
    item(ReviewCategory.DATA_INCOMPLETE, created=at(1), case=lh)
    item(created=at(7), case=ib)  # the next week


def _without_time(report: dict) -> dict:
    return {key: value for key, value in report.items() if key != "generatedAt"}


def test_json_for_one_airline_is_the_routes_report(items, client_for, capsys):
    out, _ = run("--week", WEEK, "--airline", "ib")
    report = json.loads(out)
    assert report["airline"] == "IB"
    assert report["byCategory"]["ALLOCATION_FAILED"] == {"created": 2, "resolved": 2, "open": 0}
    assert report["byCategory"]["BOOKING_FAILED"] == {"created": 1, "resolved": 0, "open": 1}
    assert report["mttrMinutes"]["overall"] == 30.0
    assert report["topFailingProviders"] == [{"provider": "stayhub", "failures": 1, "reasons": {"hotel-full": 1}}]
    api = client_for("IB", Role.OPS_SUPERVISOR).get("/v1/manual-review/reports/weekly", {"week": WEEK}).json()
    assert _without_time(report) == _without_time(api)
    assert "3/3" in capsys.readouterr().err  # the progress bar (stderr) counted the week's three items


def test_without_airline_one_report_per_airline_with_items(items):
    out, _ = run("--week", WEEK)
    reports = json.loads(out)
    assert [report["airline"] for report in reports] == ["IB", "LH"]
    assert reports[1]["byCategory"]["DATA_INCOMPLETE"]["created"] == 1
    assert reports[1]["byCategory"]["ALLOCATION_FAILED"]["created"] == 0


def test_csv_to_a_file(items, tmp_path):
    target = tmp_path / "report.csv"
    out, err = run("--week", WEEK, "--format", "csv", "--output", str(target))
    assert out == ""
    assert f"written to {target}" in err
    rows = list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8"))))
    assert {row["airline"] for row in rows} == {"IB", "LH"}
    ib_total = next(row for row in rows if row["airline"] == "IB" and row["section"] == "total")
    assert (ib_total["created"], ib_total["resolved"], ib_total["open"], ib_total["mttr_minutes"]) == (
        "3", "2", "1", "30.0",
    )  # fmt: skip
    assert target.read_text(encoding="utf-8").count("airline,week,section") == 1  # one header


def test_json_to_a_file_replaces_it(items, tmp_path):
    target = tmp_path / "report.json"
    target.write_text("old", encoding="utf-8")
    run("--week", WEEK, "--airline", "LH", "--output", str(target))
    assert json.loads(target.read_text(encoding="utf-8"))["airline"] == "LH"
    assert [path.name for path in tmp_path.iterdir()] == ["report.json"]  # no temporary file left


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--week", "2026-W99"], "--week: 2026 has no ISO week 99"),
        (["--week", "last week"], "--week: Give an ISO week as YYYY-Www"),
        (["--week", WEEK, "--airline", "IBERIA"], "--airline: 'IBERIA' is not an airline code"),
        (["--week", WEEK, "--output", "/no/such/dir/report.json"], "--output: no directory /no/such/dir"),
    ],
)
def test_clear_errors(args, message):
    with pytest.raises(CommandError, match=message.replace("(", r"\(")):
        run(*args)


def test_an_empty_week_for_an_airline_still_writes_its_report():
    out, _ = run("--week", "2020-W01", "--airline", "IB", "--format", "csv")
    lines = out.splitlines()
    assert len(lines) == 1 + 7 + 1  # the header, seven categories, the total
