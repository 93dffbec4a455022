"""Delivery across processes: an event committed by a third process (this test process, like a Celery
worker or a management command would) reaches subscribed sockets on two ASGI processes sharing Redis."""

import pytest

from nexa.platform.roles import Role
from tests.operators.socketio.clients import NodeClient, PyClient
from tests.operators.socketio.conftest import SERVER_ENV, commit_transition

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.usefixtures("node_client_ready")
def test_an_event_reaches_sockets_on_two_server_processes(server, asgi_server_factory, token_for, ib_case):
    case, sub_case = ib_case
    second = asgi_server_factory(extra_env=SERVER_ENV)
    assert second.process.pid != server.process.pid
    python_socket = PyClient(server.ws_url)
    node_socket = NodeClient(second.ws_url, token_for("IB", Role.AIRPORT_OPERATOR, "urn:nexa:user:ib-node"))
    try:
        python_socket.connect(token_for("IB", Role.AIRPORT_OPERATOR, "urn:nexa:user:ib-python"))
        assert python_socket.subscribe(case.urn) == {"ok": True}
        node_socket.inbox.wait_for("connect")
        node_socket.send("subscribe", caseUrn=case.urn)
        assert node_socket.inbox.wait_for("ack").args[0]["ack"] == {"ok": True}

        commit_transition(sub_case, "mark_grouped")

        on_first = python_socket.inbox.wait_for("subcase:state-changed").args
        on_second = node_socket.inbox.wait_for("subcase:state-changed").args
        assert on_first == on_second, "same payload and the same offset everywhere"
        assert on_first[0]["status"] == "GROUPED"
    finally:
        python_socket.close()
        node_socket.close()
