"""The presence channel with socket.io-client v4 under node (the console's client), unmodified."""

import pytest

from nexa.platform.roles import Role
from tests.operators.socketio.clients import NodeClient
from tests.operators.socketio.conftest import commit_transition

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("node_client_ready")]


@pytest.fixture
def node_client(server):
    clients: list[NodeClient] = []

    def make(token: str, **options) -> NodeClient:
        client = NodeClient(server.ws_url, token, **options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def test_connects_subscribes_and_receives_events(node_client, token_for, ib_case):
    case, sub_case = ib_case
    client = node_client(token_for("IB", Role.AIRPORT_OPERATOR, "urn:nexa:user:ib-node"))
    connected = client.inbox.wait_for("connect").args[0]
    assert connected["recovered"] is False
    assert connected["pid"], "the CONNECT reply carries a pid (connection-state recovery)"
    client.send("subscribe", caseUrn=case.urn)
    assert client.inbox.wait_for("ack").args[0]["ack"] == {"ok": True}

    commit_transition(sub_case, "mark_grouped")

    payload, offset = client.inbox.wait_for("subcase:state-changed").args
    assert payload["subCaseUrn"] == sub_case.urn
    assert payload["status"] == "GROUPED"
    assert offset.isdigit()


def test_auth_failure_stops_without_a_reconnect_loop(node_client):
    client = node_client("expired-or-garbage")
    error = client.inbox.wait_for("connect_error").args[0]
    assert error["message"] == "unauthorized"
    assert error["data"] == {"code": 4401}
    assert error["active"] is False, "socket.active is false: the client will not retry"
    client.inbox.drain(1.5)
    assert "reconnect_attempt" not in client.inbox.kinds()
    assert client.inbox.kinds().count("connect_error") == 1


def test_connection_state_recovery_replays_missed_events(node_client, token_for, ib_case):
    case, sub_case = ib_case
    client = node_client(token_for("IB", Role.AIRPORT_OPERATOR, "urn:nexa:user:ib-recovering"), reconnectionDelay=1500)
    first = client.inbox.wait_for("connect").args[0]
    client.send("subscribe", caseUrn=case.urn)
    client.inbox.wait_for("ack")
    commit_transition(sub_case, "mark_grouped")
    _, seen_offset = client.inbox.wait_for("subcase:state-changed").args
    client.inbox.wait_for("case:updated")

    client.send("drop")  # socket.io.engine.close(): the transport goes, the manager reconnects
    client.inbox.wait_for("disconnect")
    commit_transition(sub_case, "mark_allocated")  # committed while the client is away

    again = client.inbox.wait_for("connect", timeout=10).args[0]
    assert again["recovered"] is True
    assert again["pid"] == first["pid"]
    payload, offset = client.inbox.wait_for(
        "subcase:state-changed", lambda args: args[0]["status"] == "ALLOCATED", timeout=5
    ).args
    assert payload["subCaseUrn"] == sub_case.urn
    assert int(offset) > int(seen_offset)
    # Missed events come in order, exactly once, and live delivery resumes afterwards.
    commit_transition(sub_case, "start_booking")
    client.inbox.wait_for("subcase:state-changed", lambda args: args[0]["status"] == "BOOKING")
    statuses = [s.args[0]["status"] for s in client.inbox.history if s.kind == "subcase:state-changed"]
    assert statuses == ["GROUPED", "ALLOCATED", "BOOKING"]


def test_recovery_is_refused_after_the_replay_window(node_client, token_for, redis_client):
    client = node_client(token_for("IB", Role.AIRPORT_OPERATOR, "urn:nexa:user:ib-late"), reconnectionDelay=1500)
    first = client.inbox.wait_for("connect").args[0]
    client.send("drop")
    client.inbox.wait_for("disconnect")
    # What the window's end does to the kept state (its Redis key expires): the pid is forgotten.
    deadline_key = f"nexa:sio:pid:{first['pid']}"
    for _ in range(50):
        if redis_client.delete(deadline_key):
            break
        client.inbox.drain(0.05)
    again = client.inbox.wait_for("connect", timeout=10).args[0]
    assert again["recovered"] is False
    assert again["pid"] != first["pid"]
