"""The operators domain's events, captured from each service that publishes and checked against the
event registry (``tests.events.capture_events``): lock grants and releases announce
``subcase:state-changed`` with the new ``lockedBy`` to the case room; deactivation also sends the internal
``operator:deactivated`` to the airline room."""

import pytest

from nexa.platform.auth import Principal
from nexa.platform.roles import Role
from operators import services
from operators.models import Operator
from tests.cases.factories import SubCaseFactory
from tests.events import capture_events
from tests.operators.helpers import expire_lease

pytestmark = pytest.mark.django_db

ALICE, BOB = "urn:nexa:user:ib-alice", "urn:nexa:user:ib-bob"


def principal(operator: str = ALICE, role: Role = Role.AIRPORT_OPERATOR) -> Principal:
    return Principal(airline="IB", role=role, operator_urn=operator, subject=operator)


def test_lock_announces_the_holder_to_the_case_room_once():
    sub_case = SubCaseFactory()
    with capture_events() as events:
        services.subcase_lock(principal=principal(), sub_case_urn=sub_case.urn)
    changed = events.one("subcase:state-changed")
    assert changed.payload == {
        "subCaseUrn": sub_case.urn,
        "caseUrn": sub_case.case.urn,
        "status": "PENDING",
        "version": 1,
        "lockedBy": ALICE,
    }
    assert changed.rooms == [f"case:{sub_case.case.urn}"]
    with capture_events() as events:
        services.subcase_lock(principal=principal(), sub_case_urn=sub_case.urn)  # a renewal: no news
    assert events == []


def test_unlock_and_force_unlock_announce_lockedBy_null():
    sub_case = SubCaseFactory()
    services.subcase_lock(principal=principal(), sub_case_urn=sub_case.urn)
    with capture_events() as events:
        services.subcase_unlock(principal=principal(), sub_case_urn=sub_case.urn)
    assert events.names() == ["subcase:state-changed"]
    assert events.one("subcase:state-changed").payload["lockedBy"] is None

    services.subcase_lock(principal=principal(), sub_case_urn=sub_case.urn)
    with capture_events() as events:
        services.subcase_force_unlock(
            principal=principal(BOB, Role.OPS_SUPERVISOR), sub_case_urn=sub_case.urn, reason="holder is away"
        )
    assert events.names() == ["subcase:state-changed"]
    assert events.one("subcase:state-changed").payload["lockedBy"] is None


def test_the_last_session_closing_and_the_expiry_sweep_announce_the_releases():
    first, second = SubCaseFactory(), SubCaseFactory()
    services.operator_session_open(principal=principal(), session_id="sid-events", server_instance="web-1:1")
    services.subcase_lock(principal=principal(), sub_case_urn=first.urn)
    with capture_events() as events:
        services.operator_session_close(session_id="sid-events")
    assert [e.payload["lockedBy"] for e in events] == [None]

    services.subcase_lock(principal=principal(BOB), sub_case_urn=second.urn)
    expire_lease(second.urn)
    with capture_events() as events:
        services.lock_leases_expire_sweep()
    assert [(e.event, e.payload["subCaseUrn"], e.payload["lockedBy"]) for e in events] == [
        ("subcase:state-changed", second.urn, None)
    ]


def test_deactivation_releases_locks_and_tells_every_process_internally():
    sub_case = SubCaseFactory()
    Operator.objects.create(operator_urn=ALICE, airline="IB", role="AIRPORT_OPERATOR", display_name="Alice")
    services.subcase_lock(principal=principal(), sub_case_urn=sub_case.urn)
    admin = principal("urn:nexa:user:ib-admin", Role.ADMIN)
    with capture_events() as events:
        services.operator_deactivate(principal=admin, operator_urn=ALICE, reason="left the company")
    assert sorted(events.names()) == ["operator:deactivated", "subcase:state-changed"]
    deactivated = events.one("operator:deactivated")
    assert deactivated.payload == {"operatorUrn": ALICE} and deactivated.rooms == ["airline:IB"]
    assert events.client() == events.of("subcase:state-changed")
    assert events.one("subcase:state-changed").payload["lockedBy"] is None
