"""Cursor pagination (ARCHITECTURE §3.7) through test-only routes over AuditEntry rows."""

import base64
import json
import time
from datetime import timedelta

import pytest
from django.core import signing
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from audit.models import AuditEntry
from nexa.platform.pagination import CursorPaginator
from nexa.platform.roles import Role

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.platform.pagination_urls")]

BASE = "/v1/_test/audit/"
ACTIONS = ("case.declared", "subcase.locked", "policy.activated")
CURSOR_ALPHABET = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")


def make_rows(n: int, *, airline: str = "IB", start=None, ties: int = 3, step_seconds: int = 1) -> list[AuditEntry]:
    """``n`` rows in the past, ``ties`` of them sharing each timestamp, actions cycling."""
    start = start or timezone.now() - timedelta(days=1)
    rows = [
        AuditEntry(
            airline=airline,
            actor=f"urn:nexa:user:{airline.lower()}-ops",
            action=ACTIONS[i % len(ACTIONS)],
            entity_urn=f"urn:nexa:subcase:{i}",
            created_at=start + timedelta(seconds=(i // ties) * step_seconds),
        )
        for i in range(n)
    ]
    return AuditEntry.objects.bulk_create(rows)


def ordered(rows, ordering):
    """Python's idea of the ordering (stable sorts, last key first)."""
    result = list(rows)
    for name in reversed(ordering):
        field = name.lstrip("-")
        result.sort(key=lambda row, f=field: getattr(row, f), reverse=name.startswith("-"))
    return [str(row.id) for row in result]


def walk(client, route, *, limit=None, params=None, max_pages=1000):
    """Follow nextCursor to the end; returns (ids in order, list of page bodies)."""
    pages, ids = [], []
    query = dict(params or {})
    if limit is not None:
        query["limit"] = limit
    while True:
        response = client.get(BASE + route, query)
        assert response.status_code == 200, response.content
        body = response.json()
        pages.append(body)
        ids.extend(item["id"] for item in body["items"])
        if not body["hasMore"]:
            return ids, pages
        assert len(pages) < max_pages
        query["cursor"] = body["nextCursor"]


def assert_bad(response, field):
    assert response.status_code == 400, response.content
    assert response["Content-Type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == 400
    assert body["errors"][0]["field"] == field
    return body


@pytest.fixture
def ib(client_for):
    return client_for("IB", Role.AIRPORT_OPERATOR)


# --- walking -----------------------------------------------------------------------------------

ROUTES = {
    "newest": ("-created_at", "-id"),
    "oldest": ("created_at", "id"),
    "mixed": ("-created_at", "id"),
    "by-action": ("action", "-created_at", "-id"),
    "default": ("-created_at", "-id"),
}


@pytest.mark.parametrize("route", ROUTES)
def test_walk_returns_every_row_exactly_once_in_order(ib, route):
    rows = make_rows(50)
    make_rows(5, airline="BA")
    ids, pages = walk(ib, route, limit=7)
    assert ids == ordered(rows, ROUTES[route])
    assert len(pages) == 8
    for page in pages[:-1]:
        assert len(page["items"]) == 7 and page["hasMore"] is True
        assert set(page["nextCursor"]) <= CURSOR_ALPHABET  # URL-safe, no percent-encoding needed
    assert pages[-1] == {"items": pages[-1]["items"], "nextCursor": None, "hasMore": False}
    assert len(pages[-1]["items"]) == 1


def test_exact_multiple_of_the_limit_has_no_empty_trailing_page(ib):
    make_rows(10)
    _, pages = walk(ib, "newest", limit=5)
    assert [len(p["items"]) for p in pages] == [5, 5]
    assert [p["hasMore"] for p in pages] == [True, False]


def test_empty_listing(ib):
    response = ib.get(BASE + "newest")
    assert response.status_code == 200
    assert response.json() == {"items": [], "nextCursor": None, "hasMore": False}


def test_ties_on_the_first_field_are_resolved_by_id(ib):
    rows = make_rows(30, ties=30)  # one timestamp for all
    newest, _ = walk(ib, "newest", limit=4)
    assert newest == sorted((str(r.id) for r in rows), reverse=True)
    mixed, _ = walk(ib, "mixed", limit=4)
    assert mixed == sorted(str(r.id) for r in rows)


def test_mixed_directions_across_three_fields(ib):
    rows = make_rows(40, ties=4)
    ids, _ = walk(ib, "by-action", limit=3)
    assert ids == ordered(rows, ("action", "-created_at", "-id"))
    actions = [AuditEntry.objects.get(id=i).action for i in ids]
    assert actions == sorted(actions)


# --- limit -------------------------------------------------------------------------------------


def test_default_limit_is_50_and_bounds_are_inclusive(ib):
    make_rows(210)
    first = ib.get(BASE + "newest").json()
    assert len(first["items"]) == 50 and first["hasMore"] is True
    assert len(ib.get(BASE + "newest", {"limit": 1}).json()["items"]) == 1
    assert len(ib.get(BASE + "newest", {"limit": 200}).json()["items"]) == 200


@pytest.mark.parametrize("limit", ["0", "201", "abc", "-1", "1.5", "", " 5", "1e2", "99999999999999999999"])
def test_bad_limit_is_a_400_naming_limit(ib, limit):
    body = assert_bad(ib.get(BASE + "newest", {"limit": limit}), "limit")
    assert "200" in body["errors"][0]["message"]


# --- snapshot ----------------------------------------------------------------------------------


@pytest.mark.parametrize("route", ["oldest", "newest", "by-action"])
def test_rows_inserted_after_page_one_do_not_appear_or_shift_later_pages(ib, route):
    rows = make_rows(12)
    first = ib.get(BASE + route, {"limit": 5}).json()
    cursor = first["nextCursor"]
    page_two_before = ib.get(BASE + route, {"limit": 5, "cursor": cursor}).json()

    # Newer rows, created after the walk began (every action, so they would sort everywhere).
    time.sleep(0.02)
    make_rows(9, start=timezone.now(), ties=9)
    time.sleep(0.02)

    page_two_after = ib.get(BASE + route, {"limit": 5, "cursor": cursor}).json()
    assert page_two_after == page_two_before
    rest, _ = walk(ib, route, limit=5, params={"cursor": cursor})
    assert [i["id"] for i in first["items"]] + rest == ordered(rows, ROUTES[route])
    # A fresh walk sees them.
    fresh, _ = walk(ib, route, limit=5)
    assert len(fresh) == 21


# --- cursor validation -------------------------------------------------------------------------


def _first_cursor(client, route="newest", **params):
    return client.get(BASE + route, {"limit": 2, **params}).json()["nextCursor"]


def _flip(text: str, index: int) -> str:
    char = text[index]
    return text[:index] + ("A" if char != "A" else "B") + text[index + 1 :]


def test_cursor_round_trip_works_with_a_different_limit(ib):
    make_rows(6)
    cursor = _first_cursor(ib)
    response = ib.get(BASE + "newest", {"limit": 3, "cursor": cursor})
    assert response.status_code == 200 and len(response.json()["items"]) == 3


def test_tampered_garbage_empty_and_truncated_cursors_are_400(ib):
    make_rows(6)
    cursor = _first_cursor(ib)
    payload, _signature = cursor.rsplit(".", 1)
    bad = [
        _flip(cursor, 5),  # in the payload
        _flip(cursor, len(payload) + 3),  # in the signature
        cursor[:-4],
        payload,
        "",
        "garbage",
        "%%%.!!!",
        "." * 10,
        "x" * 5000,
        base64.urlsafe_b64encode(json.dumps({"v": 1, "k": ["2020-01-01T00:00:00+00:00", "x"]}).encode()).decode(),
        signing.dumps({"v": 1}),  # signed, but not by the paginator (other salt/format)
        payload + "." + base64.urlsafe_b64encode(b"\x00" * 32).decode().rstrip("="),
    ]
    for value in bad:
        body = assert_bad(ib.get(BASE + "newest", {"cursor": value}), "cursor")
        assert "Traceback" not in json.dumps(body)


def test_cursor_from_another_route_ordering_or_filter_is_400(ib):
    make_rows(9)
    newest = _first_cursor(ib, "newest")
    for route in ("oldest", "mixed", "by-action"):
        assert_bad(ib.get(BASE + route, {"cursor": newest}), "cursor")
    # "default" has the same ordering but another path: still bound to its route.
    assert_bad(ib.get(BASE + "default", {"cursor": newest}), "cursor")
    # Same route, different filters.
    filtered = _first_cursor(ib, "newest", action="subcase.locked")
    assert_bad(ib.get(BASE + "newest", {"cursor": filtered}), "cursor")
    assert_bad(ib.get(BASE + "newest", {"cursor": newest, "action": "subcase.locked"}), "cursor")
    assert ib.get(BASE + "newest", {"cursor": filtered, "action": "subcase.locked"}).status_code == 200


def test_cursor_of_one_airline_is_refused_for_another_and_never_leaks_rows(ib, client_for):
    ib_rows = make_rows(6)
    ba_rows = make_rows(6, airline="BA")
    ba = client_for("BA", Role.OPS_SUPERVISOR)
    cursor = _first_cursor(ib)

    assert_bad(ba.get(BASE + "newest", {"cursor": cursor}), "cursor")

    ba_ids, _ = walk(ba, "newest", limit=2)
    assert set(ba_ids) == {str(r.id) for r in ba_rows}
    assert not set(ba_ids) & {str(r.id) for r in ib_rows}


def test_pages_are_keyset_queries_without_offset(ib):
    make_rows(40)
    cursor = None
    for _ in range(5):
        params = {"limit": 4, **({"cursor": cursor} if cursor else {})}
        with CaptureQueriesContext(connection) as queries:
            cursor = ib.get(BASE + "newest", params).json()["nextCursor"]
    page_sql = [q["sql"] for q in queries if "audit_auditentry" in q["sql"]]
    assert len(page_sql) == 1
    assert "OFFSET" not in page_sql[0].upper()
    assert "LIMIT 5" in page_sql[0]


# --- configuration and OpenAPI -----------------------------------------------------------------


def _request(path="/v1/x"):
    return Request(APIRequestFactory().get(path))


@pytest.mark.parametrize(
    "ordering",
    [("-created_at",), ("case_urn", "id"), ("nope", "id"), ("created_at__year", "id"), ("id", "id"), ()],
)
def test_unusable_orderings_are_configuration_errors(ordering):
    with pytest.raises(ImproperlyConfigured):
        CursorPaginator(ordering=ordering).paginate_queryset(_request(), AuditEntry.objects.all())


def test_openapi_documents_parameters_and_envelope():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator(urlconf="tests.platform.pagination_urls").get_schema(request=None, public=True)
    operation = schema["paths"]["/v1/_test/audit/newest"]["get"]
    names = {p["name"] for p in operation["parameters"]}
    assert {"limit", "cursor"} <= names
    ref = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert ref.endswith("/PaginatedAuditItemList")
    envelope = schema["components"]["schemas"]["PaginatedAuditItemList"]
    assert set(envelope["properties"]) == {"items", "nextCursor", "hasMore"}
    assert envelope["properties"]["nextCursor"]["nullable"] is True
