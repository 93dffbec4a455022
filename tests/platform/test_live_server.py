"""The live ASGI server fixture serves the real stack over real HTTP (used by socket and SSE tests)."""

import time

import httpx
import pytest

pytestmark = pytest.mark.django_db(transaction=True)


def test_live_server_serves_health_and_authenticated_api(asgi_server, token_for):
    assert httpx.get(f"{asgi_server.base_url}/readyz", timeout=5).json()["status"] == "ready"
    response = httpx.get(
        f"{asgi_server.base_url}/v1/_bench/ping", headers={"Authorization": f"Bearer {token_for()}"}, timeout=5
    )
    assert response.status_code == 200
    assert response.json() == {"pong": True}
    assert response.headers["X-Correlation-Id"].startswith("urn:nexa:correlation:")


def test_bench_write_commits_one_outbox_row_that_is_relayed(asgi_server, token_for):
    """The write floor bench/compensate.py compares against: one transaction, one outbox row, relayed."""
    from nexa.platform.models import OutboxEvent

    response = httpx.post(
        f"{asgi_server.base_url}/v1/_bench/write", headers={"Authorization": f"Bearer {token_for()}"}, timeout=5
    )
    assert response.status_code == 202
    assert response.json() == {"written": True}
    [row] = OutboxEvent.objects.filter(event="bench:written")
    assert row.airline == "IB" and row.payload == {"bench": True}
    deadline = time.monotonic() + 10
    while row.sequence is None and time.monotonic() < deadline:  # the server's background relay
        time.sleep(0.05)
        row.refresh_from_db()
    assert row.sequence is not None and row.dispatched_at is not None
