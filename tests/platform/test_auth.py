"""Bearer JWT authentication (ARCHITECTURE §3.1): every bad token is a 401 problem."""

import http.server
import json
import threading
import time
import uuid

import jwt
import pytest
import structlog
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from django.core.management import call_command
from django.core.management.base import CommandError
from rest_framework.test import APIClient

from nexa.platform import auth
from nexa.platform.auth import CLAIM_AIRLINE, CLAIM_OPERATOR, CLAIM_ROLE, issue_token

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.platform.contract_urls")]

WHOAMI = "/v1/_test/whoami"


def _claims(**overrides) -> dict:
    now = int(time.time())
    claims = {
        "iss": "https://nexa.dev/issuer",
        "aud": "https://api.nexa/v1",
        "sub": "urn:nexa:user:opsA",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": str(uuid.uuid4()),
        CLAIM_AIRLINE: "IB",
        CLAIM_ROLE: "OPS_SUPERVISOR",
        CLAIM_OPERATOR: "urn:nexa:user:opsA",
    }
    claims.update(overrides)
    return {key: value for key, value in claims.items() if value is not None}


def _dev_signed(claims: dict, *, kid: str | None = None) -> str:
    key = auth._load_or_create_dev_key()
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid or auth._public_jwk(key)["kid"]})


def _call(token: str | None, path: str = WHOAMI):
    client = APIClient()
    if token is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client.get(path)


def _assert_401(response, fragment: str):
    assert response.status_code == 401, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 401
    assert body["type"].endswith("/unauthorized")
    assert fragment.lower() in body["detail"].lower()
    assert body["instance"] == response["X-Correlation-Id"]
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_valid_token_yields_the_principal():
    response = _call(_dev_signed(_claims()))
    assert response.status_code == 200
    assert response.json() == {"airline": "IB", "role": "OPS_SUPERVISOR", "operatorUrn": "urn:nexa:user:opsA"}


def test_issue_token_command_prints_a_token_the_api_accepts(capsys):
    call_command("issue_token", "--airline", "LH", "--role", "FINANCE_AUDIT", "--operator", "urn:nexa:user:fin1")
    token = capsys.readouterr().out.strip()
    response = _call(token)
    # FINANCE_AUDIT is below AIRPORT_OPERATOR: authenticated (not 401) but forbidden.
    assert response.status_code == 403
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims[CLAIM_AIRLINE] == "LH" and claims[CLAIM_OPERATOR] == "urn:nexa:user:fin1"
    assert claims["exp"] - claims["iat"] == 3600


@pytest.mark.parametrize(
    "arguments",
    [
        ["--airline", "IB", "--role", "PILOT", "--operator", "urn:nexa:user:x"],
        ["--airline", "IBERIA", "--role", "ADMIN", "--operator", "urn:nexa:user:x"],
        ["--airline", "IB", "--role", "ADMIN", "--operator", "urn:nexa:user:x", "--ttl", "0"],
    ],
)
def test_issue_token_command_refuses_bad_arguments(arguments):
    with pytest.raises((CommandError, SystemExit)):
        call_command("issue_token", *arguments)


def test_missing_token_is_401():
    _assert_401(_call(None), "bearer token is required")


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer    ", "Token abc"])
def test_malformed_authorization_header_is_401(header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get(WHOAMI)
    assert response.status_code == 401
    assert response.json()["status"] == 401


def test_garbage_token_is_401():
    _assert_401(_call("not-a-jwt"), "well-formed")


def test_expired_token_is_401():
    past = int(time.time()) - 3600
    _assert_401(_call(_dev_signed(_claims(iat=past - 60, nbf=past - 60, exp=past))), "expired")


def test_token_not_yet_valid_is_401():
    future = int(time.time()) + 3600
    _assert_401(_call(_dev_signed(_claims(nbf=future, exp=future + 600))), "not valid yet")


def test_wrong_audience_is_401():
    _assert_401(_call(_dev_signed(_claims(aud="https://other.api/v1"))), "audience")


def test_wrong_issuer_is_401():
    _assert_401(_call(_dev_signed(_claims(iss="https://evil.example/"))), "issuer")


def test_bad_signature_is_401():
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    dev_kid = auth._public_jwk(auth._load_or_create_dev_key())["kid"]
    forged = jwt.encode(_claims(), other_key, algorithm="RS256", headers={"kid": dev_kid})
    _assert_401(_call(forged), "signature")


def test_tampered_payload_is_401():
    header, _payload, signature = _dev_signed(_claims()).split(".")
    tampered_claims = _claims(**{CLAIM_ROLE: "ADMIN"})
    tampered_payload = jwt.utils.base64url_encode(json.dumps(tampered_claims).encode()).decode()
    _assert_401(_call(f"{header}.{tampered_payload}.{signature}"), "signature")


def test_unknown_kid_is_401():
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode(_claims(), other_key, algorithm="RS256", headers={"kid": "someone-elses-key"})
    _assert_401(_call(token), "unknown key")


def test_alg_none_is_401():
    token = jwt.encode(_claims(), None, algorithm="none")
    _assert_401(_call(token), "'none'")


def test_hs256_signed_with_the_public_key_is_401():
    # The classic algorithm-confusion attack: HMAC keyed with the published RSA key.
    header = {"alg": "HS256", "typ": "JWT", "kid": auth._public_jwk(auth._load_or_create_dev_key())["kid"]}
    signing_input = (
        jwt.utils.base64url_encode(json.dumps(header).encode()).decode()
        + "."
        + jwt.utils.base64url_encode(json.dumps(_claims()).encode()).decode()
    )
    import hashlib
    import hmac

    public_pem = auth.dev_jwks()["keys"][0]["n"].encode()
    signature = jwt.utils.base64url_encode(hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest())
    _assert_401(_call(f"{signing_input}.{signature.decode()}"), "'HS256'")


@pytest.mark.parametrize("claim", [CLAIM_AIRLINE, CLAIM_ROLE, CLAIM_OPERATOR, "sub", "exp"])
def test_missing_claim_is_401(claim):
    claims = _claims()
    del claims[claim]
    _assert_401(_call(_dev_signed(claims)), claim)


def test_unknown_role_is_401():
    _assert_401(_call(_dev_signed(_claims(**{CLAIM_ROLE: "CAPTAIN"}))), "unknown role")


def test_airline_claim_must_be_an_iata_code():
    _assert_401(_call(_dev_signed(_claims(**{CLAIM_AIRLINE: "iberia airlines"}))), "iata")


def test_revoked_token_is_401(capsys):
    token = _dev_signed(_claims())
    assert _call(token).status_code == 200
    call_command("revoke_token", token)
    assert "revoked" in capsys.readouterr().out
    _assert_401(_call(token), "revoked")
    # Another token of the same operator is unaffected: revocation is per jti.
    assert _call(_dev_signed(_claims())).status_code == 200


def test_revoke_by_jti():
    jti = str(uuid.uuid4())
    token = _dev_signed(_claims(jti=jti))
    call_command("revoke_token", jti)
    _assert_401(_call(token), "revoked")


def test_dev_jwks_is_served_and_verifies_dev_tokens():
    response = APIClient().get("/.well-known/jwks.json")
    assert response.status_code == 200
    [key] = response.json()["keys"]
    token = issue_token(airline="IB", role="ADMIN", operator_urn="urn:nexa:user:a")
    assert key["kid"] == jwt.get_unverified_header(token)["kid"]
    claims = jwt.decode(token, jwt.PyJWK(key).key, algorithms=["RS256"], audience="https://api.nexa/v1")
    assert claims[CLAIM_ROLE] == "ADMIN"


# --- a real provider: JWKS fetched over HTTP, cached, refetched on unknown kid ---------------------


class _JwksServer:
    """A tiny identity provider's JWKS endpoint on loopback, counting fetches. ``mode``: "ok", "down"
    (503), "malformed" (a body that is not JSON), "not-a-jwks" (JSON without a keys list), "slow"
    (answers once ``release`` is set)."""

    def __init__(self):
        self.keys: list = []
        self.fetches = 0
        self.mode = "ok"
        self.release = threading.Event()
        self.serving = threading.Event()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.fetches += 1
                status, body = 200, json.dumps({"keys": outer.keys}).encode()
                if outer.mode == "down":
                    status, body = 503, b"maintenance"
                elif outer.mode == "malformed":
                    body = b'{"keys": [ <html>oops'
                elif outer.mode == "not-a-jwks":
                    body = b'{"keys": "none"}'
                elif outer.mode == "slow":
                    outer.serving.set()
                    outer.release.wait(timeout=10)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks.json"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def add_key(self, private_key, kid: str, alg: str) -> None:
        jwk = json.loads(jwt.algorithms.get_default_algorithms()[alg].to_jwk(private_key.public_key()))
        self.keys.append({**jwk, "kid": kid, "use": "sig", "alg": alg})


@pytest.fixture
def provider(settings, monkeypatch):
    server = _JwksServer()
    settings.OIDC_ISSUER = "https://login.provider.example/"
    settings.OIDC_JWKS_URL = server.url
    monkeypatch.setattr(auth.KeySet, "REFETCH_COOLDOWN_SECONDS", 0.0)
    auth.key_set.forget()
    yield server
    server.release.set()
    server.server.shutdown()
    auth.key_set.forget()


def _provider_token(private_key, kid: str, alg: str = "RS256") -> str:
    claims = _claims(iss="https://login.provider.example/")
    return jwt.encode(claims, private_key, algorithm=alg, headers={"kid": kid})


def test_provider_tokens_verify_against_its_jwks_which_is_cached(provider):
    key = ec.generate_private_key(ec.SECP256R1())
    provider.add_key(key, "k1", "ES256")
    for _ in range(3):
        assert _call(_provider_token(key, "k1", "ES256")).status_code == 200
    assert provider.fetches == 1


def test_provider_key_rotation_is_picked_up_on_unknown_kid(provider):
    first = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    provider.add_key(first, "k1", "RS256")
    assert _call(_provider_token(first, "k1")).status_code == 200
    rotated = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    provider.add_key(rotated, "k2", "RS256")
    assert _call(_provider_token(rotated, "k2")).status_code == 200
    assert provider.fetches == 2


def test_with_a_provider_dev_tokens_are_refused_and_the_dev_issuer_is_off(provider, capsys):
    provider.add_key(rsa.generate_private_key(public_exponent=65537, key_size=2048), "k1", "RS256")
    _assert_401(_call(_dev_signed(_claims())), "unknown key")
    with pytest.raises(RuntimeError):
        issue_token(airline="IB", role="ADMIN", operator_urn="urn:nexa:user:a")
    with pytest.raises(CommandError):
        call_command("issue_token", "--airline", "IB", "--role", "ADMIN", "--operator", "urn:nexa:user:a")
    assert APIClient().get("/.well-known/jwks.json").status_code == 404


def test_unreachable_jwks_is_401_not_500(settings):
    settings.OIDC_ISSUER = "https://login.provider.example/"
    settings.OIDC_JWKS_URL = "http://127.0.0.1:9/jwks.json"
    auth.key_set.forget()
    try:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        _assert_401(_call(_provider_token(key, "k1")), "could not be fetched")
    finally:
        auth.key_set.forget()


# --- JWKS outages: last good keys (bounded), no lock held over the fetch, malformed bodies -------------


def _rsa():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def test_a_jwks_outage_after_a_good_fetch_keeps_serving_the_last_good_keys_and_logs(provider, settings):
    settings.NEXA_JWKS_CACHE_SECONDS = 0  # every request wants a refresh
    key = _rsa()
    provider.add_key(key, "k1", "RS256")
    assert _call(_provider_token(key, "k1")).status_code == 200
    provider.mode = "down"
    with structlog.testing.capture_logs() as logs:
        assert _call(_provider_token(key, "k1")).status_code == 200
    assert provider.fetches == 2  # it did try
    [failure] = [entry for entry in logs if entry["event"] == "jwks.fetch_failed"]
    assert failure["serving_last_good_keys"] is True and "503" in failure["error"]


@pytest.mark.parametrize("mode", ["malformed", "not-a-jwks"])
def test_a_malformed_jwks_body_is_a_logged_401_not_a_500(provider, mode):
    provider.mode = mode
    with structlog.testing.capture_logs() as logs:
        _assert_401(_call(_provider_token(_rsa(), "k1")), "could not be fetched")
    assert [entry for entry in logs if entry["event"] == "jwks.fetch_failed"]


def test_a_malformed_jwks_after_a_good_fetch_keeps_the_good_keys(provider, settings):
    settings.NEXA_JWKS_CACHE_SECONDS = 0
    key = _rsa()
    provider.add_key(key, "k1", "RS256")
    assert _call(_provider_token(key, "k1")).status_code == 200
    provider.mode = "malformed"
    assert _call(_provider_token(key, "k1")).status_code == 200


def test_the_last_good_keys_serve_no_longer_than_the_staleness_bound(provider, settings):
    settings.NEXA_JWKS_CACHE_SECONDS = 0
    settings.NEXA_JWKS_MAX_STALENESS_SECONDS = 1
    key = _rsa()
    provider.add_key(key, "k1", "RS256")
    assert _call(_provider_token(key, "k1")).status_code == 200
    provider.mode = "down"
    assert _call(_provider_token(key, "k1")).status_code == 200  # within the bound
    time.sleep(1.2)
    with structlog.testing.capture_logs() as logs:
        _assert_401(_call(_provider_token(key, "k1")), "could not be fetched")
    assert [entry for entry in logs if entry["event"] == "jwks.keys_too_stale"]
    provider.mode = "ok"  # the provider is back: served again
    assert _call(_provider_token(key, "k1")).status_code == 200


def test_requests_with_known_kids_do_not_wait_for_a_slow_jwks_fetch(provider, settings):
    """One request fetches (an unknown kid) while the provider hangs; a request whose kid is known is
    answered meanwhile — no process-wide lock is held over the HTTP call."""
    settings.NEXA_JWKS_CACHE_SECONDS = 0  # the known keys are due a refresh too
    known, rotated = _rsa(), _rsa()
    provider.add_key(known, "k1", "RS256")
    assert _call(_provider_token(known, "k1")).status_code == 200
    provider.add_key(rotated, "k2", "RS256")
    provider.mode = "slow"
    slow_result: dict = {}
    fetcher = threading.Thread(target=lambda: slow_result.update(key=auth.key_set.key_for("k2")))
    fetcher.start()
    try:
        assert provider.serving.wait(timeout=5), "the fetch never reached the provider"
        started = time.monotonic()
        assert _call(_provider_token(known, "k1")).status_code == 200
        assert time.monotonic() - started < 1.0
        assert fetcher.is_alive()  # the slow fetch is still in flight
    finally:
        provider.release.set()
        fetcher.join(timeout=10)
    assert slow_result["key"] is not None  # the fetching request got its rotated key


# --- production: jti required, no development issuer -------------------------------------------------


def test_production_refuses_tokens_without_jti(provider, settings):
    settings.NEXA_ENV = "production"
    key = _rsa()
    provider.add_key(key, "k1", "RS256")
    without = jwt.encode(_claims(iss="https://login.provider.example/", jti=None), key, "RS256", headers={"kid": "k1"})
    _assert_401(_call(without), "jti")
    assert _call(_provider_token(key, "k1")).status_code == 200
    settings.NEXA_ENV = "development"  # elsewhere a token without jti is accepted (and cannot be revoked)
    assert _call(without).status_code == 200


def test_the_development_issuer_is_unreachable_in_production_even_without_oidc_issuer(settings):
    dev_token = _dev_signed(_claims())
    settings.NEXA_ENV = "production"
    settings.OIDC_ISSUER = ""
    settings.OIDC_JWKS_URL = ""
    auth.key_set.forget()
    try:
        with pytest.raises(RuntimeError):
            issue_token(airline="IB", role="ADMIN", operator_urn="urn:nexa:user:a")
        with pytest.raises(CommandError):
            call_command("issue_token", "--airline", "IB", "--role", "ADMIN", "--operator", "urn:nexa:user:a")
        assert APIClient().get("/.well-known/jwks.json").status_code == 404
        _assert_401(_call(dev_token), "could not be fetched")
    finally:
        auth.key_set.forget()
