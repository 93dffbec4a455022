"""Structured logs: JSON lines carrying the correlation URN, airline and operator of the request."""

import io
import json
import logging

import pytest
import structlog
from django.test import Client

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.platform.contract_urls")]


@pytest.fixture
def json_log_lines():
    """Capture what the configured JSON formatter writes for the root logger."""
    formatter = next(
        handler.formatter
        for handler in logging.getLogger().handlers
        if isinstance(handler.formatter, structlog.stdlib.ProcessorFormatter)
    )
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    logging.getLogger().addHandler(handler)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    finally:
        logging.getLogger().removeHandler(handler)


def test_a_request_log_line_carries_correlation_airline_and_operator(token_for, json_log_lines):
    client = Client(
        HTTP_AUTHORIZATION=f"Bearer {token_for('LH', 'ADMIN', 'urn:nexa:user:lh-admin')}", raise_request_exception=False
    )
    response = client.get("/v1/_test/fail/crash")
    assert response.status_code == 500
    [line] = [entry for entry in json_log_lines() if entry["event"] == "unhandled_error"]
    assert line["correlation_urn"] == response["X-Correlation-Id"]
    assert line["airline"] == "LH"
    assert line["operator_urn"] == "urn:nexa:user:lh-admin"
    assert line["level"] == "error"
    assert "secret internals" in line["exception"]  # the trace goes to the log, never to the client
    assert line["path"] == "/v1/_test/fail/crash"
