"""The weekly ops report (``GET /v1/manual-review/reports/weekly``): its figures on constructed items (counts per
category, mean time to resolve, the agent's share, the top failing policies and providers), the ISO week's
bounds, tenant isolation, the role matrix (FINANCE_AUDIT allowed, AIRPORT_OPERATOR refused), the CSV and the
400s."""

import csv
import datetime as dt
import io

import pytest

from booking.models import ReservationSource, ReservationStatus
from cases.models import Tier
from nexa.platform.roles import Role
from nexa.platform.urns import format_urn, new_id
from review.models import ReviewCategory, ReviewState
from tests.api_base import APIContractTests, RouteContract, assert_problem
from tests.booking.factories import HotelFactory, ReservationFactory
from tests.cases.factories import CaseFactory, SubCaseFactory
from tests.policies.factories import active_policy
from tests.review.factories import ReviewItemFactory

pytestmark = pytest.mark.django_db

WEEK = "2026-W48"
MONDAY = dt.datetime(2026, 11, 23, tzinfo=dt.UTC)  # 2026-W48 is [Mon 23 Nov 00:00Z, Mon 30 Nov 00:00Z)
URL = "/v1/manual-review/reports/weekly"
AGENT_ACTION = format_urn("agent-action", new_id())


def at(days: float = 0, minutes: float = 0) -> dt.datetime:
    return MONDAY + dt.timedelta(days=days, minutes=minutes)


def item(category=ReviewCategory.BOOKING_FAILED, *, created, resolved_after=None, agent="", case=None, **fields):
    """An item created at ``created``; RESOLVED ``resolved_after`` minutes later when given, else OPEN."""
    if resolved_after is not None:
        fields.update(
            state=ReviewState.RESOLVED,
            resolved_at=created + dt.timedelta(minutes=resolved_after),
            resolution="NO_ACTION",
            accepted_agent_action_urn=agent,
        )
    extra = {"case": case} if case is not None else {}
    return ReviewItemFactory(category=category, created_at=created, **extra, **fields)


@pytest.fixture
def week_items():
    """IB's week: 3 ALLOCATION_FAILED (resolved after 30 and 90 min, one by an agent action; one open),
    2 BOOKING_FAILED (resolved after 15 min; one ESCALATED), 1 POLICY_VIOLATION open; and items just outside
    the week on both sides."""
    case = CaseFactory(airline="IB", airport="MAD")
    economy = SubCaseFactory(case=case, airline="IB", tier=Tier.ECONOMY)
    business = SubCaseFactory(case=case, airline="IB", tier=Tier.BUSINESS)
    policy = active_policy(airline="IB", name="MAD economy", scope_airport="MAD", scope_tier=Tier.ECONOMY)
    allocation = {"case": case, "affected_subcase_urns": [economy.urn]}
    item(ReviewCategory.ALLOCATION_FAILED, created=at(0, 5), resolved_after=30, agent=AGENT_ACTION, **allocation)
    item(ReviewCategory.ALLOCATION_FAILED, created=at(2), resolved_after=90, **allocation)
    item(ReviewCategory.ALLOCATION_FAILED, created=at(6, 23 * 60 + 59), **allocation)  # Sunday 23:59Z: in
    item(ReviewCategory.POLICY_VIOLATION, created=at(3), case=case, affected_subcase_urns=[business.urn])

    full = HotelFactory(airline="IB", vendor_ids={"stayhub": "SH-1"})  # one vendor sells it
    shared = HotelFactory(airline="IB", vendor_ids={"stayhub": "SH-2", "globerooms": "GR-2"})
    ReservationFactory(
        case=case, hotel=shared, source=ReservationSource.VENDOR, vendor="globerooms", status=ReservationStatus.FAILED
    )
    attempted = [
        {"hotelUrn": full.urn, "reason": "hotel-full"},
        {"hotelUrn": shared.urn, "reason": "timeout", "providerError": "timeout: no answer"},
        {"hotelUrn": None, "reason": "", "providerError": "rate_not_found: gone"},
    ]
    item(created=at(1), resolved_after=15, case=case, attempted_hotels=attempted)
    item(
        created=at(4),
        case=case,
        state=ReviewState.ESCALATED,
        attempted_hotels=[{"hotelUrn": full.urn, "reason": "hotel-full"}, {"hotelUrn": None, "vendor": "nightbed"}],
    )
    # Outside the week: the Sunday before (23:59:59Z) and the next Monday 00:00Z.
    item(ReviewCategory.ALLOCATION_FAILED, created=at(0, -1 / 60), resolved_after=1, case=case)
    item(ReviewCategory.ALLOCATION_FAILED, created=at(7), case=case, attempted_hotels=attempted)
    return {"case": case, "policy": policy}


def get_report(client, week=WEEK, **params):
    return client.get(URL, {"week": week, **params})


def test_report_counts_mttr_agent_share_and_top_lists(client_for, week_items):
    response = get_report(client_for("IB", Role.OPS_SUPERVISOR))
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["week"], body["airline"]) == (WEEK, "IB")
    assert (body["from"], body["to"]) == ("2026-11-23T00:00:00Z", "2026-11-30T00:00:00Z")
    assert body["byCategory"]["ALLOCATION_FAILED"] == {"created": 3, "resolved": 2, "open": 1}
    assert body["byCategory"]["BOOKING_FAILED"] == {"created": 2, "resolved": 1, "open": 1}
    assert body["byCategory"]["POLICY_VIOLATION"] == {"created": 1, "resolved": 0, "open": 1}
    assert body["byCategory"]["PAYMENT_FAILED"] == {"created": 0, "resolved": 0, "open": 0}
    assert set(body["byCategory"]) == set(ReviewCategory.values)
    # (30 + 90) / 2 and 15; overall (30 + 90 + 15) / 3.
    assert body["mttrMinutes"]["byCategory"]["ALLOCATION_FAILED"] == 60.0
    assert body["mttrMinutes"]["byCategory"]["BOOKING_FAILED"] == 15.0
    assert body["mttrMinutes"]["byCategory"]["POLICY_VIOLATION"] is None
    assert body["mttrMinutes"]["overall"] == 45.0
    assert body["agentAcceptedShare"] == round(1 / 3, 4)

    policy = week_items["policy"]
    assert body["topFailingPolicies"] == [
        {
            "policyUrn": policy.urn,
            "policyName": "MAD economy",
            "scope": {"airport": "MAD", "tier": "ECONOMY", "cause": ""},
            "failures": 3,
            "byCategory": {"ALLOCATION_FAILED": 3},
        },
        {
            "policyUrn": None,
            "policyName": None,
            "scope": {"airport": "MAD", "tier": "BUSINESS", "cause": "CANCELLATION"},
            "failures": 1,
            "byCategory": {"POLICY_VIOLATION": 1},
        },
    ]
    assert body["topFailingProviders"] == [
        {"provider": "stayhub", "failures": 2, "reasons": {"hotel-full": 2}},
        {"provider": "globerooms", "failures": 1, "reasons": {"timeout": 1}},
        {"provider": "nightbed", "failures": 1, "reasons": {"unknown": 1}},
        {"provider": "unknown", "failures": 1, "reasons": {"rate_not_found": 1}},
    ]


def test_a_recorded_policy_urn_wins_and_the_lists_stop_at_five(client_for):
    recorded = active_policy(airline="IB", name="recorded", scope_airport="BCN")
    case = CaseFactory(airline="IB")
    for _ in range(2):
        item(ReviewCategory.ALLOCATION_FAILED, created=at(1), case=case, failure={"policyUrn": recorded.urn})
    vendors = ["v1", "v2", "v3", "v4", "v5", "v6", "v7"]
    item(created=at(1), case=case, attempted_hotels=[{"hotelUrn": None, "vendor": v, "reason": "x"} for v in vendors])
    body = get_report(client_for("IB", Role.OPS_SUPERVISOR)).json()
    assert [(p["policyUrn"], p["failures"]) for p in body["topFailingPolicies"]] == [(recorded.urn, 2)]
    assert [p["provider"] for p in body["topFailingProviders"]] == ["v1", "v2", "v3", "v4", "v5"]


def test_an_empty_week_has_zeros_and_nulls(client_for):
    body = get_report(client_for("IB", Role.FINANCE_AUDIT), week="2020-W01").json()
    assert all(counts == {"created": 0, "resolved": 0, "open": 0} for counts in body["byCategory"].values())
    assert body["mttrMinutes"]["overall"] is None
    assert (body["agentAcceptedShare"], body["topFailingPolicies"], body["topFailingProviders"]) == (None, [], [])


def test_another_airlines_items_are_never_counted(client_for, week_items):
    lh_case = CaseFactory(airline="LH")
    lh_hotel = HotelFactory(airline="LH", vendor_ids={"lhvendor": "1"})
    for minutes in (1, 2, 3):
        item(
            ReviewCategory.ALLOCATION_FAILED,
            created=at(1),
            resolved_after=minutes,
            agent=AGENT_ACTION,
            case=lh_case,
            attempted_hotels=[{"hotelUrn": lh_hotel.urn, "reason": "hotel-full"}],
        )
    ib = get_report(client_for("IB", Role.OPS_SUPERVISOR)).json()
    assert ib["byCategory"]["ALLOCATION_FAILED"]["created"] == 3
    assert ib["agentAcceptedShare"] == round(1 / 3, 4)
    assert "lhvendor" not in {p["provider"] for p in ib["topFailingProviders"]}
    lh = get_report(client_for("LH", Role.OPS_SUPERVISOR)).json()
    assert lh["byCategory"]["ALLOCATION_FAILED"] == {"created": 3, "resolved": 3, "open": 0}
    assert lh["byCategory"]["BOOKING_FAILED"]["created"] == 0
    assert (lh["mttrMinutes"]["overall"], lh["agentAcceptedShare"]) == (2.0, 1.0)
    assert lh["topFailingProviders"] == [{"provider": "lhvendor", "failures": 3, "reasons": {"hotel-full": 3}}]


# --- CSV ------------------------------------------------------------------------------------------------------


def _table(response) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(response.content.decode("utf-8"))))


@pytest.mark.parametrize("how", ["accept", "format"])
def test_csv_by_accept_header_or_format_parameter(client_for, week_items, how):
    client = client_for("IB", Role.FINANCE_AUDIT)
    if how == "accept":
        response = client.get(URL, {"week": WEEK}, HTTP_ACCEPT="text/csv")
    else:
        response = get_report(client, format="csv")
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="review-report-IB-2026-W48.csv"'
    header = response.content.decode().splitlines()[0]
    assert header == (
        "airline,week,section,key,name,created,resolved,open,mttr_minutes,agent_accepted_share,failures,detail"
    )
    rows = _table(response)
    by_key = {(row["section"], row["key"]): row for row in rows}
    assert [row["section"] for row in rows] == ["category"] * 7 + ["total"] + ["policy"] * 2 + ["provider"] * 4
    allocation = by_key["category", "ALLOCATION_FAILED"]
    assert (allocation["created"], allocation["resolved"], allocation["open"], allocation["mttr_minutes"]) == (
        "3", "2", "1", "60.0",
    )  # fmt: skip
    total = by_key["total", "ALL"]
    assert (total["created"], total["resolved"], total["open"]) == ("6", "3", "3")
    assert (total["mttr_minutes"], total["agent_accepted_share"]) == ("45.0", str(round(1 / 3, 4)))
    policy = by_key["policy", week_items["policy"].urn]
    assert (policy["name"], policy["failures"], policy["detail"]) == ("MAD economy", "3", "ALLOCATION_FAILED=3")
    assert by_key["policy", "no-policy:MAD/BUSINESS/CANCELLATION"]["failures"] == "1"
    assert by_key["provider", "stayhub"]["detail"] == "hotel-full=2"
    assert all(row["airline"] == "IB" and row["week"] == WEEK for row in rows)


def test_csv_cells_a_spreadsheet_would_evaluate_are_neutralised(client_for):
    case = CaseFactory(airline="IB")
    item(created=at(1), case=case, attempted_hotels=[{"hotelUrn": None, "vendor": "=HYPERLINK(1)", "reason": "x"}])
    response = get_report(client_for("IB", Role.OPS_SUPERVISOR), format="csv")
    provider = next(row for row in _table(response) if row["section"] == "provider")
    assert provider["key"] == "'=HYPERLINK(1)"


# --- bad input ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "week", ["2026-W99", "2026-W00", "2025-W53", "0999-W10", "2026-W54", "2026-48", "W48", "", None, "2026-W48x"]
)
def test_a_bad_or_missing_week_is_a_400_naming_it(client_for, week):
    params = {} if week is None else {"week": week}
    body = assert_problem(client_for("IB", Role.OPS_SUPERVISOR).get(URL, params), 400, "validation-error")
    assert [error["field"] for error in body["errors"]] == ["week"]


def test_a_bad_week_is_a_400_problem_in_csv_too(client_for):
    body = assert_problem(get_report(client_for("IB", Role.OPS_SUPERVISOR), week="2026-W99", format="csv"), 400,
                          "validation-error")  # fmt: skip
    assert body["errors"] == [{"field": "week", "message": "2026 has no ISO week 99 (weeks run from 01 to 52 or 53)."}]


def test_an_unknown_format_is_a_400_naming_it(client_for):
    body = assert_problem(get_report(client_for("IB", Role.OPS_SUPERVISOR), format="xml"), 400, "validation-error")
    assert [error["field"] for error in body["errors"]] == ["format"]


def test_week_53_exists_in_long_years(client_for):
    response = get_report(client_for("IB", Role.OPS_SUPERVISOR), week="2025-W53")
    assert response.status_code == 400  # 2025 has 52 ISO weeks
    response = get_report(client_for("IB", Role.OPS_SUPERVISOR), week="2026-W53")  # 2026 starts on a Thursday
    assert response.status_code == 200, response.content
    assert (response.json()["from"], response.json()["to"]) == ("2026-12-28T00:00:00Z", "2027-01-04T00:00:00Z")


def test_the_last_representable_week_ends_at_the_last_instant(client_for):
    body = get_report(client_for("IB", Role.OPS_SUPERVISOR), week="9999-W52").json()
    assert (body["from"], body["to"]) == ("9999-12-27T00:00:00Z", "9999-12-31T23:59:59.999999Z")


def test_reports_is_not_read_as_an_item_urn(client_for):
    """The route is mounted before manual-review/<review_urn>: "reports" never reaches the item detail."""
    response = client_for("IB", Role.OPS_SUPERVISOR).get("/v1/manual-review/reports/weekly", {"week": WEEK})
    assert response.status_code == 200
    assert "byCategory" in response.json()


# --- the platform contracts: roles (FINANCE_AUDIT and OPS_SUPERVISOR+), 401 ------------------------------------


def _counts_own_item(response, objects) -> bool:
    return response.json()["byCategory"]["BOOKING_FAILED"]["created"] == 1


class TestWeeklyReportContract(APIContractTests):
    routes = (
        RouteContract(
            "weekly report",
            "GET",
            f"{URL}?week={WEEK}",
            any_of=(Role.FINANCE_AUDIT, Role.OPS_SUPERVISOR),
            check=_counts_own_item,
        ),
        RouteContract(
            "weekly report csv",
            "GET",
            f"{URL}?week={WEEK}&format=csv",
            any_of=(Role.FINANCE_AUDIT, Role.OPS_SUPERVISOR),
            check=lambda response, objects: response["Content-Type"].startswith("text/csv"),
        ),
    )

    def make_objects(self, airline):
        return {"item": item(created=at(1), case=CaseFactory(airline=airline))}


def test_airport_operator_is_refused(client_for):
    body = assert_problem(get_report(client_for("IB", Role.AIRPORT_OPERATOR)), 403, "forbidden")
    assert "AIRPORT_OPERATOR" in body["detail"]
