"""Two ADMINs activate two different policies for one scope at the same moment, over real threads,
each request with its own database connection and committed transaction: exactly one policy of the
scope is ACTIVE afterwards (the partial unique index decides), the loser answers 409."""

import threading

import pytest
from django.db import connection
from rest_framework.test import APIClient

from audit.models import AuditEntry
from nexa.platform.auth import issue_token
from nexa.platform.models import OutboxEvent
from policies.models import Policy, PolicyStatus
from tests.policies.factories import PolicyFactory, active_policy


def _client(operator: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_token(airline='IB', role='ADMIN', operator_urn=operator)}")
    return client


def _race(urns: list[str]) -> list:
    barrier = threading.Barrier(len(urns))
    responses: dict[int, object] = {}
    errors: list[BaseException] = []

    def run(index: int, urn: str) -> None:
        try:
            client = _client(f"urn:nexa:user:ib-admin-{index}")
            barrier.wait(timeout=30)
            responses[index] = client.post(f"/v1/policies/{urn}/activate")
        except BaseException as error:  # noqa: BLE001 - reported by the test
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, urn)) for i, urn in enumerate(urns)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    return [responses[i] for i in range(len(urns))]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("previous", [False, True], ids=["no-active-before", "one-active-before"])
@pytest.mark.parametrize("attempt", range(3))
def test_two_concurrent_activations_for_one_scope_leave_exactly_one_active(previous, attempt):
    scope = {"scope_airport": "MAD", "scope_tier": "BUSINESS"}
    old = active_policy(**scope) if previous else None
    drafts = [PolicyFactory(**scope), PolicyFactory(**scope)]
    responses = _race([policy.urn for policy in drafts])

    statuses = sorted(response.status_code for response in responses)
    active = list(Policy.objects.filter(status=PolicyStatus.ACTIVE, **scope))
    assert len(active) == 1, [response.content for response in responses]
    if statuses == [200, 200]:
        # Not overlapping after all: the second replaced the first, as two activations one after the other do.
        assert AuditEntry.objects.filter(action="policy.activated").count() == 2
        return
    assert statuses == [200, 409], [response.content for response in responses]
    loser = next(response for response in responses if response.status_code == 409)
    assert loser.json()["type"].endswith("/scope-activation-conflict")
    winner = next(response for response in responses if response.status_code == 200).json()["urn"]
    assert active[0].urn == winner
    loser_policy = next(policy for policy in drafts if policy.urn != winner)
    assert Policy.objects.get(pk=loser_policy.pk).status == PolicyStatus.DRAFT
    if old is not None:
        assert Policy.objects.get(pk=old.pk).status == PolicyStatus.ARCHIVED
        assert AuditEntry.objects.filter(action="policy.archived").count() == 1
    assert AuditEntry.objects.filter(action="policy.activated").count() == 1
    assert OutboxEvent.objects.filter(event="policy:activated").count() == 1
