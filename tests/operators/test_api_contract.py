"""The operators routes against the platform contracts (tests/api_base.py): 401, the role matrix,
404 across airlines, 400 for malformed URNs, audit rows on writes."""

from nexa.platform.roles import Role
from operators import services
from tests.api_base import APIContractTests, RouteContract
from tests.cases.factories import CaseFactory, SubCaseFactory
from tests.operators.test_sessions import principal


def _problem_type(slug: str):
    return lambda response, objects: response.json()["type"].endswith("/" + slug)


class TestOperatorsAPIContract(APIContractTests):
    routes = (
        RouteContract(
            "lock",
            "POST",
            "/v1/subcases/{subcase}/lock",
            min_role=Role.AIRPORT_OPERATOR,
            audit_actions=("subcase.lock_granted",),
            check=lambda response, objects: response.json()["subCaseUrn"] == objects["subcase"].urn,
        ),
        # Nobody holds {subcase}: every allowed role reaches the service, which answers "not locked".
        # (Releasing one's own lock is covered in test_locks_api.py.)
        RouteContract(
            "unlock",
            "POST",
            "/v1/subcases/{subcase}/unlock",
            min_role=Role.AIRPORT_OPERATOR,
            expect_status=409,
            audited=False,
            check=_problem_type("subcase-not-locked"),
        ),
        RouteContract(
            "force-unlock",
            "POST",
            "/v1/subcases/{locked}/force-unlock",
            min_role=Role.OPS_SUPERVISOR,
            body={"reason": "handover"},
            audit_actions=("subcase.lock_force_released",),
            check=lambda response, objects: response.json()["previousHolder"] == objects["holder"],
        ),
        RouteContract("list operators", "GET", "/v1/operators", min_role=Role.AIRPORT_OPERATOR),
    )

    def make_objects(self, airline):
        case = CaseFactory(airline=airline)
        free = SubCaseFactory(case=case, airline=airline)
        locked = SubCaseFactory(case=case, airline=airline)
        holder = f"urn:nexa:user:{airline.lower()}-holder"
        services.subcase_lock(principal=principal(holder, airline=airline), sub_case_urn=locked.urn)
        return {"subcase": free, "locked": locked, "holder": holder}
