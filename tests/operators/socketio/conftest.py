"""Fixtures of the presence-channel tests: a live uvicorn (real Redis channel layer, test database),
cases committed in the test process, and helpers that commit events the way services do."""

import shutil

import pytest

from cases import services as case_services
from cases.models import SubCase
from nexa.platform.auth import Principal
from nexa.platform.roles import Role
from tests.cases.factories import CaseFactory, SubCaseFactory
from tests.fixtures import wait_until_live_sessions_closed
from tests.operators.socketio.clients import BASE_DIR

# Short heartbeat so ping/pong, session touch and revocation checks happen within a test's deadline.
SERVER_ENV = {
    "NEXA_SOCKET_PING_INTERVAL_MS": "1000",
    "NEXA_SOCKET_PING_TIMEOUT_MS": "2000",
    "NEXA_SOCKET_CONNECT_TIMEOUT_SECONDS": "2",
}

SUPERVISOR_IB = Principal(
    airline="IB", role=Role.OPS_SUPERVISOR, operator_urn="urn:nexa:user:ib-supervisor", subject="ib-supervisor"
)


@pytest.fixture(autouse=True)
def _sessions_closed_before_flush(transactional_db):
    """After a test's clients are closed, wait (bounded) until the live server processes have closed their
    operator sessions: their disconnect transactions must not race the database flush of the teardown."""
    yield
    wait_until_live_sessions_closed()


@pytest.fixture(scope="module")
def server(asgi_server_factory):
    return asgi_server_factory(extra_env=SERVER_ENV)


@pytest.fixture(scope="session")
def node_client_ready():
    """socket.io-client must be installed from package-lock.json (``make node_modules`` runs ``npm ci``)."""
    if shutil.which("node") is None:
        pytest.fail("node is not installed: the presence-channel interop tests need node >= 18 and npm")
    if not (BASE_DIR / "node_modules" / "socket.io-client" / "package.json").exists():
        pytest.fail("socket.io-client is not installed: run `make node_modules` (npm ci from package-lock.json)")


@pytest.fixture
def ib_case():
    """An IB case with one PENDING sub-case (committed: the server process sees it)."""
    sub_case = SubCaseFactory(case=CaseFactory(airline="IB"))
    return sub_case.case, sub_case


@pytest.fixture
def ux_case():
    """Another airline's case."""
    sub_case = SubCaseFactory(case=CaseFactory(airline="UX", flight_number="UX2001"))
    return sub_case.case, sub_case


def commit_transition(sub_case: SubCase, transition: str = "mark_grouped", principal: Principal = SUPERVISOR_IB):
    """Move the sub-case in the test process: the service commits, the outbox relays here, and the sink
    fans the events out through Redis to the server's sockets."""
    current = SubCase.objects.get(pk=sub_case.pk)
    return case_services.subcase_transition(
        principal=principal, sub_case=current, transition=transition, expected_version=current.version
    )
