"""RFC 9457 problem details for every error under /v1, with the correlation URN as instance."""

import json
import uuid

import pytest
from django.test import Client

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.platform.contract_urls")]


def _assert_problem(response, status: int, slug: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert body["type"] == f"https://api.nexa/problems/{slug}"
    assert body["title"] and body["detail"]
    assert body["instance"].startswith("urn:nexa:correlation:")
    assert body["instance"] == response["X-Correlation-Id"]
    return body


def _raw_client(token_for) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {token_for()}")


def test_unknown_route_under_v1_is_a_404_problem(client_for):
    _assert_problem(client_for().get("/v1/no/such/route"), 404, "not-found")


def test_unknown_route_without_token_is_still_a_404_problem(client):
    _assert_problem(client.get("/v1/nothing-here"), 404, "not-found")


def test_routes_outside_v1_keep_html_errors(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert "problem+json" not in response["Content-Type"]


def test_wrong_method_is_a_405_problem(client_for):
    _assert_problem(client_for().delete("/v1/_test/whoami"), 405, "method-not-allowed")


def test_malformed_json_is_a_400_problem(token_for):
    response = _raw_client(token_for).post("/v1/_test/echo", data="{not json", content_type="application/json")
    body = _assert_problem(response, 400, "malformed-body")
    assert "not valid JSON" in body["detail"]


def test_non_utf8_body_is_a_400_problem(token_for):
    response = _raw_client(token_for).post(
        "/v1/_test/echo", data=b'{"name": "\xff\xfe"}', content_type="application/json"
    )
    body = _assert_problem(response, 400, "malformed-body")
    assert "UTF-8" in body["detail"]


def test_wrong_content_type_is_a_415_problem(token_for):
    response = _raw_client(token_for).post(
        "/v1/_test/echo", data="a=b", content_type="application/x-www-form-urlencoded"
    )
    _assert_problem(response, 415, "unsupported-media-type")


def test_oversized_body_is_a_413_problem(token_for, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    payload = json.dumps({"blob": "x" * 5000})
    response = _raw_client(token_for).post("/v1/_test/echo", data=payload, content_type="application/json")
    _assert_problem(response, 413, "payload-too-large")


def test_body_within_limit_is_accepted(token_for):
    response = _raw_client(token_for).post("/v1/_test/echo", data={"a": 1}, content_type="application/json")
    assert response.status_code == 200
    assert response.json() == {"echo": {"a": 1}}


def test_validation_problem_lists_fields(token_for):
    response = _raw_client(token_for).post("/v1/_test/echo", data="[1, 2]", content_type="application/json")
    body = _assert_problem(response, 400, "validation-error")
    assert body["errors"] == [{"field": "body", "message": "must be a JSON object"}]


def test_conflict_carries_its_extension_members(client_for):
    body = _assert_problem(client_for().get("/v1/_test/fail/conflict"), 409, "subcase-locked")
    assert body["lockedBy"] == "urn:nexa:user:other"
    assert body["expiresInSeconds"] == 90


def test_unprocessable_is_a_422_problem(client_for):
    body = _assert_problem(client_for().get("/v1/_test/fail/unprocessable"), 422, "unprocessable")
    assert body["errors"] == [{"field": "items[0].amount", "message": "must be positive"}]


def test_open_circuit_is_a_503_with_failed_domain_and_retry_after(client_for):
    response = client_for().get("/v1/_test/fail/downstream")
    body = _assert_problem(response, 503, "downstream-unavailable")
    assert body["failedDomain"] == "booking"
    assert response["Retry-After"] == "30"


def test_unhandled_error_is_a_500_problem_without_internals(token_for):
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token_for()}", raise_request_exception=False)
    response = client.get("/v1/_test/fail/crash")
    body = _assert_problem(response, 500, "internal-error")
    assert "secret internals" not in response.content.decode()
    assert "Traceback" not in response.content.decode()
    assert body["instance"] in body["detail"] or "instance" in body["detail"]


def test_rate_limit_is_a_429_problem_with_retry_after(client_for):
    client = client_for(operator=f"urn:nexa:user:{uuid.uuid4()}")
    statuses = [client.get("/v1/_test/throttled").status_code for _ in range(4)]
    assert statuses[:3] == [200, 200, 200]
    response = client.get("/v1/_test/throttled")
    _assert_problem(response, 429, "rate-limited")
    assert int(response["Retry-After"]) >= 1


# --- correlation ------------------------------------------------------------------------------


def test_a_correlation_urn_is_made_when_none_is_sent(client_for):
    response = client_for().get("/v1/_test/whoami")
    urn = response["X-Correlation-Id"]
    assert urn.startswith("urn:nexa:correlation:")
    assert uuid.UUID(urn.rsplit(":", 1)[1])


def test_incoming_correlation_urn_is_honoured(client_for):
    sent = f"urn:nexa:correlation:{uuid.uuid4()}"
    response = client_for().get("/v1/no/route", HTTP_X_CORRELATION_ID=sent)
    assert response["X-Correlation-Id"] == sent
    assert response.json()["instance"] == sent


def test_incoming_bare_uuid_is_wrapped(client_for):
    sent = str(uuid.uuid4())
    response = client_for().get("/v1/_test/whoami", HTTP_X_CORRELATION_ID=sent)
    assert response["X-Correlation-Id"] == f"urn:nexa:correlation:{sent}"


def test_traceparent_trace_id_becomes_the_correlation(client_for):
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    response = client_for().get("/v1/_test/whoami", HTTP_TRACEPARENT=f"00-{trace}-00f067aa0ba902b7-01")
    assert response["X-Correlation-Id"] == f"urn:nexa:correlation:{uuid.UUID(hex=trace)}"


@pytest.mark.parametrize("sent", ["<script>", "x" * 500, "urn:nexa:correlation:nope"])
def test_garbage_correlation_id_is_replaced(client_for, sent):
    response = client_for().get("/v1/_test/whoami", HTTP_X_CORRELATION_ID=sent)
    urn = response["X-Correlation-Id"]
    assert urn.startswith("urn:nexa:correlation:") and sent not in urn


def test_principal_rate_limit_counts_per_operator(client_for, monkeypatch):
    from rest_framework.throttling import SimpleRateThrottle

    monkeypatch.setitem(SimpleRateThrottle.THROTTLE_RATES, "principal", "3/hour")
    busy = client_for(operator=f"urn:nexa:user:{uuid.uuid4()}")
    assert [busy.get("/v1/_test/whoami").status_code for _ in range(3)] == [200, 200, 200]
    response = busy.get("/v1/_test/whoami")
    _assert_problem(response, 429, "rate-limited")
    assert 1 <= int(response["Retry-After"]) <= 3601
    # Another operator has a budget of their own.
    assert client_for(operator=f"urn:nexa:user:{uuid.uuid4()}").get("/v1/_test/whoami").status_code == 200
