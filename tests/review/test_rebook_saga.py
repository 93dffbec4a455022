"""Rebook driven to the end: ``POST /v1/manual-review/{urn}/rebook`` plans the family and a PRM passenger at the
chosen hotel and a REAL worker runs the room sagas against the hotel and PSP simulators until everyone is NOTIFIED
with a confirmed reservation there; then the item is resolved REBOOKED. In a module of its own: the worker is
module-scoped, and the other rebook tests commit saga requests it must not pick up while their data is flushed."""

import time

import pytest

from audit.models import AuditEntry
from booking.models import Reservation, ReservationStatus
from cases.models import Allocation, AllocationStatus, SagaRun
from nexa.platform.models import OutboxEvent
from nexa.platform.roles import Role
from notifications.models import Notification
from tests.review.test_rebook_override import ANA, post, statuses, vendors, world  # noqa: F401 - vendors: fixture


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("vendors")
def test_rebook_books_the_family_at_the_hotel_through_the_saga_to_notified(client_for, celery_worker_process):
    objects = world(parties=([[], []], [["WHEELCHAIR"]]))
    item, chosen, sub_cases = objects["item"], objects["hotel"], objects["sub_cases"]
    client = client_for("IB", Role.OPS_SUPERVISOR, ANA)

    response = post(client, item, "rebook", {"hotelUrn": chosen.urn, "reason": "agent rec #1"})

    assert response.status_code == 202, response.content
    assert response["Location"] == f"/v1/orchestration/cases/{item.case.urn}/progress"
    body = response.json()
    assert (body["state"], body["assignedTo"], body["resolution"]) == ("CLAIMED", ANA, None)
    [entry] = body["actions"]
    assert (entry["action"], entry["params"], entry["reason"], entry["by"], entry["agentActionUrn"]) == (
        "rebook", {"hotelUrn": chosen.urn}, "agent rec #1", ANA, None,
    )  # fmt: skip
    result = entry["result"]
    allocation = Allocation.objects.get(pk=result["allocationUrn"].rsplit(":", 1)[1])
    assert allocation.demand_id == objects["wave"].pk and allocation.status == AllocationStatus.BOOKING
    assignments = allocation.plan["assignments"]
    assert {a["hotelUrn"] for a in assignments} == {chosen.urn} and allocation.plan["unallocated"] == []
    family, prm = sub_cases[:2], sub_cases[2]
    rooms = [room for a in assignments for room in a["rooms"]]
    assert sorted(sorted(r["occupants"]) for r in rooms) == sorted([sorted(s.urn for s in family), [prm.urn]])
    assert next(r for r in rooms if r["occupants"] == [prm.urn])["accessible"] is True
    runs = SagaRun.objects.filter(case=item.case)
    assert sorted(result["sagaUrns"]) == sorted(run.urn for run in runs) and len(result["sagaUrns"]) == 2
    assert sorted(result["subCaseUrns"]) == sorted(s.urn for s in sub_cases)
    rebooked = OutboxEvent.objects.filter(event="review:rebooked", payload__reviewUrn=item.urn)
    assert rebooked.count() == 1
    assert AuditEntry.objects.filter(action="subcase.reallocate").count() == 3

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        now = statuses(sub_cases)
        notices = Notification.objects.filter(case=item.case)
        if now == {"NOTIFIED"} and notices.exists() and not notices.filter(status="QUEUED").exists():
            break
        time.sleep(0.2)
    assert now == {"NOTIFIED"}, celery_worker_process.log_tail()
    reservations = Reservation.objects.filter(case=item.case, status=ReservationStatus.CONFIRMED)
    assert {r.hotel_id for r in reservations} == {chosen.pk} and reservations.count() == 2
    assert {r.allocation_urn for r in reservations} == {allocation.urn}
    assert sorted(u for r in reservations for room in r.rooms for u in room["occupants"]) == sorted(
        s.urn for s in sub_cases
    )

    # The item stays open until the operator resolves it; REBOOKED leaves the passengers as booked.
    resolved = post(client, item, "resolve", {"resolution": "REBOOKED", "reason": "booked via agent rec #1"})
    assert resolved.status_code == 200 and resolved.json()["state"] == "RESOLVED"
    assert statuses(sub_cases) == {"NOTIFIED"}
