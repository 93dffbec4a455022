"""POST /v1/auth/logout revokes the caller's own token (its jti): the next call with it is a 401,
logging out again is a harmless 204 audited once, the caller's other tokens keep working."""

import time
import uuid

import jwt
import pytest
from rest_framework.test import APIClient

from audit.models import AuditEntry
from nexa.platform import auth
from nexa.platform.auth import CLAIM_AIRLINE, CLAIM_OPERATOR, CLAIM_ROLE
from nexa.platform.roles import Role
from tests.api_base import assert_problem

pytestmark = pytest.mark.django_db

ME = "urn:nexa:user:ib-leaving"


def _client(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def test_logout_revokes_the_callers_token_and_is_idempotent(token_for):
    token, other = token_for("IB", Role.OPS_SUPERVISOR, ME), token_for("IB", Role.OPS_SUPERVISOR, ME)
    me = _client(token)
    assert me.get("/v1/operators").status_code == 200

    response = me.post("/v1/auth/logout")

    assert response.status_code == 204, response.content
    body = assert_problem(me.get("/v1/operators"), 401, "unauthorized")
    assert "revoked" in body["detail"]
    assert _client(other).get("/v1/operators").status_code == 200  # per token, not per operator
    assert me.post("/v1/auth/logout").status_code == 204  # a retried logout is not an error
    entry = AuditEntry.objects.get(action="auth.logout")
    assert (entry.airline, entry.actor, entry.entity_urn) == ("IB", ME, ME)
    assert entry.correlation_urn == response["X-Correlation-Id"]
    jti = jwt.decode(token, options={"verify_signature": False})["jti"]
    assert entry.before == {"tokenId": jti}
    assert auth.is_token_id_revoked(jti)


def test_the_revocation_lasts_as_long_as_the_token(token_for, redis_client):
    token = token_for("IB", Role.AIRPORT_OPERATOR, ME, ttl_seconds=120)
    assert _client(token).post("/v1/auth/logout").status_code == 204
    jti = jwt.decode(token, options={"verify_signature": False})["jti"]
    assert 120 <= redis_client.ttl(auth.REVOKED_KEY_PREFIX + jti) <= 120 + 31 + 1


def test_a_token_without_jti_cannot_be_logged_out_outside_production():
    now = int(time.time())
    claims = {
        "iss": "https://nexa.dev/issuer",
        "aud": "https://api.nexa/v1",
        "sub": ME,
        "iat": now,
        "exp": now + 600,
        CLAIM_AIRLINE: "IB",
        CLAIM_ROLE: "AIRPORT_OPERATOR",
        CLAIM_OPERATOR: ME,
    }
    key = auth._load_or_create_dev_key()
    token = jwt.encode(claims, key, algorithm="RS256", headers={"kid": auth._public_jwk(key)["kid"]})
    assert_problem(_client(token).post("/v1/auth/logout"), 422, "token-not-revocable")
    assert not AuditEntry.objects.exists()


def test_a_garbage_token_cannot_log_out():
    assert_problem(_client(str(uuid.uuid4())).post("/v1/auth/logout"), 401, "unauthorized")


def test_the_new_routes_are_described_in_the_openapi_schema():
    paths = APIClient().get("/v1/openapi.json").json()["paths"]
    logout = paths["/v1/auth/logout"]["post"]
    assert logout["operationId"] == "auth_logout" and "204" in logout["responses"]
    assert "application/problem+json" in logout["responses"]["401"]["content"]
    reactivate = paths["/v1/operators/{operator_urn}/reactivate"]["post"]
    assert reactivate["operationId"] == "operators_reactivate"
    assert {"200", "401", "403", "404", "409"} <= set(reactivate["responses"])
    assert reactivate["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/ReasonRequest")
    deactivate = paths["/v1/operators/{operator_urn}/deactivate"]["post"]
    assert "last-active-admin" in deactivate["responses"]["409"]["description"]
