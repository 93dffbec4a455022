"""No lock-out under concurrency: the airline's only two ADMINs deactivate each other at the same moment,
over real threads, each request with its own database connection and its own committed transaction.
Exactly one succeeds; the other gets 409 last-active-admin (or, if it came entirely after, 403: its
caller is deactivated), so the airline keeps an active ADMIN. Without the per-airline serialisation
both see "another active ADMIN exists" and both succeed."""

import threading
from urllib.parse import quote

import pytest
from django.db import connection
from rest_framework.test import APIClient

from audit.models import AuditEntry
from nexa.platform.auth import issue_token
from operators.models import Operator

ANA, BEN = "urn:nexa:user:ib-ana", "urn:nexa:user:ib-ben"


def _client(operator: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_token(airline='IB', role='ADMIN', operator_urn=operator)}")
    return client


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("attempt", range(3))
def test_two_admins_deactivating_each_other_at_once_exactly_one_succeeds(attempt):
    for operator in (ANA, BEN):
        Operator.objects.create(operator_urn=operator, airline="IB", role="ADMIN", display_name=operator)
    clients = {ANA: _client(ANA), BEN: _client(BEN)}
    targets = {ANA: BEN, BEN: ANA}
    barrier = threading.Barrier(2)
    responses: dict[str, object] = {}
    errors: list[BaseException] = []

    def run(caller: str) -> None:
        try:
            barrier.wait(timeout=30)
            responses[caller] = clients[caller].post(
                f"/v1/operators/{quote(targets[caller], safe=':')}/deactivate", {"reason": "coup"}, format="json"
            )
        except BaseException as error:  # noqa: BLE001 - reported by the test
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(caller,)) for caller in (ANA, BEN)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert not errors, errors
    outcomes = {caller: response.status_code for caller, response in responses.items()}
    assert sorted(outcomes.values()) in ([200, 403], [200, 409]), {c: r.content for c, r in responses.items()}
    loser = next(response for response in responses.values() if response.status_code != 200)
    # Overlapping: the second waits for the first and finds no other active ADMIN (409). If the first
    # finished before the second was even authenticated, the second caller is already deactivated (403).
    slug = "last-active-admin" if loser.status_code == 409 else "operator-deactivated"
    assert loser.json()["type"].endswith("/" + slug)
    assert Operator.objects.filter(airline="IB", role="ADMIN", active=True).count() == 1
    assert AuditEntry.objects.filter(action="operator.deactivated").count() == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("attempt", range(3))
def test_a_demotion_and_a_deactivation_at_once_leave_an_active_admin(attempt):
    """Ana demotes Ben (Django admin's role change) while Ben deactivates Ana (the API): both rules guard the
    last active ADMIN, and both take the same per-airline lock, so exactly one of them goes through."""
    from nexa.platform.auth import Principal
    from nexa.platform.problems import Problem
    from nexa.platform.roles import Role
    from operators.services import operator_deactivate, operator_role_change

    for operator in (ANA, BEN):
        Operator.objects.create(operator_urn=operator, airline="IB", role="ADMIN", display_name=operator)
    barrier = threading.Barrier(2)
    outcomes: dict[str, str] = {}
    errors: list[BaseException] = []

    def as_admin(operator: str) -> Principal:
        return Principal(airline="IB", role=Role.ADMIN, operator_urn=operator, subject=operator)

    def demote() -> None:
        operator_role_change(principal=as_admin(ANA), operator_urn=BEN, role=Role.OPS_SUPERVISOR, reason="coup")

    def deactivate() -> None:
        operator_deactivate(principal=as_admin(BEN), operator_urn=ANA, reason="coup")

    def run(name: str, action) -> None:
        try:
            barrier.wait(timeout=30)
            action()
            outcomes[name] = "ok"
        except Problem as problem:
            outcomes[name] = f"{problem.status_code} {problem.slug}"
        except BaseException as error:  # noqa: BLE001 - reported by the test
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=item) for item in (("demote", demote), ("deactivate", deactivate))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert not any(thread.is_alive() for thread in threads), "a request never finished"
    assert not errors, errors
    assert sorted(outcomes.values()) == ["409 last-active-admin", "ok"], outcomes
    assert Operator.objects.filter(airline="IB", role="ADMIN", active=True).count() == 1
