"""Manifest rows: validation rules, and appending over HTTP (all or nothing)."""

import time

import pytest

from audit.models import AuditEntry
from cases.api.serializers import PassengerRowSerializer
from cases.manifest import ROW_FIELDS, passenger_identity, validate_rows
from cases.models import CaseStatus, SubCase
from nexa.platform.models import OutboxEvent
from nexa.platform.roles import Role
from tests.cases.factories import CaseFactory, PassengerGroupFactory, SubCaseFactory, passenger_row

pytestmark = pytest.mark.django_db


def fields_of(result) -> list[str]:
    return [error["field"] for error in result.errors]


# --- rules -----------------------------------------------------------------------------------------


def test_a_valid_row_is_normalised():
    result = validate_rows(
        [
            {
                "firstName": "  María  José ",
                "lastName": "García",
                "pnr": "abc123",
                "tier": "business",
                "specialNeeds": ["wheelchair", "WHEELCHAIR", "INFANT"],
                "email": "maria@example.com",
                "phone": "0034 (600) 12-34-56",
                "language": "pt-br",
                "onwardFlight": "ib 3166",
            }
        ]
    )
    assert result.valid and result.errors == []
    row = result.rows[0]
    assert (row.first_name, row.pnr, row.tier) == ("María José", "ABC123", "BUSINESS")
    assert row.special_needs == ("WHEELCHAIR", "INFANT")
    assert (row.phone, row.language, row.onward_flight) == ("+34600123456", "pt-BR", "IB3166")


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"firstName": None}, "firstName"),
        ({"lastName": "   "}, "lastName"),
        ({"firstName": 42}, "firstName"),
        ({"firstName": "x" * 101}, "firstName"),
        ({"pnr": None}, "pnr"),
        ({"pnr": "AB12"}, "pnr"),
        ({"pnr": "AB-123"}, "pnr"),
        ({"email": "not-an-email"}, "email"),
        ({"email": "a@b"}, "email"),
        ({"phone": "600123456"}, "phone"),  # no country code
        ({"phone": "+34 abc"}, "phone"),
        ({"phone": "+0123456789"}, "phone"),
        ({"tier": "GOLD"}, "tier"),
        ({"specialNeeds": "WHEELCHAIR"}, "specialNeeds"),
        ({"specialNeeds": ["JETPACK"]}, "specialNeeds"),
        ({"language": "english"}, "language"),
        ({"onwardFlight": "tomorrow"}, "onwardFlight"),
        ({"seat": "12A"}, "seat"),
        ({"lastName": "Mart\x00in"}, "lastName"),  # a manifest file (not the API) reached PostgreSQL with NUL
        ({"email": "a" * 64 + "@" + ("b" * 60 + ".") * 4 + "com"}, "email"),  # 312 characters, the column 254
    ],
)
def test_invalid_rows_name_the_field(overrides, field):
    result = validate_rows([passenger_row(0), passenger_row(1, **overrides)])
    assert not result.valid
    assert fields_of(result) == [f"passengers[1].{field}"]
    assert [row.pnr for row in result.rows] == [passenger_row(0)["pnr"]]


def test_every_error_is_reported_not_just_the_first():
    result = validate_rows([passenger_row(0, email="x", phone="1"), "not an object", passenger_row(2, pnr="?")])
    assert fields_of(result) == ["passengers[0].email", "passengers[0].phone", "passengers[1]", "passengers[2].pnr"]


def test_duplicates_in_the_batch_ignore_case_accents_and_spacing():
    rows = [
        passenger_row(0, firstName="José", lastName="Pérez", pnr="ABC123"),
        passenger_row(1, firstName="JOSE ", lastName="perez", pnr="abc123"),
    ]
    result = validate_rows(rows)
    assert fields_of(result) == ["passengers[1]"]
    assert "passengers[0]" in result.errors[0]["message"]


def test_same_name_on_another_pnr_is_another_passenger():
    rows = [passenger_row(0, pnr="ABC123"), passenger_row(0, pnr="XYZ789")]
    assert validate_rows(rows).valid


def test_existing_passengers_are_errors_or_skipped():
    existing = {passenger_identity(pnr="R00000", last_name="MARTIN", first_name="luis0")}
    rows = [passenger_row(0), passenger_row(1)]
    refused = validate_rows(rows, existing=existing)
    assert fields_of(refused) == ["passengers[0]"] and "already on the manifest" in refused.errors[0]["message"]
    skipped = validate_rows(rows, existing=existing, skip_existing=True)
    assert skipped.valid and skipped.skipped == 1 and [row.first_name for row in skipped.rows] == ["Luis1"]


def test_error_list_is_capped_but_counted():
    result = validate_rows([{"pnr": "?"}] * 400)
    assert result.error_count == 1200 and len(result.errors) == 500


def test_documented_row_shape_is_the_validated_one():
    assert set(PassengerRowSerializer().fields) == set(ROW_FIELDS)


# --- POST /v1/cases/{urn}/manifest ---------------------------------------------------------------


@pytest.fixture
def supervisor(client_for):
    return client_for("IB", Role.OPS_SUPERVISOR)


def append(client, case, rows):
    return client.post(f"/v1/cases/{case.urn}/manifest", {"passengers": rows}, format="json")


def test_append_adds_passengers_audits_and_publishes(supervisor):
    case = CaseFactory()
    response = append(supervisor, case, [passenger_row(1), passenger_row(2, specialNeeds=["INFANT"])])
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["added"] == 2 and body["caseStatus"] == "OPEN"
    assert [item["firstName"] for item in body["items"]] == ["Luis1", "Luis2"]
    assert body["items"][1]["specialNeeds"] == ["INFANT"] and body["items"][0]["status"] == "PENDING"
    assert body["items"][0]["caseUrn"] == case.urn and body["items"][0]["groupUrn"] is None

    entry = AuditEntry.objects.get(action="case.manifest_appended")
    assert entry.after == {"added": 2, "skippedExisting": 0}
    assert "Luis" not in str(entry.after) and "example.com" not in str(entry.after)  # no personal data
    assert OutboxEvent.objects.get(event="case:updated").payload["counts"]["PENDING"] == 2


def test_one_bad_row_inserts_nothing(supervisor):
    case = CaseFactory()
    rows = [passenger_row(i) for i in range(5)]
    rows[3]["email"] = "broken@"
    response = append(supervisor, case, rows)
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"field": "passengers[3].email", "message": "'broken@' is not a valid email address"}
    ]
    assert SubCase.objects.count() == 0
    assert not AuditEntry.objects.exists() and not OutboxEvent.objects.exists()


def test_missing_names_and_bad_contacts_are_each_named(supervisor):
    case = CaseFactory()
    rows = [passenger_row(0, firstName=None), passenger_row(1, lastName=""), passenger_row(2, phone="12")]
    fields = [error["field"] for error in append(supervisor, case, rows).json()["errors"]]
    assert fields == ["passengers[0].firstName", "passengers[1].lastName", "passengers[2].phone"]


def test_passenger_already_on_the_manifest_is_refused(supervisor):
    existing = SubCaseFactory(first_name="Luis1", last_name="Martin", pnr="R00001")
    response = append(supervisor, existing.case, [passenger_row(0), passenger_row(1)])
    assert response.status_code == 400
    assert [error["field"] for error in response.json()["errors"]] == ["passengers[1]"]
    assert SubCase.objects.count() == 1


def test_duplicate_in_the_batch_is_refused(supervisor):
    case = CaseFactory()
    response = append(supervisor, case, [passenger_row(0), passenger_row(1), passenger_row(0)])
    assert [error["field"] for error in response.json()["errors"]] == ["passengers[2]"]


@pytest.mark.parametrize("body", [{}, {"passengers": []}, {"passengers": "x"}, {"passengers": [1, 2]}])
def test_malformed_bodies_are_400(supervisor, body):
    case = CaseFactory()
    response = supervisor.post(f"/v1/cases/{case.urn}/manifest", body, format="json")
    assert response.status_code == 400
    assert all(error["field"].startswith("passengers") for error in response.json()["errors"])


def test_appending_to_a_closed_case_is_409(supervisor):
    case = CaseFactory(status=CaseStatus.CLOSED)
    response = append(supervisor, case, [passenger_row(0)])
    assert response.status_code == 409 and response.json()["type"].endswith("/case-closed")


@pytest.mark.slow
def test_ten_thousand_rows_in_one_append(supervisor):
    case = CaseFactory()
    rows = [
        passenger_row(i, pnr=f"{i // 3:06d}", firstName=f"Pax{i}", tier=("ECONOMY", "BUSINESS")[i % 2])
        for i in range(10_000)
    ]
    started = time.monotonic()
    response = append(supervisor, case, rows)
    elapsed = time.monotonic() - started
    assert response.status_code == 201, response.content[:500]
    assert response.json()["added"] == 10_000
    assert SubCase.objects.filter(case=case).count() == 10_000
    assert AuditEntry.objects.filter(action="case.manifest_appended").count() == 1
    assert elapsed < 60  # a guard against pathological slowness, not a benchmark


# --- GET /v1/cases/{urn}/manifest ------------------------------------------------------------------


def test_manifest_lists_in_manifest_order_and_filters(client_for):
    client = client_for("IB")
    case = CaseFactory()
    pending = SubCaseFactory.create_batch(3, case=case)
    grouped = SubCaseFactory(case=case, status="GROUPED")
    SubCaseFactory(case=CaseFactory())  # another case

    def urns(params=None):
        response = client.get(f"/v1/cases/{case.urn}/manifest", params or {})
        assert response.status_code == 200, response.content
        return [item["urn"] for item in response.json()["items"]]

    assert urns() == [s.urn for s in [*pending, grouped]]
    assert urns({"status": "GROUPED"}) == [grouped.urn]
    assert urns({"limit": 2}) == [s.urn for s in pending[:2]]


def test_manifest_filters_by_group_and_validates_filters(client_for):
    client = client_for("IB")
    case = CaseFactory()
    group = PassengerGroupFactory(case=case)
    member = SubCaseFactory(case=case, group=group, status="GROUPED")
    SubCaseFactory(case=case)
    response = client.get(f"/v1/cases/{case.urn}/manifest", {"group": group.urn})
    assert [item["urn"] for item in response.json()["items"]] == [member.urn]
    assert response.json()["items"][0]["groupUrn"] == group.urn

    bad_filters = (({"status": "LOST"}, "status"), ({"group": "GRP-1"}, "group"), ({"group": case.urn}, "group"))
    for params, field in bad_filters:
        response = client.get(f"/v1/cases/{case.urn}/manifest", params)
        assert response.status_code == 400
        assert [error["field"] for error in response.json()["errors"]] == [field]


def test_manifest_pagination_walk(client_for):
    client = client_for("IB")
    case = CaseFactory()
    created = SubCaseFactory.create_batch(12, case=case)
    seen, params = [], {"limit": 5}
    while True:
        body = client.get(f"/v1/cases/{case.urn}/manifest", params).json()
        seen += [item["urn"] for item in body["items"]]
        if not body["hasMore"]:
            break
        params["cursor"] = body["nextCursor"]
    assert seen == [s.urn for s in created]
