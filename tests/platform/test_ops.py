"""/healthz, /readyz, /metrics and the OpenAPI document."""

import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def test_healthz_answers_without_dependencies(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_checks_postgres_redis_and_broker(client):
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    assert response.json()["checks"] == {"postgresql": "ok", "redis": "ok", "broker": "ok"}


def test_readyz_names_what_is_down(client, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:9/0"  # nothing listens on the discard port
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["checks"]["broker"].startswith("down")
    assert body["checks"]["postgresql"] == "ok"
    assert "broker" in body["detail"]


def _metric_value(text: str, name: str, **labels) -> float:
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.mark.urls("tests.platform.contract_urls")
def test_metrics_count_requests_by_route_and_status(client, client_for):
    before = _metric_value(
        client.get("/metrics").content.decode(), "nexa_http_requests_total", route="v1/_test/whoami", status="200"
    )
    api = client_for()
    for _ in range(3):
        assert api.get("/v1/_test/whoami").status_code == 200
    assert APIClient().get("/v1/_test/whoami").status_code == 401
    text = client.get("/metrics").content.decode()
    assert _metric_value(text, "nexa_http_requests_total", route="v1/_test/whoami", status="200") == before + 3
    assert _metric_value(text, "nexa_http_requests_total", route="v1/_test/whoami", status="401") >= 1
    assert _metric_value(text, "nexa_http_request_duration_seconds_count", route="v1/_test/whoami") >= 4


@pytest.mark.urls("tests.platform.contract_urls")
def test_openapi_documents_auth_problems_and_idempotency(client, token_for):
    response = client.get("/v1/openapi.json", HTTP_AUTHORIZATION=f"Bearer {token_for()}")
    assert response.status_code == 200
    schema = response.json()
    assert schema["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert "Problem" in schema["components"]["schemas"]
    echo = schema["paths"]["/v1/_test/echo"]["post"]
    headers = {p["name"] for p in echo["parameters"] if p["in"] == "header"}
    assert {"Idempotency-Key", "X-Correlation-Id"} <= headers
    for status in ("400", "401", "403", "409", "413", "415", "422", "429", "500"):
        assert "application/problem+json" in echo["responses"][status]["content"], status
    detail = schema["paths"]["/v1/_test/cases/{case_urn}"]["get"]
    assert "404" in detail["responses"]
    assert not any(p["name"] == "Idempotency-Key" for p in detail.get("parameters", []))


def test_swagger_ui_is_served_without_a_cdn(client):
    response = client.get("/v1/docs")
    assert response.status_code == 200
    assert b"swagger-ui" in response.content
    assert b"cdn.jsdelivr" not in response.content
