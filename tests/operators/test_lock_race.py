"""Concurrency: 50 operators race for one sub-case over real threads, each with its own database
connection and its own committed transaction (ARCHITECTURE §9, §10 lock storm)."""

import threading

import pytest
from django.db import connection
from rest_framework.test import APIClient

from audit.models import AuditEntry
from nexa.platform.auth import issue_token
from operators.models import EntityLock
from tests.cases.factories import SubCaseFactory
from tests.operators.helpers import lock, lock_events

RACERS = 50


def race(sub_case_urn: str, operators: list[str]) -> dict[str, object]:
    clients = {}
    for operator in operators:
        client = APIClient()
        client.credentials(
            HTTP_AUTHORIZATION=f"Bearer {issue_token(airline='IB', role='AIRPORT_OPERATOR', operator_urn=operator)}"
        )
        clients[operator] = client
    barrier = threading.Barrier(len(operators))
    responses: dict[str, object] = {}
    errors: list[BaseException] = []

    def run(operator: str) -> None:
        try:
            barrier.wait(timeout=30)
            responses[operator] = lock(clients[operator], sub_case_urn)
        except BaseException as error:  # noqa: BLE001 - reported by the test
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(operator,)) for operator in operators]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert len(responses) == len(operators)
    return responses


@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_lockers_exactly_one_wins_the_rest_see_the_winner():
    sub_case = SubCaseFactory()
    operators = [f"urn:nexa:user:ib-racer-{number:02d}" for number in range(RACERS)]

    responses = race(sub_case.urn, operators)

    winners = [operator for operator, response in responses.items() if response.status_code == 200]
    assert len(winners) == 1, {operator: response.status_code for operator, response in responses.items()}
    winner = winners[0]
    assert responses[winner].json()["lockedBy"] == winner and responses[winner].json()["fencingToken"] == 1
    losers = [response for operator, response in responses.items() if operator != winner]
    assert [response.status_code for response in losers] == [409] * (RACERS - 1)
    for response in losers:
        body = response.json()
        assert body["type"].endswith("/subcase-locked") and body["lockedBy"] == winner
        assert 0 < body["expiresInSeconds"] <= 120
    assert EntityLock.objects.get(entity_urn=sub_case.urn).holder == winner
    assert AuditEntry.objects.filter(entity_urn=sub_case.urn, action="subcase.lock_granted").count() == 1
    assert [event["lockedBy"] for event in lock_events(sub_case.urn)] == [winner]


@pytest.mark.django_db(transaction=True)
def test_a_second_race_after_release_has_one_new_winner_with_the_next_token():
    sub_case = SubCaseFactory()
    first = race(sub_case.urn, [f"urn:nexa:user:ib-a-{n}" for n in range(10)])
    (winner,) = [operator for operator, response in first.items() if response.status_code == 200]
    client = APIClient()
    client.credentials(
        HTTP_AUTHORIZATION=f"Bearer {issue_token(airline='IB', role='AIRPORT_OPERATOR', operator_urn=winner)}"
    )
    assert client.post(f"/v1/subcases/{sub_case.urn}/unlock", format="json").status_code == 200

    second = race(sub_case.urn, [f"urn:nexa:user:ib-b-{n}" for n in range(10)])

    granted = [response.json() for response in second.values() if response.status_code == 200]
    assert len(granted) == 1 and granted[0]["fencingToken"] == 2
