"""The demand routes over HTTP: POST /v1/demand/case/{case_urn}, POST /v1/demand/{demand_urn}/approve|reject and
GET /v1/demand/pending/approvals — the platform contracts through the shared API test base (role matrix, 401,
404 across tenants, malformed URNs, audit), then what each route answers: bodies, every refusal, the queue's
order and pages, idempotent replays and the OpenAPI operations."""

import datetime as dt
import json

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from audit.models import AuditEntry
from cases.models import DemandStatus, DemandWave, SpecialNeed, SubCaseStatus
from nexa.platform.models import OutboxEvent
from nexa.platform.roles import Role
from nexa.platform.urns import new_urn
from tests.api_base import APIContractTests, RouteContract, assert_problem
from tests.cases.demand_helpers import demand_body, grouped_case, lapse, make_wave, today
from tests.cases.factories import PassengerGroupFactory, SubCaseFactory

pytestmark = pytest.mark.django_db

PENDING = "/v1/demand/pending/approvals"


def request_url(case) -> str:
    return f"/v1/demand/case/{case.urn}"


def post(client, url, body, **headers):
    return client.post(url, data=json.dumps(body), content_type="application/json", **headers)


def error_fields(response, status=400) -> list[str]:
    slug = "validation-error" if status == 400 else "unprocessable"
    return [error["field"] for error in assert_problem(response, status, slug)["errors"]]


@pytest.fixture
def operator(client_for):
    return client_for("IB", Role.AIRPORT_OPERATOR)


@pytest.fixture
def supervisor(client_for):
    return client_for("IB", Role.OPS_SUPERVISOR)


# --- the route contracts ------------------------------------------------------------------------------


def _requested(response, objects) -> bool:
    body = response.json()
    return (
        body["caseUrn"] == objects["case"].urn
        and body["status"] == "PENDING_APPROVAL"
        and body["people"] == 3
        and body["rooms"] == 2
        and sorted(body["subCaseUrns"]) == sorted(s.urn for s in objects["passengers"])
    )


def _resolved(status):
    def check(response, objects) -> bool:
        body = response.json()
        return body["urn"] == objects["demand"].urn and body["status"] == status and body["resolvedAt"] is not None

    return check


def _queue(response, objects) -> bool:
    # Another airline's pending wave exists too: only the caller's is listed.
    return [item["urn"] for item in response.json()["items"]] == [objects["demand"].urn]


class TestDemandAPIContract(APIContractTests):
    routes = (
        RouteContract(
            "request",
            "POST",
            "/v1/demand/case/{case}",
            min_role=Role.AIRPORT_OPERATOR,
            expect_status=201,
            body=lambda objects: demand_body(),
            audit_actions=("demand.requested",),
            check=_requested,
        ),
        RouteContract(
            "approve",
            "POST",
            "/v1/demand/{demand}/approve",
            min_role=Role.OPS_SUPERVISOR,
            body={"reason": "rooms needed tonight"},
            audit_actions=("demand.approved",),
            check=_resolved("APPROVED"),
        ),
        RouteContract(
            "reject",
            "POST",
            "/v1/demand/{demand}/reject",
            min_role=Role.OPS_SUPERVISOR,
            body={"reason": "passengers rebooked tonight"},
            audit_actions=("demand.rejected",),
            check=_resolved("REJECTED"),
        ),
        RouteContract("pending", "GET", PENDING, min_role=Role.OPS_SUPERVISOR, check=_queue),
    )

    def make_objects(self, airline):
        case, _, members = grouped_case(airline, sizes=(2, 1))
        other, _, waiting = grouped_case(airline, sizes=(2,))
        return {
            "case": case,
            "passengers": [s for group in members for s in group],
            "demand": make_wave(other, waiting[0]),
        }


# --- POST /v1/demand/case/{case_urn} ------------------------------------------------------------------


def test_request_answers_the_wave_and_writes_it(operator):
    case, groups, members = grouped_case(sizes=(3, 1))
    before = timezone.now()
    response = post(operator, request_url(case), demand_body(nights=2, reason="  storm  "))
    assert response.status_code == 201, response.content
    body = response.json()
    wave = DemandWave.objects.get()
    assert body["urn"] == wave.urn and body["kind"] == "INITIAL" and body["status"] == "PENDING_APPROVAL"
    assert (body["people"], body["rooms"]) == (4, 3)  # ceil(3/2) + ceil(1/2)
    assert body["checkIn"] == today().isoformat() and body["nights"] == 2 and body["reason"] == "storm"
    assert body["requestedBy"] == "urn:nexa:user:ib-airport_operator"
    assert body["groupUrns"] == [g.urn for g in groups]
    assert body["subCaseUrns"] == [s.urn for group in members for s in group]
    assert body["resolvedBy"] is None and body["resolvedAt"] is None and body["resolutionReason"] is None
    created = dt.datetime.fromisoformat(body["createdAt"])
    assert before <= created <= timezone.now()
    assert dt.datetime.fromisoformat(body["expiresAt"]) - created == dt.timedelta(minutes=30)
    assert body["ageSeconds"] == 0 and body["version"] == 1
    entry = AuditEntry.objects.get(action="demand.requested")
    assert entry.entity_urn == wave.urn and entry.case_urn == case.urn and entry.reason == "storm"
    assert entry.after["people"] == 4
    updated = OutboxEvent.objects.filter(event="case:updated").last()
    assert updated is not None and updated.payload["caseUrn"] == case.urn


def test_request_by_groups_or_sub_cases(operator):
    case, groups, members = grouped_case(sizes=(2, 2, 1))
    by_group = post(operator, request_url(case), demand_body(groupUrns=[groups[1].urn]))
    assert by_group.status_code == 201, by_group.content
    assert by_group.json()["subCaseUrns"] == [s.urn for s in members[1]]
    named = post(operator, request_url(case), demand_body(kind="INCREMENTAL", subCaseUrns=[members[2][0].urn]))
    assert named.status_code == 201, named.content
    assert named.json()["subCaseUrns"] == [members[2][0].urn] and named.json()["groupUrns"] == [groups[2].urn]
    rest = post(operator, request_url(case), demand_body(kind="INCREMENTAL"))
    assert rest.status_code == 201, rest.content
    assert rest.json()["subCaseUrns"] == [s.urn for s in members[0]]


def test_a_second_initial_wave_is_a_409_naming_the_first(operator):
    case, _, members = grouped_case(sizes=(2,))
    late = SubCaseFactory(case=case, group=PassengerGroupFactory(case=case), status=SubCaseStatus.GROUPED)
    first = post(operator, request_url(case), demand_body(subCaseUrns=[s.urn for s in members[0]]))
    assert first.status_code == 201
    second = post(operator, request_url(case), demand_body(subCaseUrns=[late.urn]))
    body = assert_problem(second, 409, "demand-initial-exists")
    assert body["existingDemandUrn"] == first.json()["urn"] and first.json()["urn"] in body["detail"]
    assert DemandWave.objects.count() == 1


def test_incremental_before_any_initial_is_a_409(operator):
    case, _, _ = grouped_case()
    assert_problem(post(operator, request_url(case), demand_body(kind="INCREMENTAL")), 409, "demand-initial-missing")


def test_a_rejected_initial_wave_may_be_asked_again(operator, supervisor):
    case, _, _ = grouped_case()
    first = post(operator, request_url(case), demand_body()).json()
    assert post(supervisor, f"/v1/demand/{first['urn']}/reject", {"reason": "wrong date"}).status_code == 200
    again = post(operator, request_url(case), demand_body())
    assert again.status_code == 201 and again.json()["people"] == 2


def test_an_expired_initial_wave_frees_its_passengers_and_is_stored_expired(operator):
    case, _, members = grouped_case()
    stale = make_wave(case, members[0])
    lapse(stale)
    response = post(operator, request_url(case), demand_body())
    assert response.status_code == 201, response.content
    assert response.json()["people"] == 2
    stale.refresh_from_db()
    assert stale.status == DemandStatus.EXPIRED
    assert AuditEntry.objects.filter(action="demand.expired", entity_urn=stale.urn).exists()


def test_a_passenger_in_an_open_wave_is_a_422_naming_them_and_the_wave(operator):
    case, groups, members = grouped_case(sizes=(2, 1))
    wave = make_wave(case, members[0])
    named = post(operator, request_url(case), demand_body(kind="INCREMENTAL", subCaseUrns=[members[0][1].urn]))
    body = assert_problem(named, 422, "unprocessable")
    assert body["errors"][0]["field"] == "subCaseUrns[0]"
    assert members[0][1].urn in body["errors"][0]["message"] and wave.urn in body["errors"][0]["message"]
    grouped = post(
        operator, request_url(case), demand_body(kind="INCREMENTAL", groupUrns=[groups[1].urn, groups[0].urn])
    )
    assert error_fields(grouped, 422) == ["groupUrns[1]", "groupUrns[1]"]
    # An approved (or allocated) wave holds its passengers too.
    DemandWave.objects.filter(pk=wave.pk).update(status=DemandStatus.APPROVED)
    assert error_fields(
        post(operator, request_url(case), demand_body(kind="INCREMENTAL", subCaseUrns=[members[0][0].urn])), 422
    ) == ["subCaseUrns[0]"]
    assert DemandWave.objects.count() == 1


def test_an_ungrouped_passenger_is_a_422_naming_them(operator):
    case, _, members = grouped_case()
    pending = SubCaseFactory(case=case)  # PENDING, in no group
    response = post(operator, request_url(case), demand_body(subCaseUrns=[members[0][0].urn, pending.urn]))
    body = assert_problem(response, 422, "unprocessable")
    assert [e["field"] for e in body["errors"]] == ["subCaseUrns[1]"]
    assert pending.urn in body["errors"][0]["message"] and "PENDING" in body["errors"][0]["message"]


def test_nobody_left_to_ask_for_is_a_422(operator):
    case, _, members = grouped_case()
    make_wave(case, members[0])
    assert error_fields(post(operator, request_url(case), demand_body(kind="INCREMENTAL")), 422) == ["subCaseUrns"]
    ungrouped, _, _ = grouped_case(sizes=())
    SubCaseFactory(case=ungrouped)
    assert error_fields(post(operator, request_url(ungrouped), demand_body()), 422) == ["subCaseUrns"]


def test_urns_of_another_case_or_airline_are_a_400_naming_them(operator):
    case, _, _ = grouped_case()
    _elsewhere, groups, members = grouped_case()
    _foreign, foreign_groups, foreign_members = grouped_case("LH")
    response = post(
        operator, request_url(case), demand_body(subCaseUrns=[members[0][0].urn, foreign_members[0][0].urn])
    )
    assert error_fields(response) == ["subCaseUrns[0]", "subCaseUrns[1]"]
    response = post(operator, request_url(case), demand_body(groupUrns=[groups[0].urn, foreign_groups[0].urn]))
    assert error_fields(response) == ["groupUrns[0]", "groupUrns[1]"]
    assert not DemandWave.objects.exists()


@pytest.mark.parametrize(
    ("overrides", "fields"),
    [
        ({"kind": None, "checkIn": None, "nights": None, "reason": None}, ["kind", "checkIn", "nights", "reason"]),
        ({"kind": "FINAL"}, ["kind"]),
        ({"checkIn": "2026-12-1"}, ["checkIn"]),
        ({"checkIn": "20261201"}, ["checkIn"]),
        ({"checkIn": "2026-02-30"}, ["checkIn"]),
        ({"checkIn": 20261201}, ["checkIn"]),
        ({"checkIn": "2020-01-01"}, ["checkIn"]),
        ({"nights": 0}, ["nights"]),
        ({"nights": 15}, ["nights"]),
        ({"nights": "1"}, ["nights"]),
        ({"nights": True}, ["nights"]),
        ({"nights": 1.5}, ["nights"]),
        ({"reason": "   "}, ["reason"]),
        ({"reason": ""}, ["reason"]),
        ({"reason": 42}, ["reason"]),
        ({"reason": "x" * 2001}, ["reason"]),
        ({"subCaseUrns": []}, ["subCaseUrns"]),
        ({"subCaseUrns": "urn"}, ["subCaseUrns"]),
        ({"subCaseUrns": ["not-a-urn"]}, ["subCaseUrns[0]"]),
        ({"groupUrns": [new_urn("subcase")]}, ["groupUrns[0]"]),
    ],
)
def test_bad_input_is_a_400_naming_each_field(operator, overrides, fields):
    case, _, _ = grouped_case()
    assert error_fields(post(operator, request_url(case), demand_body(**overrides))) == fields
    assert not DemandWave.objects.exists()


def test_both_lists_or_a_repeated_urn_are_a_400(operator):
    case, groups, members = grouped_case()
    both = demand_body(groupUrns=[groups[0].urn], subCaseUrns=[members[0][0].urn])
    assert error_fields(post(operator, request_url(case), both)) == ["groupUrns"]
    twice = demand_body(subCaseUrns=[members[0][0].urn, members[0][0].urn])
    assert error_fields(post(operator, request_url(case), twice)) == ["subCaseUrns[1]"]
    assert error_fields(post(operator, request_url(case), ["not", "an", "object"])) == [
        "kind",
        "checkIn",
        "nights",
        "reason",
    ]


def test_an_integral_float_is_an_integer(operator):
    case, _, _ = grouped_case()
    response = post(operator, request_url(case), demand_body(nights=2.0))
    assert response.status_code == 201 and response.json()["nights"] == 2


def test_rooms_estimate_gives_an_unaccompanied_minor_a_room_of_their_own(operator):
    case, groups, _members = grouped_case(sizes=(3,))
    SubCaseFactory(
        case=case, group=groups[0], status=SubCaseStatus.GROUPED, special_needs=[SpecialNeed.UNACCOMPANIED_MINOR]
    )
    body = post(operator, request_url(case), demand_body()).json()
    assert (body["people"], body["rooms"]) == (4, 3)  # the minor alone + ceil(3/2)


def test_the_airlines_ttl_sets_expires_at(operator):
    from nexa.platform.models import TenantSettings

    TenantSettings.objects.create(airline="IB", demand_approval_ttl_minutes=5)
    case, _, _ = grouped_case()
    body = post(operator, request_url(case), demand_body()).json()
    created, expires = (dt.datetime.fromisoformat(body[k]) for k in ("createdAt", "expiresAt"))
    assert expires - created == dt.timedelta(minutes=5)


def test_an_idempotent_request_replays_the_same_wave(operator):
    case, _, _ = grouped_case()
    headers = {"HTTP_IDEMPOTENCY_KEY": "demand-ib3166-initial"}
    first = post(operator, request_url(case), demand_body(), **headers)
    again = post(operator, request_url(case), demand_body(), **headers)
    assert first.status_code == again.status_code == 201
    assert again["Idempotent-Replayed"] == "true" and again.content == first.content
    assert DemandWave.objects.count() == 1
    assert AuditEntry.objects.filter(action="demand.requested").count() == 1


# --- approve / reject ---------------------------------------------------------------------------------


def test_approve_answers_the_approved_wave(supervisor):
    case, _, members = grouped_case()
    wave = make_wave(case, members[0])
    response = post(supervisor, f"/v1/demand/{wave.urn}/approve", {"reason": " go ahead "})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "APPROVED" and body["version"] == 2
    assert body["resolvedBy"] == "urn:nexa:user:ib-ops_supervisor" and body["resolutionReason"] == "go ahead"
    assert body["subCaseUrns"] == [s.urn for s in members[0]]
    entry = AuditEntry.objects.get(action="demand.approved")
    assert entry.entity_urn == wave.urn and entry.before["status"] == "PENDING_APPROVAL"
    assert entry.after["status"] == "APPROVED" and entry.reason == "go ahead"
    assert OutboxEvent.objects.filter(event="case:updated", payload__caseUrn=case.urn).count() == 1


def test_resolving_twice_is_a_409_naming_the_current_status(supervisor):
    case, _, members = grouped_case()
    wave = make_wave(case, members[0])
    assert post(supervisor, f"/v1/demand/{wave.urn}/reject", {"reason": "no"}).status_code == 200
    for action in ("approve", "reject"):
        body = assert_problem(
            post(supervisor, f"/v1/demand/{wave.urn}/{action}", {"reason": "again"}), 409, "demand-already-resolved"
        )
        assert body["currentStatus"] == "REJECTED" and "REJECTED" in body["detail"]
    DemandWave.objects.filter(pk=wave.pk).update(status=DemandStatus.ALLOCATED)
    body = assert_problem(
        post(supervisor, f"/v1/demand/{wave.urn}/approve", {"reason": "x"}), 409, "demand-already-resolved"
    )
    assert body["currentStatus"] == "ALLOCATED"


def test_an_expired_wave_is_a_409_and_is_stored_expired(supervisor):
    case, _, members = grouped_case()
    wave = make_wave(case, members[0])
    lapse(wave)
    body = assert_problem(post(supervisor, f"/v1/demand/{wave.urn}/approve", {"reason": "late"}), 409, "demand-expired")
    assert body["currentStatus"] == "EXPIRED"
    wave.refresh_from_db()
    assert wave.status == DemandStatus.EXPIRED and wave.resolved_at is None
    assert AuditEntry.objects.filter(action="demand.expired", entity_urn=wave.urn).count() == 1
    assert not AuditEntry.objects.filter(action="demand.approved").exists()
    # Stored now: a second attempt is the same refusal, without a second expiry row.
    assert_problem(post(supervisor, f"/v1/demand/{wave.urn}/reject", {"reason": "late"}), 409, "demand-expired")
    assert AuditEntry.objects.filter(action="demand.expired").count() == 1


def test_resolve_needs_a_reason(supervisor):
    case, _, members = grouped_case()
    wave = make_wave(case, members[0])
    for body in ({}, {"reason": "  "}, {"reason": 1}, {"reason": "x" * 2001}):
        assert error_fields(post(supervisor, f"/v1/demand/{wave.urn}/approve", body)) == ["reason"]
    wave.refresh_from_db()
    assert wave.status == DemandStatus.PENDING_APPROVAL


def test_an_unknown_wave_is_a_404(supervisor):
    assert_problem(post(supervisor, f"/v1/demand/{new_urn('demand')}/approve", {"reason": "x"}), 404, "not-found")


def test_an_idempotent_approval_replays_the_200(supervisor):
    case, _, members = grouped_case()
    wave = make_wave(case, members[0])
    headers = {"HTTP_IDEMPOTENCY_KEY": "approve-once"}
    first = post(supervisor, f"/v1/demand/{wave.urn}/approve", {"reason": "ok"}, **headers)
    again = post(supervisor, f"/v1/demand/{wave.urn}/approve", {"reason": "ok"}, **headers)
    assert first.status_code == again.status_code == 200
    assert again["Idempotent-Replayed"] == "true" and again.content == first.content
    assert AuditEntry.objects.filter(action="demand.approved").count() == 1


def test_an_operator_may_request_but_not_approve_and_finance_audit_nothing(client_for):
    case, _, _members = grouped_case()
    operator, finance = client_for("IB", Role.AIRPORT_OPERATOR), client_for("IB", Role.FINANCE_AUDIT)
    wave = post(operator, request_url(case), demand_body()).json()
    assert_problem(post(operator, f"/v1/demand/{wave['urn']}/approve", {"reason": "x"}), 403, "forbidden")
    assert_problem(operator.get(PENDING), 403, "forbidden")
    assert_problem(post(finance, request_url(case), demand_body()), 403, "forbidden")
    assert_problem(post(finance, f"/v1/demand/{wave['urn']}/reject", {"reason": "x"}), 403, "forbidden")
    assert_problem(finance.get(PENDING), 403, "forbidden")
    assert DemandWave.objects.get().status == DemandStatus.PENDING_APPROVAL


def test_another_airlines_wave_and_case_are_404_for_every_route(client_for):
    foreign_case, _, members = grouped_case("LH")
    foreign_wave = make_wave(foreign_case, members[0])
    admin = client_for("IB", Role.ADMIN)
    assert_problem(post(admin, request_url(foreign_case), demand_body()), 404, "not-found")
    for action in ("approve", "reject"):
        assert_problem(post(admin, f"/v1/demand/{foreign_wave.urn}/{action}", {"reason": "x"}), 404, "not-found")
    assert admin.get(PENDING).json()["items"] == []
    assert admin.get(PENDING, {"caseUrn": foreign_case.urn}).json()["items"] == []
    foreign_wave.refresh_from_db()
    assert foreign_wave.status == DemandStatus.PENDING_APPROVAL


def test_no_token_is_a_401():
    assert_problem(APIClient().get(PENDING), 401, "unauthorized")


# --- GET /v1/demand/pending/approvals -------------------------------------------------------------------


def test_the_queue_lists_pending_waves_oldest_first_with_age_and_size(supervisor):
    waves = []
    for minutes_ago in (5, 20, 10):
        case, _, members = grouped_case(sizes=(3,))
        wave = make_wave(case, members[0])
        created = timezone.now() - dt.timedelta(minutes=minutes_ago)
        DemandWave.objects.filter(pk=wave.pk).update(created_at=created)
        waves.append(wave)
    approved_case, _, approved_members = grouped_case()
    make_wave(approved_case, approved_members[0], status=DemandStatus.APPROVED)
    lapsed_case, _, lapsed_members = grouped_case()
    lapse(make_wave(lapsed_case, lapsed_members[0]))  # reads EXPIRED though its row still says pending

    items = supervisor.get(PENDING).json()["items"]
    assert [item["urn"] for item in items] == [waves[1].urn, waves[2].urn, waves[0].urn]
    assert [item["ageSeconds"] // 60 for item in items] == [20, 10, 5]
    assert all(item["status"] == "PENDING_APPROVAL" and item["people"] == 3 for item in items)


def test_the_queue_filters_by_case_and_pages_with_stable_cursors(supervisor):
    case, _, members = grouped_case(sizes=(1, 1, 1))
    for index, group in enumerate(members):
        make_wave(case, group, kind="INITIAL" if index == 0 else "INCREMENTAL")
    other, _, other_members = grouped_case()
    make_wave(other, other_members[0])

    first = supervisor.get(PENDING, {"caseUrn": case.urn, "limit": 2}).json()
    assert len(first["items"]) == 2 and first["hasMore"] is True
    late = SubCaseFactory(case=case, status=SubCaseStatus.GROUPED)
    newer = make_wave(case, [late], kind="INCREMENTAL")  # after the first page
    second = supervisor.get(PENDING, {"caseUrn": case.urn, "limit": 2, "cursor": first["nextCursor"]}).json()
    assert len(second["items"]) == 1 and second["hasMore"] is False
    listed = [item["urn"] for item in first["items"] + second["items"]]
    assert newer.urn not in listed and len(set(listed)) == 3
    assert all(item["caseUrn"] == case.urn for item in first["items"] + second["items"])
    # The cursor is bound to its filters.
    assert_problem(supervisor.get(PENDING, {"limit": 2, "cursor": first["nextCursor"]}), 400, "validation-error")
    assert_problem(supervisor.get(PENDING, {"caseUrn": "urn:nexa:case:nope"}), 400, "validation-error")


# --- OpenAPI ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    with django_db_blocker.unblock():
        return APIClient().get("/v1/openapi.json").json()


def test_openapi_documents_the_routes_exactly(schema):
    paths = schema["paths"]
    request = paths["/v1/demand/case/{case_urn}"]["post"]
    assert {"201", "400", "401", "403", "404", "409", "422"} <= set(request["responses"])
    body = schema["components"]["schemas"]["DemandRequestRequest"]
    assert set(body["required"]) == {"kind", "checkIn", "nights", "reason"}
    assert body["properties"]["checkIn"]["format"] == "date"
    assert body["properties"]["nights"]["maximum"] == 14
    for action in ("approve", "reject"):
        operation = paths[f"/v1/demand/{{demand_urn}}/{action}"]["post"]
        assert {"200", "404", "409"} <= set(operation["responses"])
        parameter = next(p for p in operation["parameters"] if p["name"] == "demand_urn")
        assert parameter["schema"]["pattern"].startswith("^urn:nexa:demand:")
    listing = paths[PENDING]["get"]
    assert {p["name"] for p in listing["parameters"]} >= {"limit", "cursor", "caseUrn"}
    wave = schema["components"]["schemas"]["DemandWave"]
    assert {"urn", "caseUrn", "kind", "rooms", "people", "status", "expiresAt", "ageSeconds"} <= set(wave["required"])
    status = wave["properties"]["status"]
    ref = status.get("$ref") or status["allOf"][0]["$ref"]
    assert set(schema["components"]["schemas"][ref.rsplit("/", 1)[1]]["enum"]) == set(DemandStatus.values)
