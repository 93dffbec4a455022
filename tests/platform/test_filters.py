"""One filter base (nexa.platform.filters): every route with a time range reads from/to the same way
([from, to), a date is its whole UTC day) and refuses the same values with the same message."""

import datetime as dt

import pytest

from nexa.platform.filters import InstantRangeFilters
from nexa.platform.roles import Role
from tests.api_base import assert_problem

pytestmark = pytest.mark.django_db

RANGE_ROUTES = ["/v1/cases", "/v1/audit", "/v1/audit/export.csv"]
UTC = dt.UTC


class _Request:
    def __init__(self, **params):
        from django.http import QueryDict

        self.GET = QueryDict(mutable=True)
        self.GET.update(params)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, (None, None)),
        ({"from": "", "to": ""}, (None, None)),  # empty is absent
        (
            {"from": "2026-11-22", "to": "2026-11-22"},
            (dt.datetime(2026, 11, 22, tzinfo=UTC), dt.datetime(2026, 11, 23, tzinfo=UTC)),
        ),
        ({"to": "2026-11-22T13:00:00+01:00"}, (None, dt.datetime(2026, 11, 22, 12, tzinfo=UTC))),
        ({"from": "2026-11-22T13:00:00 01:00"}, (dt.datetime(2026, 11, 22, 12, tzinfo=UTC), None)),  # "+" as space
        ({"to": "9999-12-31"}, (None, None)),  # the last day has no end
        (
            {"from": "2026-11-22T12:00:00Z", "to": "2026-11-22T12:00:00Z"},
            (dt.datetime(2026, 11, 22, 12, tzinfo=UTC),) * 2,
        ),
    ],
)
def test_the_range_is_half_open_and_a_date_is_its_whole_day(params, expected):
    filters = InstantRangeFilters.parse(_Request(**params))
    assert (filters["from"], filters["to"]) == expected


@pytest.mark.parametrize("path", RANGE_ROUTES)
@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        (
            {"from": "yesterday"},
            "from",
            "must be a date (2026-11-22) or a date-time with a UTC offset (2026-11-22T18:30:00Z)",
        ),
        ({"to": "2026-11-22T10:00:00"}, "to", "Include a UTC offset, e.g. 2026-11-22T18:30:00+01:00 or …Z."),
        ({"to": "9999-12-31T23:59:59-01:00"}, "to", "Out of range."),
        ({"from": "2026-11-22", "to": "2026-11-20"}, "to", "must not be before from"),
    ],
)
def test_every_route_refuses_the_same_bounds_alike(client_for, path, params, field, message):
    body = assert_problem(client_for("IB", Role.OPS_SUPERVISOR).get(path, params), 400, "validation-error")
    assert body["errors"] == [{"field": field, "message": message}]


@pytest.mark.parametrize("path", RANGE_ROUTES)
def test_every_route_documents_the_same_range(client_for, path):
    schema = client_for().get("/v1/openapi.json").json()
    parameters = {p["name"]: p for p in schema["paths"][path]["get"]["parameters"] if p["in"] == "query"}
    assert "exclusive" in parameters["to"]["description"] and "[from, to)" in parameters["to"]["description"]
    assert parameters["from"].get("allowEmptyValue") is True and parameters["to"].get("allowEmptyValue") is True
