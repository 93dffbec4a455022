"""Roles with inheritance (403 problem below the minimum) and tenant isolation (404 across airlines)."""

import pytest
from django.db import transaction

from nexa.platform.models import OutboxEvent
from nexa.platform.roles import Role, role_satisfies

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.platform.contract_urls")]

ALL_ROLES = list(Role)

# route → roles that may call it (spec 000's "Min role" semantics)
MATRIX = {
    "/v1/_test/whoami": {Role.ADMIN, Role.OPS_SUPERVISOR, Role.AIRPORT_OPERATOR},
    "/v1/_test/supervisor": {Role.ADMIN, Role.OPS_SUPERVISOR},
    "/v1/_test/admin-only": {Role.ADMIN},
    "/v1/_test/audit-readers": {Role.ADMIN, Role.OPS_SUPERVISOR, Role.FINANCE_AUDIT},
}


@pytest.mark.parametrize("path", list(MATRIX))
@pytest.mark.parametrize("role", ALL_ROLES)
def test_role_matrix(client_for, path, role):
    response = client_for("IB", role).get(path)
    if role in MATRIX[path]:
        assert response.status_code == 200, response.content
    else:
        assert response.status_code == 403
        body = response.json()
        assert response["Content-Type"] == "application/problem+json"
        assert body["type"].endswith("/forbidden")
        assert str(role) in body["detail"]


def test_inheritance_table():
    assert role_satisfies(Role.ADMIN, Role.FINANCE_AUDIT)
    assert role_satisfies(Role.ADMIN, Role.AIRPORT_OPERATOR)
    assert role_satisfies(Role.OPS_SUPERVISOR, Role.AIRPORT_OPERATOR)
    assert not role_satisfies(Role.OPS_SUPERVISOR, Role.FINANCE_AUDIT)
    assert not role_satisfies(Role.FINANCE_AUDIT, Role.AIRPORT_OPERATOR)
    assert not role_satisfies(Role.AIRPORT_OPERATOR, Role.OPS_SUPERVISOR)


def _event(airline: str) -> OutboxEvent:
    with transaction.atomic():
        return OutboxEvent.objects.create(event="case:updated", payload={}, airline=airline)


def test_own_airline_object_is_found(client_for):
    event = _event("IB")
    response = client_for("IB").get(f"/v1/_test/events/{event.id}")
    assert response.status_code == 200
    assert response.json()["id"] == str(event.id)


def test_another_airlines_object_is_404_not_403(client_for):
    event = _event("LH")
    response = client_for("IB", Role.ADMIN).get(f"/v1/_test/events/{event.id}")
    missing = client_for("IB", Role.ADMIN).get("/v1/_test/events/01a20000-0000-7000-8000-000000000000")
    assert response.status_code == 404
    # Indistinguishable from an id that does not exist at all: no existence leak.
    assert response.json()["detail"] == missing.json()["detail"]
    assert response.json()["type"] == missing.json()["type"]
