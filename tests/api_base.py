"""The shared API test base (ARCHITECTURE §12, after NetBox's ``APITestCase``): declare a
resource's routes once, inherit the platform-contract tests.

For every :class:`RouteContract` the base generates:

* **401** problem JSON without a token, and with a token that is not a JWT;
* the **role matrix**: every role in ``allowed_roles`` gets ``expect_status`` (and ``check`` runs
  on the response); every other role gets a 403 ``forbidden`` problem naming its role, and a write
  refused that way leaves no audit row;
* **404** ``not-found`` problem when the path's objects belong to another airline — called as that
  airline's ADMIN, so the role is never the reason — byte-for-byte the same problem type and detail
  as for a URN that exists nowhere (no existence leak), with no audit row and no event written;
* **400** ``validation-error`` problem for each URN in the path when it is malformed, and when it
  is a URN of the wrong kind (the detail says which kind was expected);
* for writes (any method but GET): the call as the lowest allowed role writes **audit rows** —
  every ``audit_actions`` among them — each carrying the caller's airline, the caller's operator
  URN as actor and the response's ``X-Correlation-Id``.

How to use it::

    from tests.api_base import APIContractTests, RouteContract

    class TestWidgetsAPIContract(APIContractTests):
        routes = (
            RouteContract("list", "GET", "/v1/widgets", min_role=Role.AIRPORT_OPERATOR),
            RouteContract(
                "create", "POST", "/v1/widgets", min_role=Role.OPS_SUPERVISOR, expect_status=201,
                body={"name": "w"}, audit_actions=("widget.created",),
            ),
            RouteContract(
                "detail", "GET", "/v1/widgets/{widget}", any_of=(Role.FINANCE_AUDIT, Role.OPS_SUPERVISOR),
                check=lambda response, objects: response.json()["urn"] == objects["widget"].urn,
            ),
        )

        def make_objects(self, airline):
            # one fresh object per placeholder in the paths, owned by ``airline``
            return {"widget": WidgetFactory(airline=airline)}

* The class name must start with ``Test`` (this base does not, so it is never collected itself);
  every generated test is marked ``django_db``.
* ``path`` placeholders (``{widget}``) are filled with the URN of ``make_objects(airline)[name]``
  (an object with ``.urn``, or a URN string). A route without placeholders skips the 404 and 400
  tests.
* Roles: ``min_role=`` (spec 000's ``ROLE+``), ``any_of=`` (``AnyOf``) or an explicit
  ``allowed_roles=``. The inheritance used here is written out from spec 000 in
  :data:`ROLES_AT_LEAST`, independently of ``nexa.platform.roles``, so the tests check the
  implementation rather than reuse it.
* ``body`` is a dict, or a callable ``body(objects) -> dict`` for bodies that name objects.
  ``check(response, objects)`` may assert more on a success and must **return ``True``**: ``False``,
  ``None`` (a check that forgot its ``return``) or any other value fails the test
  (``tests/platform/test_api_base.py`` proves it with deliberately broken contracts).
* Every route in the URLconf is either on a contract class or excused, with a reason, in
  ``tests/platform/test_route_coverage.py``'s one list; a new route without either fails there.
* Writes are audited by default (``audited=None`` means "unless GET"); pass ``audited=False`` for a
  write that legitimately changes nothing.
* Override :meth:`APIContractTests.assert_unchanged` to check more after a refused cross-tenant
  write (the default checks that no audit row and no outbox event was written).
* The helpers :func:`call`, :func:`assert_problem` and :func:`operator_urn` serve a module's own
  route-specific tests too.
"""

from __future__ import annotations

import json
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, ClassVar

import pytest
from rest_framework.test import APIClient

from audit.models import AuditEntry
from nexa.platform.models import OutboxEvent
from nexa.platform.roles import Role
from nexa.platform.urns import format_urn, new_id, parse_urn

ALL_ROLES: tuple[Role, ...] = tuple(Role)
# Spec 000 § Roles: ADMIN ⊃ OPS_SUPERVISOR ⊃ AIRPORT_OPERATOR; ADMIN also holds FINANCE_AUDIT,
# which otherwise stands apart. Who may call a route that needs ``key``+.
ROLES_AT_LEAST: dict[Role, frozenset[Role]] = {
    Role.ADMIN: frozenset({Role.ADMIN}),
    Role.OPS_SUPERVISOR: frozenset({Role.ADMIN, Role.OPS_SUPERVISOR}),
    Role.AIRPORT_OPERATOR: frozenset({Role.ADMIN, Role.OPS_SUPERVISOR, Role.AIRPORT_OPERATOR}),
    Role.FINANCE_AUDIT: frozenset({Role.ADMIN, Role.FINANCE_AUDIT}),
}
# From the lowest to the highest: the lowest allowed role is the one a write is audited as.
ROLE_ORDER: tuple[Role, ...] = (Role.FINANCE_AUDIT, Role.AIRPORT_OPERATOR, Role.OPS_SUPERVISOR, Role.ADMIN)

Objects = Mapping[str, Any]
BodyFactory = Callable[[Objects], Mapping[str, Any]]


@dataclass(frozen=True)
class RouteContract:
    """One route and what the platform contracts promise about it (see the module docstring)."""

    name: str
    method: str
    path: str
    min_role: Role | None = None
    any_of: tuple[Role, ...] = ()
    allowed_roles: frozenset[Role] | None = None
    expect_status: int = 200
    body: Mapping[str, Any] | BodyFactory | None = None
    audit_actions: tuple[str, ...] = ()
    audited: bool | None = None
    check: Callable[[Any, Objects], Any] | None = None
    roles: frozenset[Role] = field(init=False)

    def __post_init__(self):
        declared = [self.min_role is not None, bool(self.any_of), self.allowed_roles is not None]
        if sum(declared) != 1:
            raise ValueError(f"{self.name}: declare exactly one of min_role, any_of, allowed_roles")
        if self.min_role is not None:
            roles = ROLES_AT_LEAST[self.min_role]
        elif self.any_of:
            roles = frozenset().union(*(ROLES_AT_LEAST[role] for role in self.any_of))
        else:
            roles = frozenset(self.allowed_roles)
        object.__setattr__(self, "roles", roles)
        object.__setattr__(self, "method", self.method.upper())
        if self.audit_actions and not self.is_audited:
            raise ValueError(f"{self.name}: audit_actions given for a route that is not audited")

    @property
    def placeholders(self) -> list[str]:
        return [name for _, name, _, _ in string.Formatter().parse(self.path) if name]

    @property
    def is_write(self) -> bool:
        return self.method != "GET"

    @property
    def is_audited(self) -> bool:
        return self.is_write if self.audited is None else self.audited

    @property
    def lowest_allowed_role(self) -> Role:
        return next(role for role in ROLE_ORDER if role in self.roles)

    def request_body(self, objects: Objects) -> Mapping[str, Any] | None:
        return self.body(objects) if callable(self.body) else self.body

    def url(self, objects: Objects, **overrides: str) -> str:
        values = {name: urn_of(objects[name]) for name in self.placeholders if name not in overrides}
        return self.path.format(**values, **overrides)


def urn_of(value: Any) -> str:
    return value if isinstance(value, str) else value.urn


def operator_urn(airline: str, role: Role | str) -> str:
    """The operator URN the base's clients carry: ``urn:nexa:user:ib-ops_supervisor``."""
    return f"urn:nexa:user:{airline.lower()}-{str(role).lower()}"


def call(client: APIClient, route: RouteContract, objects: Objects, **path_overrides: str):
    """Send ``route`` with ``client``, its path filled from ``objects`` (``path_overrides`` win)."""
    path = route.url(objects, **path_overrides)
    if route.method == "GET":
        return client.get(path)
    return client.generic(route.method, path, data=_json(route.request_body(objects)), content_type="application/json")


def _json(body: Mapping[str, Any] | None) -> str:
    return "" if body is None else json.dumps(body)


def assert_problem(response, status: int, slug: str) -> dict:
    """An RFC 9457 problem of this status and type slug; returns the body."""
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert body["type"].endswith("/" + slug), body
    assert body["instance"].startswith("urn:nexa:correlation:")
    return body


def client_with_token(token_for, airline: str, role: Role) -> APIClient:
    """An API client carrying a token of ``role`` in ``airline`` (the base's ``client_as``)."""
    client = APIClient()
    token = token_for(airline, role, operator_urn(airline, role))
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def assert_check_holds(route: RouteContract, response, objects: Objects) -> None:
    """Run ``route.check`` on a success: it must return exactly ``True`` (a check that forgets its
    ``return`` gives ``None``, and must not pass)."""
    if route.check is None:
        return
    result = route.check(response, objects)
    assert result is True, (
        f"{route.name}: check returned {result!r}, not True (a check must return True when it holds)",
        response.content,
    )


def _other_kind(kind: str) -> str:
    return "case" if kind != "case" else "subcase"


class APIContractTests:
    """Inherit (``class TestXAPIContract(APIContractTests)``), set :attr:`routes`, implement
    :meth:`make_objects`; see the module docstring."""

    pytestmark = pytest.mark.django_db

    routes: ClassVar[Sequence[RouteContract]] = ()
    airline: ClassVar[str] = "IB"
    other_airline: ClassVar[str] = "LH"

    # --- what a subclass provides ----------------------------------------------------------------

    def make_objects(self, airline: str) -> Objects:
        """Fresh objects of ``airline`` for every placeholder in :attr:`routes`' paths."""
        raise NotImplementedError(f"{type(self).__name__} must implement make_objects(airline)")

    def assert_unchanged(self, objects: Objects, *, audit_rows: int, events: int) -> None:
        """After a refused cross-tenant call on ``objects``: nothing was written."""
        assert AuditEntry.objects.count() == audit_rows
        assert OutboxEvent.objects.count() == events

    # --- plumbing --------------------------------------------------------------------------------

    def pytest_generate_tests(self, metafunc):
        test = metafunc.function.__name__
        if "route" in metafunc.fixturenames:
            routes = list(self.routes)
            if test in ("test_another_airlines_objects_are_404", "test_malformed_urns_are_400"):
                routes = [route for route in routes if route.placeholders]
            elif test == "test_writes_are_audited":
                routes = [route for route in routes if route.is_audited]
            if test == "test_malformed_urns_are_400":
                cases = [(route, name) for route in routes for name in route.placeholders]
                metafunc.parametrize(
                    ("route", "placeholder"), cases, ids=[f"{route.name}-{name}" for route, name in cases]
                )
            else:
                metafunc.parametrize("route", routes, ids=[route.name for route in routes])
        if "role" in metafunc.fixturenames:
            metafunc.parametrize("role", ALL_ROLES, ids=[str(role) for role in ALL_ROLES])

    @pytest.fixture
    def client_as(self, token_for):
        return partial(client_with_token, token_for)

    @pytest.fixture
    def objects(self) -> Objects:
        """The caller's airline's objects; another airline's exist beside them, so a list or count
        that leaks across tenants fails the route's ``check``."""
        self.make_objects(self.other_airline)
        return self.make_objects(self.airline)

    # --- the generated tests ---------------------------------------------------------------------

    def test_no_token_is_401(self, route, objects):
        assert_problem(call(APIClient(), route, objects), 401, "unauthorized")
        garbage = APIClient()
        garbage.credentials(HTTP_AUTHORIZATION="Bearer not-a-jwt")
        assert_problem(call(garbage, route, objects), 401, "unauthorized")

    def test_role_matrix(self, route, role, objects, client_as):
        audit_rows = AuditEntry.objects.count()
        response = call(client_as(self.airline, role), route, objects)
        if role in route.roles:
            assert response.status_code == route.expect_status, response.content
            assert_check_holds(route, response, objects)
        else:
            body = assert_problem(response, 403, "forbidden")
            assert str(role) in body["detail"]
            assert AuditEntry.objects.count() == audit_rows

    def test_another_airlines_objects_are_404(self, route, client_as):
        foreign = self.make_objects(self.other_airline)
        self.make_objects(self.airline)  # the caller's airline has objects of its own too
        audit_rows, events = AuditEntry.objects.count(), OutboxEvent.objects.count()
        client = client_as(self.airline, Role.ADMIN)
        body = assert_problem(call(client, route, foreign), 404, "not-found")
        self.assert_unchanged(foreign, audit_rows=audit_rows, events=events)

        nowhere = {name: format_urn(parse_urn(urn_of(foreign[name])).kind, new_id()) for name in route.placeholders}
        missing = assert_problem(call(client, route, foreign, **nowhere), 404, "not-found")
        assert (body["type"], body["title"], body["detail"]) == (missing["type"], missing["title"], missing["detail"])

    def test_malformed_urns_are_400(self, route, placeholder, objects, client_as):
        client = client_as(self.airline, Role.ADMIN)
        kind = parse_urn(urn_of(objects[placeholder])).kind
        assert_problem(
            call(client, route, objects, **{placeholder: f"urn:nexa:{kind}:not-a-uuid"}), 400, "validation-error"
        )
        assert_problem(call(client, route, objects, **{placeholder: "not-a-urn"}), 400, "validation-error")
        wrong_kind = format_urn(_other_kind(kind), parse_urn(urn_of(objects[placeholder])).id)
        body = assert_problem(call(client, route, objects, **{placeholder: wrong_kind}), 400, "validation-error")
        assert f"expected a urn:nexa:{kind}" in body["detail"]

    def test_writes_are_audited(self, route, objects, client_as):
        role = route.lowest_allowed_role
        before = set(AuditEntry.objects.values_list("id", flat=True))
        response = call(client_as(self.airline, role), route, objects)
        assert response.status_code == route.expect_status, response.content
        written = list(AuditEntry.objects.exclude(id__in=before))
        assert written, f"{route.name} wrote no audit row"
        assert set(route.audit_actions) <= {entry.action for entry in written}
        for entry in written:
            assert entry.airline == self.airline
            assert entry.actor == operator_urn(self.airline, role)
            assert entry.correlation_urn == response["X-Correlation-Id"]
