"""Bearer JWT authentication (ARCHITECTURE §3.1).

Tokens are verified locally against a JWKS: the configured provider's (``OIDC_JWKS_URL``,
cached, refetched when an unknown ``kid`` shows up) or, in development, the project's own
signing key under ``NEXA_STATE_DIR``. No call to the provider per request. The same
:func:`authenticate_token` serves REST and the Socket.IO CONNECT.
"""

import base64
import hashlib
import json
import os
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import jwt
import structlog
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed

from nexa.platform.redis import get_redis
from nexa.platform.roles import Role

CLAIM_AIRLINE = "https://nexa/airline"
CLAIM_ROLE = "https://nexa/role"
CLAIM_OPERATOR = "https://nexa/operator_urn"
ALLOWED_ALGORITHMS = ["RS256", "ES256"]
REVOKED_KEY_PREFIX = "nexa:revoked-jti:"


class InvalidToken(Exception):
    """The token cannot be accepted; ``str(error)`` says why (safe to show the caller)."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the tenant (airline IATA code), role and operator URN from the token."""

    airline: str
    role: Role
    operator_urn: str
    subject: str
    token_id: str | None = None
    expires_at: datetime | None = None

    # DRF treats ``request.user`` as authenticated through this attribute.
    is_authenticated = True
    is_anonymous = False


# --- signing keys ---------------------------------------------------------------------------


def dev_issuer_enabled() -> bool:
    """The project mints its own tokens only when no real provider is configured."""
    return not settings.OIDC_ISSUER


def expected_issuer() -> str:
    return settings.OIDC_ISSUER or settings.NEXA_DEV_ISSUER


_dev_key_lock = threading.Lock()


def _dev_key_path() -> Path:
    return Path(settings.NEXA_STATE_DIR) / "dev-signing-key.pem"


_dev_keys: dict[Path, rsa.RSAPrivateKey] = {}


def _load_or_create_dev_key() -> rsa.RSAPrivateKey:
    path = _dev_key_path()
    with _dev_key_lock:
        if path in _dev_keys:
            return _dev_keys[path]
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            pem = key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            # Write-then-rename so concurrent first starts never read half a key.
            temporary = path.with_suffix(f".{uuid.uuid4().hex}.tmp")
            temporary.write_bytes(pem)
            temporary.chmod(0o600)
            try:
                os.link(temporary, path)
            except FileExistsError:
                pass
            finally:
                temporary.unlink(missing_ok=True)
        _dev_keys[path] = serialization.load_pem_private_key(path.read_bytes(), password=None)
        return _dev_keys[path]


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _public_jwk(key: rsa.RSAPrivateKey) -> dict:
    numbers = key.public_key().public_numbers()
    jwk = {"kty": "RSA", "n": _b64url_uint(numbers.n), "e": _b64url_uint(numbers.e)}
    # RFC 7638 thumbprint as the key id: stable for the same key.
    canonical = json.dumps({"e": jwk["e"], "kty": "RSA", "n": jwk["n"]}, separators=(",", ":"), sort_keys=True)
    kid = base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()
    return {**jwk, "kid": kid, "use": "sig", "alg": "RS256"}


def dev_jwks() -> dict:
    """The development issuer's public keys, as served at ``/.well-known/jwks.json``."""
    return {"keys": [_public_jwk(_load_or_create_dev_key())]}


class KeySet:
    """Verification keys by ``kid``: fetched from a JWKS URL and cached, or the dev key."""

    # An unknown kid triggers at most one refetch per this many seconds (no refetch storms).
    REFETCH_COOLDOWN_SECONDS = 10.0

    def __init__(self) -> None:
        self._keys: dict[str, object] = {}
        self._fetched_at = 0.0
        self._source: str | None = None
        self._lock = threading.Lock()

    def _load(self) -> None:
        url = settings.OIDC_JWKS_URL
        if url:
            response = httpx.get(url, timeout=5.0)
            response.raise_for_status()
            document = response.json()
        else:
            document = dev_jwks()
        keys: dict[str, object] = {}
        for entry in document.get("keys", []):
            if entry.get("use", "sig") != "sig" or "kid" not in entry:
                continue
            try:
                keys[entry["kid"]] = jwt.PyJWK(entry).key
            except jwt.PyJWKError:
                continue
        self._keys = keys
        self._fetched_at = time.monotonic()
        self._source = url or "dev"

    def key_for(self, kid: str):
        source = settings.OIDC_JWKS_URL or "dev"
        with self._lock:
            stale = time.monotonic() - self._fetched_at > settings.NEXA_JWKS_CACHE_SECONDS
            if self._source != source or stale:
                self._load()
            if kid not in self._keys and time.monotonic() - self._fetched_at > self.REFETCH_COOLDOWN_SECONDS:
                self._load()
            return self._keys.get(kid)

    def forget(self) -> None:
        with self._lock:
            self._keys, self._fetched_at, self._source = {}, 0.0, None


key_set = KeySet()


# --- minting (development only) --------------------------------------------------------------


def issue_token(*, airline: str, role: Role | str, operator_urn: str, ttl_seconds: int = 3600) -> str:
    if not dev_issuer_enabled():
        raise RuntimeError("A real OIDC provider is configured (OIDC_ISSUER); the development issuer is disabled.")
    key = _load_or_create_dev_key()
    now = int(time.time())
    claims = {
        "iss": settings.NEXA_DEV_ISSUER,
        "aud": settings.OIDC_AUDIENCE,
        "sub": operator_urn,
        "iat": now,
        "nbf": now,
        "exp": now + ttl_seconds,
        "jti": str(uuid.uuid4()),
        CLAIM_AIRLINE: airline,
        CLAIM_ROLE: str(Role(role)),
        CLAIM_OPERATOR: operator_urn,
    }
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": _public_jwk(key)["kid"]})


# --- revocation ------------------------------------------------------------------------------


def revoke_token_id(token_id: str, *, ttl_seconds: int = 86400) -> None:
    """Refuse this ``jti`` from now on. The mark expires with the token (no unbounded growth)."""
    get_redis().set(REVOKED_KEY_PREFIX + token_id, "1", ex=max(ttl_seconds, 1))


def is_token_id_revoked(token_id: str) -> bool:
    return bool(get_redis().exists(REVOKED_KEY_PREFIX + token_id))


# --- validation ------------------------------------------------------------------------------


def authenticate_token(token: str) -> Principal:
    """Verify ``token`` and return its :class:`Principal`; raise :class:`InvalidToken` otherwise."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise InvalidToken("The token is not a well-formed JWT.") from None
    algorithm = header.get("alg")
    if algorithm not in ALLOWED_ALGORITHMS:
        raise InvalidToken(f"Tokens signed with {algorithm!r} are not accepted.")
    kid = header.get("kid")
    if not kid:
        raise InvalidToken("The token has no key id (kid).")
    try:
        key = key_set.key_for(kid)
    except httpx.HTTPError:
        raise InvalidToken("The signing keys could not be fetched.") from None
    if key is None:
        raise InvalidToken("The token was signed with an unknown key.")
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=ALLOWED_ALGORITHMS,
            audience=settings.OIDC_AUDIENCE,
            issuer=expected_issuer(),
            leeway=settings.NEXA_JWT_LEEWAY_SECONDS,
            options={"require": ["exp", "iss", "aud", "sub"]},
        )
    except jwt.ExpiredSignatureError:
        raise InvalidToken("The token has expired.") from None
    except jwt.ImmatureSignatureError:
        raise InvalidToken("The token is not valid yet.") from None
    except jwt.InvalidAudienceError:
        raise InvalidToken("The token is for another audience.") from None
    except jwt.InvalidIssuerError:
        raise InvalidToken("The token comes from an unknown issuer.") from None
    except jwt.InvalidSignatureError:
        raise InvalidToken("The token signature is invalid.") from None
    except jwt.MissingRequiredClaimError as error:
        raise InvalidToken(f"The token lacks the {error.claim!r} claim.") from None
    except jwt.PyJWTError:
        raise InvalidToken("The token is invalid.") from None

    airline = claims.get(CLAIM_AIRLINE)
    role = claims.get(CLAIM_ROLE)
    operator_urn = claims.get(CLAIM_OPERATOR)
    for name, value in ((CLAIM_AIRLINE, airline), (CLAIM_ROLE, role), (CLAIM_OPERATOR, operator_urn)):
        if not isinstance(value, str) or not value:
            raise InvalidToken(f"The token lacks the {name!r} claim.")
    if not (2 <= len(airline) <= 3 and airline.isalnum() and airline.isupper()):
        raise InvalidToken("The airline claim is not an IATA airline code.")
    try:
        role = Role(role)
    except ValueError:
        raise InvalidToken(f"Unknown role {role!r}.") from None
    token_id = claims.get("jti")
    if token_id and is_token_id_revoked(str(token_id)):
        raise InvalidToken("The token has been revoked.")
    return Principal(
        airline=airline,
        role=role,
        operator_urn=operator_urn,
        subject=str(claims["sub"]),
        token_id=str(token_id) if token_id else None,
        expires_at=datetime.fromtimestamp(claims["exp"], tz=UTC),
    )


class BearerTokenAuthentication(BaseAuthentication):
    """DRF authentication: ``Authorization: Bearer <JWT>`` → (principal, principal)."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationFailed("Use 'Authorization: Bearer <token>'.")
        try:
            principal = authenticate_token(token.strip())
        except InvalidToken as error:
            raise AuthenticationFailed(str(error)) from None
        # Let request-scoped logs carry who is calling.
        structlog.contextvars.bind_contextvars(airline=principal.airline, operator_urn=principal.operator_urn)
        return principal, principal

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="nexa"'
