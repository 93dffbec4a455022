"""Presence over the channel: an operator's locks end with their last socket, or by lease expiry when the
server process holding it dies; a deactivated operator's sockets are closed with 4401."""

import json
from datetime import timedelta

import httpx
import pytest
from django.db.models.functions import Now

from nexa.platform.roles import Role
from operators import services as operator_services
from operators.models import EntityLock, OperatorSession
from tests.operators.socketio.clients import PyClient, RawSocket

pytestmark = pytest.mark.django_db(transaction=True)

HOLDER = "urn:nexa:user:ib-holder"
WATCHER = "urn:nexa:user:ib-watcher"


@pytest.fixture
def clients():
    opened: list = []
    yield opened
    for client in opened:
        client.close()


def _lock(base_url: str, token: str, sub_case_urn: str) -> dict:
    response = httpx.post(
        f"{base_url}/v1/subcases/{sub_case_urn}/lock", headers={"Authorization": f"Bearer {token}"}, timeout=5
    )
    assert response.status_code == 200, response.text
    return response.json()


def _locked_by(value):
    return lambda args: args[0].get("lockedBy") == value


def _watch(server, clients, token_for, case_urn: str) -> PyClient:
    watcher = PyClient(server.ws_url)
    clients.append(watcher)
    watcher.connect(token_for("IB", Role.AIRPORT_OPERATOR, WATCHER))
    assert watcher.subscribe(case_urn) == {"ok": True}
    return watcher


def test_last_socket_drop_releases_the_holders_locks(server, clients, token_for, ib_case):
    case, sub_case = ib_case
    holder_token = token_for("IB", Role.AIRPORT_OPERATOR, HOLDER)
    first, second = PyClient(server.ws_url), PyClient(server.ws_url)
    clients.extend([first, second])
    first.connect(holder_token)
    second.connect(holder_token)
    watcher = _watch(server, clients, token_for, case.urn)

    assert _lock(server.base_url, holder_token, sub_case.urn)["lockedBy"] == HOLDER
    watcher.inbox.wait_for("subcase:state-changed", _locked_by(HOLDER))

    first.close()  # not the last socket: the lock stays
    watcher.inbox.drain(0.8)
    assert not [s for s in watcher.inbox.history if s.kind == "subcase:state-changed" and s.args[0]["lockedBy"] is None]
    assert EntityLock.objects.get(entity_urn=sub_case.urn).holder == HOLDER

    second.close()  # the last one: every lock of the holder is released and announced
    released = watcher.inbox.wait_for("subcase:state-changed", _locked_by(None), timeout=3)
    assert released.args[0]["subCaseUrn"] == sub_case.urn
    assert not OperatorSession.objects.filter(operator_urn=HOLDER).exists()


def test_killed_server_process_loses_its_locks_by_lease_expiry(
    server, asgi_server_factory, clients, token_for, ib_case
):
    case, sub_case = ib_case
    doomed = asgi_server_factory(extra_env={"NEXA_SOCKET_PING_INTERVAL_MS": "1000"})
    holder_token = token_for("IB", Role.AIRPORT_OPERATOR, HOLDER)
    holder = RawSocket(doomed.ws_url)
    clients.append(holder)
    holder.handshake(holder_token)
    watcher = _watch(server, clients, token_for, case.urn)
    _lock(doomed.base_url, holder_token, sub_case.urn)
    watcher.inbox.wait_for("subcase:state-changed", _locked_by(HOLDER))

    doomed.kill()  # SIGKILL: no disconnect handling, the session and lease stay behind
    watcher.inbox.drain(0.8)
    assert EntityLock.objects.get(entity_urn=sub_case.urn).holder == HOLDER

    # Nobody renews the lease any more; once it has run out the beat sweep frees it.
    EntityLock.objects.filter(entity_urn=sub_case.urn).update(expires_at=Now() - timedelta(seconds=1))
    assert operator_services.lock_leases_expire_sweep() == 1
    released = watcher.inbox.wait_for("subcase:state-changed", _locked_by(None), timeout=3)
    assert released.args[0]["subCaseUrn"] == sub_case.urn


def test_heartbeat_renews_the_lease_of_a_connected_holder(server, clients, token_for, ib_case):
    _, sub_case = ib_case
    holder_token = token_for("IB", Role.AIRPORT_OPERATOR, HOLDER)
    holder = PyClient(server.ws_url)
    clients.append(holder)
    holder.connect(holder_token)
    _lock(server.base_url, holder_token, sub_case.urn)
    # Shorten the lease; the next ping cycle (1 s in these tests) touches the session and renews it.
    EntityLock.objects.filter(entity_urn=sub_case.urn).update(expires_at=Now() + timedelta(seconds=3))
    holder.inbox.drain(2.5)
    lock = EntityLock.objects.annotate(now=Now()).get(entity_urn=sub_case.urn)
    assert (lock.expires_at - lock.now).total_seconds() > 60


def test_deactivated_operator_is_closed_with_4401(server, clients, token_for):
    socket = RawSocket(server.ws_url)
    clients.append(socket)
    socket.handshake(token_for("IB", Role.AIRPORT_OPERATOR, HOLDER))
    admin = token_for("IB", Role.ADMIN, "urn:nexa:user:ib-admin")
    response = httpx.post(
        f"{server.base_url}/v1/operators/{HOLDER}/deactivate",
        json={"reason": "left the company"},
        headers={"Authorization": f"Bearer {admin}"},
        timeout=5,
    )
    assert response.status_code == 200, response.text
    assert socket.recv_until("41") == "41"
    assert socket.wait_closed() == 4401

    # And they cannot come back.
    again = RawSocket(server.ws_url)
    clients.append(again)
    again.recv()
    again.send("40" + json.dumps({"token": token_for("IB", Role.AIRPORT_OPERATOR, HOLDER)}))
    assert again.recv_until("44") == '44{"message":"unauthorized","data":{"code":4401}}'
    assert again.wait_closed() == 4401
