"""The operators routes against the platform contracts (tests/api_base.py): 401, the role matrix,
404 across airlines, 400 for malformed URNs, audit rows on writes."""

from audit.models import AuditEntry
from nexa.platform.models import OutboxEvent
from nexa.platform.roles import Role
from nexa.platform.urns import new_id
from operators import services
from operators.models import Operator
from tests.api_base import APIContractTests, RouteContract, assert_problem, call
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


class TestOperatorAdminAPIContract(APIContractTests):
    """Deactivate, reactivate and logout. Operator URNs come from the identity provider (any ``urn:``),
    so the 400 test checks what is refused (not a URN) and the 404 test uses a URN nobody has."""

    routes = (
        RouteContract(
            "deactivate",
            "POST",
            "/v1/operators/{operator}/deactivate",
            min_role=Role.ADMIN,
            body={"reason": "left"},
            audit_actions=("operator.deactivated",),
            check=lambda response, objects: response.json()["operatorUrn"] == objects["operator"],
        ),
        RouteContract(
            "reactivate",
            "POST",
            "/v1/operators/{inactive}/reactivate",
            min_role=Role.ADMIN,
            body={"reason": "back"},
            audit_actions=("operator.reactivated",),
            check=lambda response, objects: response.json() == {"operatorUrn": objects["inactive"], "active": True},
        ),
        RouteContract(
            "logout",
            "POST",
            "/v1/auth/logout",
            allowed_roles=frozenset(Role),
            expect_status=204,
            audit_actions=("auth.logout",),
        ),
    )

    def make_objects(self, airline):
        prefix = f"urn:nexa:user:{airline.lower()}-{new_id().hex[:8]}"
        active = Operator.objects.create(
            operator_urn=f"{prefix}-active", airline=airline, role="AIRPORT_OPERATOR", display_name="a"
        )
        inactive = Operator.objects.create(
            operator_urn=f"{prefix}-inactive", airline=airline, role="AIRPORT_OPERATOR", display_name="i"
        )
        Operator.objects.filter(pk=inactive.pk).update(active=False)
        return {"operator": active.operator_urn, "inactive": inactive.operator_urn}

    def assert_unchanged(self, objects, *, audit_rows, events):
        super().assert_unchanged(objects, audit_rows=audit_rows, events=events)
        assert Operator.objects.get(operator_urn=objects["operator"]).active is True
        assert Operator.objects.get(operator_urn=objects["inactive"]).active is False
        assert not Operator.objects.filter(airline=self.airline, operator_urn__in=objects.values()).exists()

    def test_another_airlines_objects_are_404(self, route, client_as):
        foreign = self.make_objects(self.other_airline)
        self.make_objects(self.airline)
        audit_rows, events, profiles = AuditEntry.objects.count(), OutboxEvent.objects.count(), Operator.objects.count()
        client = client_as(self.airline, Role.ADMIN)
        body = assert_problem(call(client, route, foreign), 404, "not-found")
        self.assert_unchanged(foreign, audit_rows=audit_rows, events=events)
        nowhere = {name: f"urn:nexa:user:nobody-{new_id()}" for name in route.placeholders}
        missing = assert_problem(call(client, route, foreign, **nowhere), 404, "not-found")
        assert (body["type"], body["title"], body["detail"]) == (missing["type"], missing["title"], missing["detail"])
        assert Operator.objects.count() == profiles  # nothing created for either URN

    def test_malformed_urns_are_400(self, route, placeholder, objects, client_as):
        client = client_as(self.airline, Role.ADMIN)
        body = assert_problem(call(client, route, objects, **{placeholder: "not-a-urn"}), 400, "validation-error")
        assert body["errors"][0]["field"] == "operator_urn"
