"""POST /v1/cases/{case_urn}/book-rooms: the platform contracts (roles, 401, 404 across tenants, malformed
URNs, audit) and what a supervisor sees: 202 with one run per group, sub-cases BOOKING, the allocation
BOOKING, replay by Idempotency-Key, a second booking 409, an allocation that is not PLANNED 409, and a
book-rooms driven to NOTIFIED by a REAL worker against the hotel and PSP simulators."""

import json
import time

import pytest

from cases.models import Allocation, AllocationStatus, SagaRun, SubCase
from nexa.platform.models import OutboxEvent
from nexa.platform.roles import Role
from nexa.platform.urns import format_urn, new_id
from notifications.models import Notification
from tests.api_base import APIContractTests, RouteContract, assert_problem
from tests.cases.booking_helpers import allocation_for, check_in_day, new_case, passengers, vendor_offer

BOOK = "/v1/cases/{case}/book-rooms"


def planned(airline: str = "IB", groups: int = 2):
    case, day = new_case(airline), check_in_day()
    allocation = allocation_for(
        case,
        [
            (passengers(case, 2), [vendor_offer(airline, "mad-auditorium", check_in=day, rooms=2)])
            for _ in range(groups)
        ],
        check_in=day,
    )
    return case, allocation


class TestBookRoomsAPIContract(APIContractTests):
    routes = (
        RouteContract(
            "book-rooms",
            "POST",
            BOOK,
            min_role=Role.OPS_SUPERVISOR,
            expect_status=202,
            body=lambda objects: {"allocationUrn": objects["allocation"].urn},
            audit_actions=("allocation.booking_requested", "subcase.start_booking"),
            check=lambda response, objects: len(response.json()["runs"]) == 2,
        ),
    )

    def make_objects(self, airline):
        case, allocation = planned(airline)
        return {"case": case, "allocation": allocation}


def post(client, case, body, **headers):
    return client.post(f"/v1/cases/{case.urn}/book-rooms", data=json.dumps(body), content_type="application/json",
                       **headers)  # fmt: skip


@pytest.mark.django_db
def test_book_rooms_answers_one_run_per_group_and_moves_everyone_to_booking(client_for):
    case, allocation = planned()
    response = post(client_for("IB", Role.OPS_SUPERVISOR), case, {"allocationUrn": allocation.urn})
    assert response.status_code == 202, response.content
    assert response["Location"] == f"/v1/orchestration/cases/{case.urn}/progress"
    body = response.json()
    assert set(body) == {"allocationUrn", "caseUrn", "runs", "partialFailures"}
    assert body["allocationUrn"] == allocation.urn and body["caseUrn"] == case.urn and body["partialFailures"] == []
    groups = allocation.plan["assignments"]
    assert [run["groupUrn"] for run in body["runs"]] == [a["groupUrn"] for a in groups]
    assert [run["subCaseUrns"] for run in body["runs"]] == [[r["occupants"][0] for r in a["rooms"]] for a in groups]
    assert set(SubCase.objects.filter(case=case).values_list("status", flat=True)) == {"BOOKING"}
    assert Allocation.objects.get(pk=allocation.pk).status == AllocationStatus.BOOKING
    requested = OutboxEvent.objects.filter(event="saga:requested", payload__caseUrn=case.urn)
    assert sorted(e.payload["sagaUrn"] for e in requested) == sorted(run["sagaUrn"] for run in body["runs"])
    # The progress route shows the runs with their hotel steps.
    progress = client_for("IB", Role.AIRPORT_OPERATOR).get(f"/v1/orchestration/cases/{case.urn}/progress").json()
    names = [[step["name"] for step in run["steps"]] for run in progress["runs"]]
    assert names == [["hotel.hold", "hotel.pay", "hotel.confirm", "hotel.voucher", "hotel.notify"]] * 2


@pytest.mark.django_db
def test_a_replay_is_the_same_202_and_a_second_booking_is_409(client_for):
    case, allocation = planned()
    client = client_for("IB", Role.OPS_SUPERVISOR)
    first = post(client, case, {"allocationUrn": allocation.urn}, HTTP_IDEMPOTENCY_KEY="book-1")
    replay = post(client, case, {"allocationUrn": allocation.urn}, HTTP_IDEMPOTENCY_KEY="book-1")
    assert first.status_code == replay.status_code == 202
    assert replay.json() == first.json() and replay["Idempotent-Replayed"] == "true"
    assert SagaRun.objects.filter(case=case).count() == 2
    again = post(client, case, {"allocationUrn": allocation.urn})
    body = assert_problem(again, 409, "allocation-not-planned")
    assert body["currentStatus"] == "BOOKING"
    assert SagaRun.objects.filter(case=case).count() == 2


@pytest.mark.django_db
def test_an_allocation_not_planned_is_409_and_one_of_another_case_404(client_for):
    case, allocation = planned()
    Allocation.objects.filter(pk=allocation.pk).update(status=AllocationStatus.SUPERSEDED)
    client = client_for("IB", Role.OPS_SUPERVISOR)
    assert_problem(post(client, case, {"allocationUrn": allocation.urn}), 409, "allocation-not-planned")
    other, _ = planned()
    assert_problem(post(client, other, {"allocationUrn": allocation.urn}), 404, "not-found")
    missing = format_urn("allocation", new_id())
    assert_problem(post(client, case, {"allocationUrn": missing}), 404, "not-found")
    assert set(SubCase.objects.filter(case=case).values_list("status", flat=True)) == {"ALLOCATED"}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "allocationUrn"),
        ({"allocationUrn": "urn:nexa:case:019371a8-5e2c-7c3d-9a4b-2f6e8d1c0b7a"}, "allocationUrn"),
        ({"allocationUrn": "x"}, "allocationUrn"),
        ({"allocationUrn": "urn:nexa:allocation:019371a8-5e2c-7c3d-9a4b-2f6e8d1c0b7a", "extra": 1}, "extra"),
        ([], "body"),
    ],
)
def test_bad_input_is_400_naming_the_field(client_for, body, field):
    case, _ = planned(groups=1)
    problem = assert_problem(post(client_for("IB", Role.OPS_SUPERVISOR), case, body), 400, "validation-error")
    assert field in [error["field"] for error in problem["errors"]]


@pytest.mark.django_db
def test_a_passenger_no_longer_allocated_is_left_out(client_for):
    case, allocation = planned(groups=1)
    gone = SubCase.objects.filter(case=case).order_by("created_at", "id").last()
    SubCase.objects.filter(pk=gone.pk).update(status="CANCELLED")
    response = post(client_for("IB", Role.OPS_SUPERVISOR), case, {"allocationUrn": allocation.urn})
    assert response.status_code == 202
    [run] = response.json()["runs"]
    assert gone.urn not in run["subCaseUrns"] and len(run["subCaseUrns"]) == 1
    [left_out] = response.json()["partialFailures"]
    assert (left_out["subCaseUrn"], left_out["status"]) == (gone.urn, "CANCELLED")


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("simulator_control")
def test_book_rooms_to_notified_with_a_real_worker(client_for, simulator_control, celery_worker_process):
    case, allocation = planned(groups=2)
    response = post(client_for("IB", Role.OPS_SUPERVISOR), case, {"allocationUrn": allocation.urn})
    assert response.status_code == 202
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        statuses = set(SubCase.objects.filter(case=case).values_list("status", flat=True))
        notices = Notification.objects.filter(case=case)
        # Done when everyone is NOTIFIED and the worker has delivered their vouchers (it writes audit rows).
        if statuses == {"NOTIFIED"} and notices.exists() and not notices.filter(status="QUEUED").exists():
            break
        time.sleep(0.2)
    assert statuses == {"NOTIFIED"}, celery_worker_process.log_tail()
    assert notices.filter(template="hotel_voucher").values("sub_case").distinct().count() == 4
    assert len(simulator_control.hotels.vendor("stayhub").entries("confirm")) == 2
    assert len(simulator_control.psp.entries("card_issued")) == 2
    assert set(SagaRun.objects.filter(case=case).values_list("status", flat=True)) == {"COMPLETED"}
