"""The presence channel with python-socketio's AsyncClient (an official client, unmodified)."""

import time

import pytest
import socketio

from nexa.platform.auth import revoke_token_id
from nexa.platform.roles import Role
from operators.models import OperatorSession
from tests.operators.socketio.clients import PyClient
from tests.operators.socketio.conftest import commit_transition

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def py_client(server):
    clients: list[PyClient] = []

    def make(**kw) -> PyClient:
        client = PyClient(server.ws_url, **kw)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def test_connect_opens_an_operator_session(py_client, token_for):
    client = py_client()
    client.connect(token_for("IB", Role.AIRPORT_OPERATOR, "urn:nexa:user:ib-alice"))
    assert client.connected
    client.inbox.wait_for("connect")
    sessions = OperatorSession.objects.filter(operator_urn="urn:nexa:user:ib-alice")
    assert sessions.count() == 1
    assert sessions.get().airline == "IB"


def test_bad_token_is_refused_with_4401_and_no_reconnect(py_client, server):
    client = py_client(reconnection=True)
    with pytest.raises(socketio.exceptions.ConnectionError):
        client.connect("not-a-jwt")
    seen = client.inbox.wait_for("connect_error")
    assert seen.args == [{"message": "unauthorized", "data": {"code": 4401}}]
    history = client.inbox.drain(1.5)
    assert [s.kind for s in history].count("connect_error") == 1, "the client must not retry in a loop"
    assert not client.connected


def test_subscriber_receives_subcase_and_case_events_with_offsets(py_client, token_for, ib_case):
    case, sub_case = ib_case
    client = py_client()
    client.connect(token_for("IB"))
    assert client.subscribe(case.urn) == {"ok": True}

    commit_transition(sub_case, "mark_grouped")

    changed = client.inbox.wait_for("subcase:state-changed", lambda args: args[0]["subCaseUrn"] == sub_case.urn)
    payload, offset = changed.args
    assert payload["status"] == "GROUPED"
    assert payload["caseUrn"] == case.urn
    assert offset.isdigit()
    updated = client.inbox.wait_for("case:updated", lambda args: args[0]["caseUrn"] == case.urn)
    assert int(updated.args[1]) > int(offset), "offsets grow with the stream"
    # One copy per event: case:updated went to both the case room and the airline room.
    client.inbox.drain(0.5)
    assert client.inbox.kinds().count("subcase:state-changed") == 1
    assert client.inbox.kinds().count("case:updated") == 1


def test_another_airlines_case_is_refused_and_never_delivered(py_client, token_for, ux_case):
    case, sub_case = ux_case
    client = py_client()
    client.connect(token_for("IB"))
    assert client.subscribe(case.urn) == {"ok": False, "error": "case not found"}
    error = client.inbox.wait_for("error")
    assert error.args[0]["caseUrn"] == case.urn

    commit_transition(sub_case, "mark_grouped", principal=_principal("UX"))
    client.inbox.drain(1.0)
    assert "subcase:state-changed" not in client.inbox.kinds()
    assert "case:updated" not in client.inbox.kinds()


def test_garbage_subscribe_gets_an_error_event(py_client, token_for):
    client = py_client()
    client.connect(token_for("IB"))
    client.emit("subscribe", {"caseUrn": "urn:nexa:case:not-a-uuid"})
    assert client.inbox.wait_for("error").args[0]["message"] == "case not found"
    client.emit("subscribe", "just a string")
    assert client.inbox.wait_for("error").args[0]["message"] == "subscribe needs {caseUrn}"
    assert client.connected


def test_unsubscribe_stops_case_events(py_client, token_for, ib_case):
    case, sub_case = ib_case
    watcher = py_client()
    watcher.connect(token_for("IB", operator="urn:nexa:user:ib-watcher"))
    # A UX socket gets nothing of IB's: the airline room of each socket is its own.
    other = py_client()
    other.connect(token_for("UX"))
    assert watcher.subscribe(case.urn) == {"ok": True}
    assert watcher.call_ack("unsubscribe", {"caseUrn": case.urn}) == {"ok": True}

    commit_transition(sub_case, "mark_grouped")
    # Still in the airline room: IB's case:updated arrives through it (lists, dashboard), but the
    # sub-case event went to the case room only, which the watcher left.
    watcher.inbox.wait_for("case:updated", lambda args: args[0]["caseUrn"] == case.urn)
    watcher.inbox.drain(0.8)
    assert "subcase:state-changed" not in watcher.inbox.kinds()
    other.inbox.drain(0.1)
    assert "subcase:state-changed" not in other.inbox.kinds()
    assert "case:updated" not in other.inbox.kinds()


def test_the_airline_room_carries_case_updated_only_and_subscribe_narrows(py_client, token_for, ib_case):
    """Issue 10: an unsubscribed socket of the airline gets case:updated (lists, dashboard) and nothing
    else of the case; a socket subscribed to the case also gets the sub-case event."""
    case, sub_case = ib_case
    lister = py_client()
    lister.connect(token_for("IB", operator="urn:nexa:user:ib-lister"))
    watcher = py_client()
    watcher.connect(token_for("IB", operator="urn:nexa:user:ib-watcher"))
    assert watcher.subscribe(case.urn) == {"ok": True}

    commit_transition(sub_case, "mark_grouped")

    watcher.inbox.wait_for("subcase:state-changed", lambda args: args[0]["subCaseUrn"] == sub_case.urn)
    watcher.inbox.wait_for("case:updated", lambda args: args[0]["caseUrn"] == case.urn)
    lister.inbox.wait_for("case:updated", lambda args: args[0]["caseUrn"] == case.urn)
    lister.inbox.drain(0.8)
    assert [kind for kind in lister.inbox.kinds() if ":" in kind] == ["case:updated"]


def test_token_expiry_mid_session_disconnects(py_client, token_for):
    client = py_client(reconnection=True)
    started = time.monotonic()
    client.connect(token_for("IB", ttl_seconds=3))
    seen = client.inbox.wait_for("disconnect", timeout=8)
    assert 2.0 <= seen.at - started <= 6.0
    assert seen.args and seen.args[0] == client.client.reason.SERVER_DISCONNECT
    history = client.inbox.drain(1.5)
    assert [s.kind for s in history].count("connect") == 1, "no reconnect after a server disconnect"


def test_revoked_token_is_disconnected_on_the_ping_cycle(py_client, token_for):
    import jwt

    token = token_for("IB")
    client = py_client()
    client.connect(token)
    revoke_token_id(jwt.decode(token, options={"verify_signature": False})["jti"], ttl_seconds=60)
    client.inbox.wait_for("disconnect", timeout=5)
    assert not client.connected


def test_deactivated_operator_is_disconnected_on_the_ping_cycle_without_the_event(py_client, token_for):
    """Deactivated outside the service (a Django admin save: no operator:deactivated event reaches the
    socket): the ping cycle's principal check still disconnects it, not the token's expiry."""
    from operators.models import Operator

    client = py_client()
    client.connect(token_for("IB", Role.AIRPORT_OPERATOR, "urn:nexa:user:ib-dora"))
    client.inbox.wait_for("connect")
    profile = Operator.objects.get(airline="IB", operator_urn="urn:nexa:user:ib-dora")  # made at CONNECT
    profile.active = False
    profile.save()
    client.inbox.wait_for("disconnect", timeout=5)
    assert not client.connected


def _principal(airline: str):
    from nexa.platform.auth import Principal

    return Principal(
        airline=airline,
        role=Role.OPS_SUPERVISOR,
        operator_urn=f"urn:nexa:user:{airline.lower()}-supervisor",
        subject="supervisor",
    )
