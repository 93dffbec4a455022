"""The wire protocol and bad input, with a raw WebSocket client: the handshake, refused upgrades, and
garbage that must close (or be answered on) that one socket while another socket on the same process
keeps receiving events."""

import json

import httpx
import pytest
import websockets

from nexa.platform.roles import Role
from tests.operators.socketio.clients import PyClient, RawSocket
from tests.operators.socketio.conftest import commit_transition

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def raw(server):
    opened: list[RawSocket] = []

    def make(**kw) -> RawSocket:
        socket = RawSocket(server.ws_url, **kw)
        opened.append(socket)
        return socket

    yield make
    for socket in opened:
        socket.close()


@pytest.mark.parametrize("path", ["/ws/cases/", "/ws/cases"])
def test_handshake_with_and_without_trailing_slash(raw, token_for, path):
    socket = raw(path=path)
    opening = socket.recv()
    assert opening[0] == "0"
    handshake = json.loads(opening[1:])
    assert handshake["upgrades"] == []
    assert handshake["pingInterval"] == 1000
    assert handshake["pingTimeout"] == 2000
    assert handshake["maxPayload"] > 0
    assert handshake["sid"]
    socket.send("40" + json.dumps({"token": token_for("IB")}))
    reply = json.loads(socket.recv_until("40")[2:])
    assert set(reply) == {"sid", "pid"}
    # The server pings on schedule; answering keeps the socket open.
    assert socket.recv_until("2", timeout=3) == "2"
    socket.send("3")
    assert socket.is_open


@pytest.mark.parametrize(
    "query", ["EIO=3&transport=websocket", "EIO=4&transport=polling", "transport=websocket", "EIO=4"]
)
def test_other_engineio_versions_and_transports_are_refused(server, query):
    with pytest.raises(websockets.InvalidStatus) as refused:
        RawSocket(server.ws_url, query=query)
    assert refused.value.response.status_code == 403


def test_missed_pong_closes_the_socket(raw, token_for):
    socket = raw()
    socket.handshake(token_for("IB"))
    # Never answer pings: closed once pingInterval (1 s) + pingTimeout (2 s) have passed.
    assert socket.wait_closed(timeout=6) == 4408


def test_no_connect_in_time_closes_the_socket(raw):
    socket = raw()
    socket.recv()  # the open packet; then silence (the pongs alone do not count as CONNECT)
    assert socket.wait_closed(timeout=5) == 4408


BAD_FRAMES = [
    pytest.param("9hello", 1008, id="unknown-engineio-type"),
    pytest.param("hello", 1008, id="not-a-packet"),
    pytest.param("48[]", 1008, id="unknown-socketio-type"),
    pytest.param('42["subscribe", {"caseUrn": ', 1008, id="non-json"),
    pytest.param('451-["subscribe",{"_placeholder":true,"num":0}]', 1003, id="socketio-binary-event"),
    pytest.param("bAAEC", 1003, id="base64-binary-message"),
    pytest.param(b"\x04\x00\x01", 1003, id="binary-frame"),
    pytest.param("42" + json.dumps(["subscribe", {"caseUrn": "x" * 40_000}]), 1009, id="oversized-frame"),
]


@pytest.mark.parametrize(("frame", "close_code"), BAD_FRAMES)
def test_bad_input_closes_only_that_socket(server, raw, token_for, ib_case, frame, close_code):
    case, sub_case = ib_case
    bystander = PyClient(server.ws_url)
    try:
        bystander.connect(token_for("IB", Role.AIRPORT_OPERATOR, "urn:nexa:user:ib-bystander"))
        assert bystander.subscribe(case.urn) == {"ok": True}
        offender = raw()
        offender.handshake(token_for("IB", Role.AIRPORT_OPERATOR, "urn:nexa:user:ib-offender"))
        offender.send(frame)
        assert offender.wait_closed() == close_code

        commit_transition(sub_case, "mark_grouped")
        assert bystander.inbox.wait_for("subcase:state-changed").args[0]["subCaseUrn"] == sub_case.urn
        assert httpx.get(f"{server.base_url}/healthz", timeout=5).status_code == 200
    finally:
        bystander.close()


def test_event_before_connect_closes_the_socket(raw, ib_case):
    case, _ = ib_case
    socket = raw()
    socket.recv()
    socket.send("42" + json.dumps(["subscribe", {"caseUrn": case.urn}]))
    assert socket.wait_closed() == 1008


def test_subscribe_flood_is_answered_then_closed(server, raw, token_for, ib_case):
    case, sub_case = ib_case
    bystander = PyClient(server.ws_url)
    try:
        bystander.connect(token_for("IB", Role.AIRPORT_OPERATOR, "urn:nexa:user:ib-bystander"))
        assert bystander.subscribe(case.urn) == {"ok": True}
        flooder = raw()
        flooder.handshake(token_for("IB", Role.AIRPORT_OPERATOR, "urn:nexa:user:ib-flooder"))
        for ack_id in range(200):
            try:
                flooder.send(f"42{ack_id}" + json.dumps(["subscribe", {"caseUrn": case.urn}]))
            except websockets.ConnectionClosed:
                break
        answers: list[str] = []
        with pytest.raises(websockets.ConnectionClosed):
            while True:
                frame = flooder.recv(timeout=5)
                if frame.startswith("43"):
                    answers.append(frame)
        assert flooder.ws.close_code == 4429
        assert any('"ok":true' in answer for answer in answers), "the budget's first subscribes are served"
        assert any("rate limited" in answer for answer in answers), "the excess is answered, not ignored"

        commit_transition(sub_case, "mark_grouped")
        assert bystander.inbox.wait_for("subcase:state-changed").args[0]["subCaseUrn"] == sub_case.urn
    finally:
        bystander.close()


def test_connect_error_payload_and_close_code(raw):
    socket = raw()
    socket.recv()
    socket.send('40{"token":"garbage"}')
    assert socket.recv_until("44") == '44{"message":"unauthorized","data":{"code":4401}}'
    assert socket.wait_closed() == 4401


def test_every_event_carries_its_offset_as_a_string(raw, token_for, ib_case):
    case, sub_case = ib_case
    socket = raw()
    socket.handshake(token_for("IB"))
    socket.send("421" + json.dumps(["subscribe", {"caseUrn": case.urn}]))
    assert socket.recv_until("43") == '431[{"ok":true}]'
    commit_transition(sub_case, "mark_grouped")
    name, payload, offset = json.loads(socket.recv_until('42["subcase:state-changed"')[2:])
    assert name == "subcase:state-changed"
    assert payload["subCaseUrn"] == sub_case.urn
    assert isinstance(offset, str)
    assert offset.isdigit()
