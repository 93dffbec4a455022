"""The platform contracts of the allocation routes (tests/api_base.py): roles, 401, 404 across tenants, 400
for malformed URNs, audited writes. Behaviour is in tests/cases/test_allocation.py."""

import pytest

from booking.hotels import hotels_seed_demo
from nexa.platform.roles import Role
from tests.api_base import APIContractTests, RouteContract
from tests.cases.factories import CaseFactory
from tests.cases.test_allocation import GENEROUS_RULES, VENDORS, engine, grouped, make_wave  # noqa: F401 - fixture
from tests.policies.factories import active_policy


def _placed(response, objects) -> bool:
    plan = response.json()
    occupants = [o for a in plan["assignments"] for r in a["rooms"] for o in r["occupants"]]
    return (
        plan["demandUrn"] == objects["wave"].urn
        and plan["caseUrn"] == objects["case"].urn
        and sorted(occupants) == sorted(s.urn for s in objects["sub_cases"])
        and plan["unallocated"] == []
    )


class TestAllocationAPIContract(APIContractTests):
    routes = (
        RouteContract(
            "allocate",
            "POST",
            "/v1/allocation/allocate",
            min_role=Role.OPS_SUPERVISOR,
            expect_status=201,
            body=lambda objects: {"demandUrn": objects["wave"].urn},
            audit_actions=("allocation.created", "demand.allocated", "subcase.mark_allocated", "hotel.searched"),
            check=_placed,
        ),
        RouteContract(
            "case-allocate",
            "POST",
            "/v1/cases/{case}/allocate",
            min_role=Role.OPS_SUPERVISOR,
            expect_status=201,
            body=lambda objects: {"demandUrn": objects["wave"].urn},
            audit_actions=("allocation.created", "demand.allocated", "subcase.mark_allocated"),
            check=_placed,
        ),
    )

    @pytest.fixture(autouse=True)
    def _world(self, transactional_db, simulator_control, settings, engine):  # noqa: F811 - the engine fixture
        # transactional_db: the searches and policies are read on their own connections (compose workers), so
        # the objects must be committed (the base's class mark is django_db without transaction).
        settings.NEXA_HOTEL_VENDORS = list(VENDORS)

    def make_objects(self, airline):
        hotels_seed_demo(airline=airline)
        active_policy(airline=airline, rules=dict(GENEROUS_RULES))
        case = CaseFactory(airline=airline, airport="MAD")
        sub_cases = grouped(case, [[], []], [[]])
        return {"case": case, "wave": make_wave(case, sub_cases), "sub_cases": sub_cases}
