"""Idempotency-Key handling for every POST (ARCHITECTURE §3.6). See :class:`IdempotencyMixin`.

Flow of a POST carrying a key:

1. DRF authenticates, checks permissions and throttles (the principal scopes the key).
2. The key is claimed with ``INSERT … ON CONFLICT DO NOTHING`` in its own autocommit, so a
   concurrent request with the same key sees the claim at once (409) instead of racing.
3. The handler runs in ``transaction.atomic()``; the response is recorded in that same
   transaction, so the business write and the record commit or vanish together.
4. A failure (>= 400 or an exception) rolls back and releases the claim: the client may retry.

A claim's ``created_at`` doubles as a fencing token: a claim abandoned for longer than
``NEXA_IDEMPOTENCY_IN_FLIGHT_SECONDS`` may be taken over, and the slow original then fails to
record and rolls back instead of committing its side effect a second time.
"""

import hashlib
import json
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import parse_qsl, urlencode

import structlog
from django.conf import settings
from django.db import connection, transaction
from django.db.models import BooleanField, ExpressionWrapper, Q
from django.db.models.functions import Now
from django.http import HttpResponse, HttpResponseBase, RawPostDataException

from nexa.platform.auth import Principal
from nexa.platform.models import IdempotencyRecord, TenantSettings
from nexa.platform.problems import Problem

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
TENANT_SETTINGS_CACHE_SECONDS = 30.0
# Set per request by middleware or meaningless on a replay.
_UNREPLAYED_HEADERS = frozenset({"x-correlation-id", "content-length", REPLAYED_HEADER.lower()})
_CLAIM_ATTEMPTS = 3

logger = structlog.get_logger(__name__)


# --- the key ---------------------------------------------------------------------------------


def _invalid_key(message: str) -> Problem:
    return Problem(
        status=400,
        slug="invalid-idempotency-key",
        title="Invalid Idempotency-Key",
        detail=f"{HEADER}: {message}",
        extensions={"errors": [{"field": HEADER, "message": message}]},
    )


def parse_idempotency_key(raw: str | None) -> str | None:
    """The key from the header: bare, or an RFC 8941 string (``"…"`` with ``\\"``/``\\\\``)."""
    if raw is None:
        return None
    value = raw.strip()
    if value.startswith('"'):
        chars: list[str] = []
        index = 1
        while index < len(value):
            char = value[index]
            if char == "\\":
                if index + 1 >= len(value) or value[index + 1] not in '"\\':
                    raise _invalid_key("a quoted key may only escape '\"' and '\\'.")
                chars.append(value[index + 1])
                index += 2
                continue
            if char == '"':
                break
            chars.append(char)
            index += 1
        else:
            raise _invalid_key("the quoted key has no closing quote.")
        if index != len(value) - 1:
            raise _invalid_key("unexpected characters after the quoted key.")
        key = "".join(chars)
        if any(not 0x20 <= ord(c) <= 0x7E for c in key):
            raise _invalid_key("a quoted key holds printable ASCII only.")
    else:
        key = value
        if any(not 0x21 <= ord(c) <= 0x7E for c in key):
            raise _invalid_key("a bare key holds visible ASCII only (quote it to include spaces).")
    if not key:
        raise _invalid_key("the key is empty.")
    if len(key) > MAX_KEY_LENGTH:
        raise _invalid_key(f"the key is longer than {MAX_KEY_LENGTH} characters.")
    return key


def request_fingerprint(body: bytes, query_string: str = "") -> str:
    """SHA-256 of the request: JSON canonicalised (key order, whitespace), else the raw bytes.

    The query string counts too, so ``?dryRun=true`` cannot replay a real run's response.
    """
    try:
        canonical = b"json:" + json.dumps(
            json.loads(body.decode("utf-8")), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode("utf-8")
    except (UnicodeDecodeError, ValueError, RecursionError):
        # Not JSON we could canonicalise (a body nested too deep overflows the decoder): hash the bytes;
        # the view's parser then refuses it with a 400 and the claim is released.
        canonical = b"raw:" + body
    digest = hashlib.sha256(canonical)
    if query_string:
        digest.update(b"\n?" + urlencode(sorted(parse_qsl(query_string, keep_blank_values=True))).encode())
    return digest.hexdigest()


def _fingerprint_of(request) -> str:
    try:
        body = request._request.body
    except RawPostDataException:
        # Something (a permission class) parsed the body already; hash what it parsed.
        body = json.dumps(request.data, default=str).encode()
    return request_fingerprint(body, request._request.META.get("QUERY_STRING", ""))


# --- the tenant setting ----------------------------------------------------------------------

_key_required_cache: dict[str, tuple[bool, float]] = {}


def idempotency_key_required(airline: str) -> bool:
    """``TenantSettings.idempotency_key_required``, cached in-process for a few seconds."""
    cached = _key_required_cache.get(airline)
    now = time.monotonic()
    if cached is not None and cached[1] > now:
        return cached[0]
    required = bool(
        TenantSettings.objects.filter(airline=airline).values_list("idempotency_key_required", flat=True).first()
    )
    _key_required_cache[airline] = (required, now + TENANT_SETTINGS_CACHE_SECONDS)
    return required


def clear_tenant_settings_cache() -> None:
    _key_required_cache.clear()


# --- records ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Scope:
    airline: str
    operator_urn: str
    method: str
    path: str
    key: str


@dataclass(frozen=True, slots=True)
class Claim:
    record_id: int
    created_at: datetime  # fencing token: changes when an abandoned claim is taken over


def _retention() -> timedelta:
    return timedelta(hours=settings.NEXA_IDEMPOTENCY_RETENTION_HOURS)


def _in_flight_limit() -> timedelta:
    return timedelta(seconds=settings.NEXA_IDEMPOTENCY_IN_FLIGHT_SECONDS)


def _table() -> str:
    return connection.ops.quote_name(IdempotencyRecord._meta.db_table)


def _insert_claim(scope: Scope, request_hash: str) -> Claim | None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {_table()} (airline, operator_urn, method, path, "key", request_hash, state,
                                    response_headers, created_at)
            VALUES (%s, %s, %s, %s, %s, %s, %s, '{{}}'::jsonb, now())
            ON CONFLICT (airline, operator_urn, method, path, "key") DO NOTHING
            RETURNING id, created_at
            """,  # noqa: S608 (table name from the model)
            [scope.airline, scope.operator_urn, scope.method, scope.path, scope.key, request_hash,
             IdempotencyRecord.State.IN_FLIGHT],
        )  # fmt: skip
        row = cursor.fetchone()
    return Claim(*row) if row else None


def _take_over(record_id: int, request_hash: str) -> Claim | None:
    """Re-claim an expired record or an abandoned claim; the WHERE makes concurrent takeovers exclusive."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {_table()}
               SET request_hash = %s, state = %s, status_code = NULL, response_headers = '{{}}'::jsonb,
                   response_body = NULL, completed_at = NULL, created_at = now()
             WHERE id = %s
               AND (created_at < now() - %s OR (state = %s AND created_at < now() - %s))
            RETURNING id, created_at
            """,  # noqa: S608 (table name from the model)
            [request_hash, IdempotencyRecord.State.IN_FLIGHT, record_id, _retention(),
             IdempotencyRecord.State.IN_FLIGHT, _in_flight_limit()],
        )  # fmt: skip
        row = cursor.fetchone()
    return Claim(*row) if row else None


def _existing(scope: Scope) -> IdempotencyRecord | None:
    stale = Q(created_at__lt=Now() - _retention()) | Q(
        state=IdempotencyRecord.State.IN_FLIGHT, created_at__lt=Now() - _in_flight_limit()
    )
    return (
        IdempotencyRecord.objects.filter(
            airline=scope.airline, operator_urn=scope.operator_urn, method=scope.method, path=scope.path, key=scope.key
        )
        .annotate(stale=ExpressionWrapper(stale, output_field=BooleanField()))
        .first()
    )


def _in_flight_problem() -> Problem:
    return Problem(
        status=409,
        slug="idempotency-key-in-flight",
        title="A request with this Idempotency-Key is still in progress",
        detail="Another request with the same Idempotency-Key has not finished yet; retry shortly.",
    )


def claim_key(scope: Scope, request_hash: str) -> Claim | IdempotencyRecord:
    """Claim the key, or return the completed record to replay; raise 409/422 problems otherwise."""
    for _ in range(_CLAIM_ATTEMPTS):
        claim = _insert_claim(scope, request_hash)
        if claim is not None:
            return claim
        record = _existing(scope)
        if record is None:
            continue  # released or purged between our insert and read
        if record.stale:
            claim = _take_over(record.pk, request_hash)
            if claim is not None:
                logger.info("idempotency_claim_taken_over", key=scope.key, previous_state=record.state)
                return claim
            continue
        if record.state == IdempotencyRecord.State.IN_FLIGHT:
            raise _in_flight_problem()
        if record.request_hash != request_hash:
            raise Problem(
                status=422,
                slug="idempotency-key-reused",
                title="Idempotency-Key reused with a different request",
                detail="This Idempotency-Key was already used with a different request body; use a new key.",
            )
        return record
    raise _in_flight_problem()  # the key kept changing hands: someone else is using it right now


def _claimed(claim: Claim):
    return IdempotencyRecord.objects.filter(
        pk=claim.record_id, created_at=claim.created_at, state=IdempotencyRecord.State.IN_FLIGHT
    )


def record_response(claim: Claim, response: HttpResponseBase) -> None:
    """Store the rendered response; call inside the handler's transaction."""
    if response.streaming:
        raise TypeError("A POST handler must not stream its response: it could not be replayed.")
    if hasattr(response, "render"):
        response.render()
    headers = {name: value for name, value in response.items() if name.lower() not in _UNREPLAYED_HEADERS}
    stored = _claimed(claim).update(
        state=IdempotencyRecord.State.COMPLETED,
        status_code=response.status_code,
        response_headers=headers,
        response_body=response.content,
        completed_at=Now(),
    )
    if not stored:
        # Taken over as abandoned while we ran: committing would run the side effect twice.
        raise Problem(
            status=409,
            slug="idempotency-claim-expired",
            title="The Idempotency-Key claim expired",
            detail="The request took too long and its Idempotency-Key was claimed again; nothing was changed.",
        )


def release_claim(claim: Claim) -> None:
    try:
        _claimed(claim).delete()
    except Exception:
        # Never mask the handler's own error; the claim is taken over once it counts as abandoned.
        logger.exception("idempotency_release_failed", record_id=claim.record_id)


def replay_response(record: IdempotencyRecord) -> HttpResponse:
    response = HttpResponse(bytes(record.response_body or b""), status=record.status_code)
    if not any(name.lower() == "content-type" for name in record.response_headers):
        del response["Content-Type"]
    for name, value in record.response_headers.items():
        response[name] = value
    response[REPLAYED_HEADER] = "true"
    return response


def purge_expired_records() -> int:
    """Delete records past ``NEXA_IDEMPOTENCY_RETENTION_HOURS``; returns how many went."""
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=Now() - _retention()).delete()
    return deleted


# --- the view mixin --------------------------------------------------------------------------


class IdempotencyMixin:
    """Makes every POST of a DRF view idempotent under ``Idempotency-Key`` (put it before APIView).

    Other methods, views without ``post`` and unauthenticated requests pass straight through.
    """

    def dispatch(self, request, *args, **kwargs):
        if request.method != "POST" or not hasattr(self, "post"):
            return super().dispatch(request, *args, **kwargs)
        # Mirrors APIView.dispatch (authentication, permissions, throttles first); only the
        # handler call differs, because it must run between the claim and the record.
        self.args = args
        self.kwargs = kwargs
        request = self.initialize_request(request, *args, **kwargs)
        self.request = request
        self.headers = self.default_response_headers
        try:
            self.initial(request, *args, **kwargs)
            response = self._post_idempotently(request, *args, **kwargs)
        except Exception as exc:  # noqa: BLE001 (DRF's handle_exception decides, as in APIView.dispatch)
            response = self.finalize_response(request, self.handle_exception(exc), *args, **kwargs)
        self.response = response
        return response

    def _post_idempotently(self, request, *args, **kwargs) -> HttpResponseBase:
        principal = request.auth
        key = parse_idempotency_key(request.headers.get(HEADER))
        if not isinstance(principal, Principal):
            return self.finalize_response(request, self.post(request, *args, **kwargs), *args, **kwargs)
        if key is None:
            if idempotency_key_required(principal.airline):
                raise Problem(
                    status=400,
                    slug="idempotency-key-required",
                    title="Idempotency-Key required",
                    detail=f"This airline requires an {HEADER} header on every POST.",
                    extensions={"errors": [{"field": HEADER, "message": "This header is required."}]},
                )
            return self.finalize_response(request, self.post(request, *args, **kwargs), *args, **kwargs)

        scope = Scope(principal.airline, principal.operator_urn, request.method, request.path, key)
        outcome = claim_key(scope, _fingerprint_of(request))
        if isinstance(outcome, IdempotencyRecord):
            logger.info("idempotent_replay", key=key, status=outcome.status_code)
            return replay_response(outcome)

        claim = outcome
        try:
            with transaction.atomic():
                response = self.finalize_response(request, self.post(request, *args, **kwargs), *args, **kwargs)
                if response.status_code >= 400:
                    transaction.set_rollback(True)
                else:
                    record_response(claim, response)
        except Exception:
            release_claim(claim)
            raise
        if response.status_code >= 400:
            release_claim(claim)
        return response
