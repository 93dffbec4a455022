"""The live ASGI server fixture serves the real stack over real HTTP (used by socket and SSE tests)."""

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
