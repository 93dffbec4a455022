"""Bearer JWT authentication (ARCHITECTURE §3.1).

Tokens are verified locally against a JWKS: the configured provider's (``OIDC_JWKS_URL``,
cached, refetched when an unknown ``kid`` shows up) or, in development, the project's own
signing key under ``NEXA_STATE_DIR``. No call to the provider per request. The same
:func:`authenticate_token` serves REST and the Socket.IO CONNECT.

JWKS outages (docs/platform.md § Tokens): a failed or malformed fetch is logged and the last good
keys keep serving for at most ``NEXA_JWKS_MAX_STALENESS_SECONDS`` after their fetch; with no usable
keys the token is refused (401), never a 500. The HTTP fetch runs outside the key-set lock: one
request fetches (single flight), requests whose ``kid`` is already known never wait for it.

A valid token is not enough: the principal must also be *active*. Apps register checks with
:func:`principal_check_register` (the operators app refuses deactivated operators); they share ONE
Redis round trip with the revocation check (:func:`standing`). REST answers a refused principal with
a 403 ``operator-deactivated`` problem; the SSE stream and the Socket.IO heartbeat re-check
:func:`standing` every cycle. The platform imports no app.

``NEXA_ENV=production`` refuses tokens without ``jti`` (they could not be revoked) and disables the
development issuer whatever ``OIDC_ISSUER`` says.
"""

import base64
import hashlib
import json
import os
import threading
import time
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import httpx
import jwt
import structlog
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed

from nexa.platform.problems import Problem
from nexa.platform.redis import get_redis
from nexa.platform.roles import Role

logger = structlog.get_logger(__name__)

CLAIM_AIRLINE = "https://nexa/airline"
CLAIM_ROLE = "https://nexa/role"
CLAIM_OPERATOR = "https://nexa/operator_urn"
ALLOWED_ALGORITHMS = ["RS256", "ES256"]
REVOKED_KEY_PREFIX = "nexa:revoked-jti:"


class InvalidToken(Exception):
    """The token cannot be accepted; ``str(error)`` says why (safe to show the caller)."""


class PrincipalRefused(InvalidToken):
    """The token is valid but its principal is not active (a deactivated operator): REST answers 403."""

    def __init__(self, operator_urn: str):
        super().__init__("The operator is deactivated.")
        self.operator_urn = operator_urn


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


def is_production() -> bool:
    return settings.NEXA_ENV == "production"


def dev_issuer_enabled() -> bool:
    """The project mints its own tokens only when no real provider is configured, and never in
    production (where settings also refuse to start without ``OIDC_ISSUER``)."""
    return not settings.OIDC_ISSUER and not is_production()


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


class JwksUnavailable(Exception):
    """No usable verification keys: the JWKS could not be fetched (or parsed) and no good keys younger
    than ``NEXA_JWKS_MAX_STALENESS_SECONDS`` are at hand."""


def _parse_jwks(document: object) -> dict[str, object]:
    """Verification keys by kid; raises ValueError for a body that is not a JWKS with a usable key."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("the JWKS body is not an object with a 'keys' list")
    keys: dict[str, object] = {}
    for entry in document["keys"]:
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig" or not isinstance(entry.get("kid"), str):
            continue
        try:
            keys[entry["kid"]] = jwt.PyJWK(entry).key
        except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError, KeyError):
            continue
    if not keys:
        raise ValueError("the JWKS holds no usable signing key")
    return keys


@dataclass(frozen=True, slots=True)
class _Snapshot:
    source: str
    keys: dict[str, object]
    fetched_at: float  # monotonic time of the last good fetch (0: never)
    attempted_at: float  # monotonic time of the last attempt, good or not


_EMPTY = _Snapshot(source="", keys={}, fetched_at=0.0, attempted_at=0.0)


class KeySet:
    """Verification keys by ``kid``: fetched from a JWKS URL and cached, or the dev key.

    Reads take no lock (the snapshot is replaced whole). A refresh is single-flight: the request that
    takes ``_fetch_lock`` fetches (HTTP outside any lock readers need); a request whose kid is known
    and whose keys are within the staleness bound uses them without waiting for a refresh another
    request is doing. Only a request that has no usable key waits for the in-flight fetch.
    """

    # An unknown kid (or a failed fetch) triggers at most one refetch per this many seconds.
    REFETCH_COOLDOWN_SECONDS = 10.0

    def __init__(self) -> None:
        self._snapshot = _EMPTY
        self._fetch_lock = threading.Lock()

    @staticmethod
    def _fetch(url: str) -> dict[str, object]:
        if not url:
            if not dev_issuer_enabled():  # production: the dev keys never verify anything
                raise ValueError("no OIDC_JWKS_URL, and the development issuer is disabled")
            return _parse_jwks(dev_jwks())
        response = httpx.get(url, timeout=5.0)
        response.raise_for_status()
        return _parse_jwks(response.json())

    def _refresh(self, source: str) -> _Snapshot:
        """Fetch now (the caller holds ``_fetch_lock``). A failure keeps the previous keys (logged)."""
        previous = self._snapshot if self._snapshot.source == source else _EMPTY
        now = time.monotonic()
        try:
            keys = self._fetch(settings.OIDC_JWKS_URL)
        except (httpx.HTTPError, ValueError) as error:  # ValueError: malformed JSON or JWKS
            age = now - previous.fetched_at if previous.fetched_at else None
            logger.warning(
                "jwks.fetch_failed",
                url=source,
                error=f"{type(error).__name__}: {error}",
                serving_last_good_keys=bool(previous.keys),
                last_good_age_seconds=round(age, 1) if age is not None else None,
            )
            snapshot = _Snapshot(source, previous.keys, previous.fetched_at, now)
        else:
            snapshot = _Snapshot(source, keys, now, now)
        self._snapshot = snapshot
        return snapshot

    def _usable(self, snapshot: _Snapshot, source: str) -> bool:
        return (
            snapshot.source == source
            and bool(snapshot.keys)
            and time.monotonic() - snapshot.fetched_at <= settings.NEXA_JWKS_MAX_STALENESS_SECONDS
        )

    def key_for(self, kid: str):
        """The key for ``kid``, or None when the keys (fresh, or good within the staleness bound) lack it.
        Raises :class:`JwksUnavailable` when there are no usable keys at all."""
        source = settings.OIDC_JWKS_URL or "dev"
        snapshot = self._snapshot
        now = time.monotonic()
        fresh = snapshot.source == source and now - snapshot.fetched_at <= settings.NEXA_JWKS_CACHE_SECONDS
        cooled = now - snapshot.attempted_at > self.REFETCH_COOLDOWN_SECONDS or snapshot.source != source
        if fresh and kid in snapshot.keys:
            return snapshot.keys[kid]
        wanted = cooled and (not fresh or kid not in snapshot.keys)
        if wanted:
            if self._usable(snapshot, source) and kid in snapshot.keys:
                # Stale but good: refresh if nobody else is, never wait for it.
                if self._fetch_lock.acquire(blocking=False):
                    try:
                        snapshot = self._refresh(source)
                    finally:
                        self._fetch_lock.release()
            else:
                with self._fetch_lock:  # waits only for an in-flight fetch
                    current = self._snapshot
                    if current is snapshot or current.source != source:
                        snapshot = self._refresh(source)
                    else:  # someone fetched while we waited
                        snapshot = current
                        if kid not in snapshot.keys and time.monotonic() - snapshot.attempted_at > (
                            self.REFETCH_COOLDOWN_SECONDS
                        ):
                            snapshot = self._refresh(source)
        if not self._usable(snapshot, source):
            if snapshot.source == source and snapshot.keys:
                logger.error(
                    "jwks.keys_too_stale",
                    url=source,
                    age_seconds=round(time.monotonic() - snapshot.fetched_at, 1),
                    max_staleness_seconds=settings.NEXA_JWKS_MAX_STALENESS_SECONDS,
                )
            raise JwksUnavailable(source)
        return snapshot.keys.get(kid)

    def forget(self) -> None:
        with self._fetch_lock:
            self._snapshot = _EMPTY


key_set = KeySet()


# --- minting (development only) --------------------------------------------------------------


def issue_token(*, airline: str, role: Role | str, operator_urn: str, ttl_seconds: int = 3600) -> str:
    if not dev_issuer_enabled():
        raise RuntimeError(
            "The development issuer is disabled (NEXA_ENV=production, or a real OIDC provider is configured)."
        )
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


def revoke_token_id(token_id: str, *, ttl_seconds: int = 86400) -> bool:
    """Refuse this ``jti`` from now on. The mark expires with the token (no unbounded growth).
    Returns False when it was already revoked."""
    return bool(get_redis().set(REVOKED_KEY_PREFIX + token_id, "1", ex=max(int(ttl_seconds), 1), nx=True))


# --- active principals -----------------------------------------------------------------------

Pair = tuple[str, str]  # (airline, operator URN): who a principal is


class PrincipalCheck(Protocol):
    """A "principal is active" check registered by an app (``AppConfig.ready``). It runs on every
    authenticated request, so it shares one Redis round trip with the revocation check:
    :meth:`queue` adds its commands to the shared pipeline (no I/O), :meth:`resolve` receives exactly
    their replies and returns the refused pairs (it may do more I/O in rare cases)."""

    def queue(self, pipe, pairs: Sequence[Pair]) -> None: ...

    def resolve(self, replies: list, pairs: Sequence[Pair]) -> set[Pair]: ...


_principal_checks: list[PrincipalCheck] = []


def principal_check_register(check: PrincipalCheck) -> PrincipalCheck:
    """Register a "principal is active" check (idempotent)."""
    if check not in _principal_checks:
        _principal_checks.append(check)
    return check


@dataclass(frozen=True, slots=True)
class Standing:
    revoked: set[str]  # token ids
    refused: set[Pair]  # principals a registered check refuses


def standing(*, token_ids: Sequence[str] = (), pairs: Sequence[Pair] = ()) -> Standing:
    """Which of these token ids are revoked and which principals are refused: ONE Redis round trip
    (a pipeline) for all of them. Raises RedisError when Redis is unreachable."""
    token_ids, pairs = list(dict.fromkeys(token_ids)), list(dict.fromkeys(pairs))
    if not token_ids and not (pairs and _principal_checks):
        return Standing(revoked=set(), refused=set())
    pipe = get_redis().pipeline(transaction=False)
    for token_id in token_ids:
        pipe.exists(REVOKED_KEY_PREFIX + token_id)
    spans = []
    if pairs:
        for check in _principal_checks:
            first = len(pipe)
            check.queue(pipe, pairs)
            spans.append((check, first, len(pipe)))
    replies = pipe.execute()
    revoked = {token_id for token_id, reply in zip(token_ids, replies, strict=False) if reply}
    refused: set[Pair] = set()
    for check, first, last in spans:
        refused |= check.resolve(replies[first:last], pairs)
    return Standing(revoked=revoked, refused=refused)


def principals_refused(pairs: Collection[Pair]) -> set[Pair]:
    """The (airline, operator URN) pairs among ``pairs`` that a registered check refuses."""
    return standing(pairs=list(pairs)).refused


def principal_refused_problem(operator_urn: str) -> Problem:
    return Problem(
        status=403,
        slug="operator-deactivated",
        title="The operator is deactivated",
        detail=f"{operator_urn} has been deactivated by an administrator.",
    )


def is_token_id_revoked(token_id: str) -> bool:
    return bool(get_redis().exists(REVOKED_KEY_PREFIX + token_id))


# --- validation ------------------------------------------------------------------------------


def authenticate_token(token: str, *, allow_revoked: bool = False) -> Principal:
    """Verify ``token`` and return its :class:`Principal`; raise :class:`InvalidToken` otherwise.
    ``allow_revoked`` only for logout (revoking an already revoked token again is a no-op)."""
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
    except JwksUnavailable:
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
    if not token_id and is_production():
        raise InvalidToken("The token lacks the 'jti' claim (required in production: it could not be revoked).")
    checked = standing(
        token_ids=[str(token_id)] if token_id and not allow_revoked else [], pairs=[(airline, operator_urn)]
    )
    if checked.revoked:
        raise InvalidToken("The token has been revoked.")
    if checked.refused:
        raise PrincipalRefused(operator_urn)
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
            # A view may accept an already revoked token (logout: a retried logout is not a 401).
            view = (getattr(request, "parser_context", None) or {}).get("view")
            allow_revoked = bool(getattr(view, "accepts_revoked_token", False))
            principal = authenticate_token(token.strip(), allow_revoked=allow_revoked)
        except PrincipalRefused as refused:
            raise principal_refused_problem(refused.operator_urn) from None
        except InvalidToken as error:
            raise AuthenticationFailed(str(error)) from None
        # Let request-scoped logs carry who is calling.
        structlog.contextvars.bind_contextvars(airline=principal.airline, operator_urn=principal.operator_urn)
        return principal, principal

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="nexa"'
