"""The "principal is active" check the platform runs on every authenticated request, SSE heartbeat and
Socket.IO ping cycle (registered with :func:`nexa.platform.auth.principal_check_register` at start-up).

The database (``Operator.active``) is the truth; Redis holds a cheap index in front of it: the set
:data:`DEACTIVATED_KEY` of ``"<airline>|<operator URN>"`` of operators that are (or recently were)
deactivated. The common case — not in the set — costs two commands (``EXISTS`` of the index's
marker and ``SMISMEMBER``) in the pipeline the platform already sends for the token's revocation:
no extra round trip, no database query. A member of the set is confirmed
in the database, so a stale member (a reactivation whose removal was lost, a rolled-back
deactivation) only costs a query, never a wrong refusal.

* Deactivating adds the member *inside* the deactivating transaction (so the index is never behind
  the database) and again after commit; reactivating removes it after commit. Every save of an
  ``Operator`` (Django admin too) goes through :func:`operator_saved`.
* The index is rebuilt from the database when its marker is missing (Redis restarted or flushed) and
  at most every :data:`REBUILD_SECONDS` (the marker expires), which drops stale members.
* Redis unreachable: the request fails as the revocation check (in the same pipeline) does; the
  long-lived channels (SSE, sockets) keep their connections until Redis is back.
"""

from collections.abc import Collection, Sequence

import structlog
from django.db import transaction
from redis.exceptions import RedisError

from nexa.platform.auth import principal_check_register
from nexa.platform.redis import get_redis
from operators.models import Operator

logger = structlog.get_logger(__name__)

DEACTIVATED_KEY = "nexa:operators:deactivated"
BUILT_KEY = "nexa:operators:deactivated:built"
REBUILD_SECONDS = 3600


def _member(airline: str, operator_urn: str) -> str:
    return f"{airline}|{operator_urn}"


def _deactivated_in_db(pairs: Collection[tuple[str, str]]) -> set[tuple[str, str]]:
    refused: set[tuple[str, str]] = set()
    by_airline: dict[str, list[str]] = {}
    for airline, urn in pairs:
        by_airline.setdefault(airline, []).append(urn)
    for airline, urns in by_airline.items():
        rows = Operator.objects.filter(airline=airline, operator_urn__in=urns, active=False)
        refused |= {(airline, urn) for urn in rows.values_list("operator_urn", flat=True)}
    return refused


def rebuild_index() -> int:
    """Replace the Redis index with the database's deactivated operators (atomically). Returns how many."""
    members = [_member(a, u) for a, u in Operator.objects.filter(active=False).values_list("airline", "operator_urn")]
    pipe = get_redis().pipeline(transaction=True)
    pipe.delete(DEACTIVATED_KEY)
    if members:
        pipe.sadd(DEACTIVATED_KEY, *members)
    pipe.set(BUILT_KEY, "1", ex=REBUILD_SECONDS)
    pipe.execute()
    return len(members)


class DeactivatedOperators:
    """The registered check (see :class:`nexa.platform.auth.PrincipalCheck`): two commands in the shared
    pipeline (``EXISTS`` marker, ``SMISMEMBER``), a database query only for members of the index."""

    def queue(self, pipe, pairs: Sequence[tuple[str, str]]) -> None:
        pipe.exists(BUILT_KEY)
        pipe.smismember(DEACTIVATED_KEY, [_member(a, u) for a, u in pairs])

    def resolve(self, replies: list, pairs: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
        built, flags = replies
        if not built:  # Redis restarted, was flushed, or the hourly rebuild is due
            rebuild_index()
            flags = get_redis().smismember(DEACTIVATED_KEY, [_member(a, u) for a, u in pairs])
        suspects = [pair for pair, flag in zip(pairs, flags, strict=True) if flag]
        return _deactivated_in_db(suspects) if suspects else set()


deactivated_operators = DeactivatedOperators()


def _index_add(airline: str, operator_urn: str) -> None:
    try:
        get_redis().sadd(DEACTIVATED_KEY, _member(airline, operator_urn))
    except RedisError:
        logger.warning("operators.active_index_write_failed", airline=airline, operator_urn=operator_urn)


def _index_remove(airline: str, operator_urn: str) -> None:
    try:
        get_redis().srem(DEACTIVATED_KEY, _member(airline, operator_urn))
    except RedisError:
        logger.warning("operators.active_index_write_failed", airline=airline, operator_urn=operator_urn)


def index_deactivated(airline: str, operator_urn: str) -> None:
    """Call inside the deactivating transaction: indexed now, and again once committed."""
    _index_add(airline, operator_urn)
    transaction.on_commit(lambda: _index_add(airline, operator_urn))


def index_reactivated(airline: str, operator_urn: str) -> None:
    """Call inside the reactivating transaction: removed from the index once committed."""
    transaction.on_commit(lambda: _index_remove(airline, operator_urn))


def operator_saved(sender, instance: Operator, **kwargs) -> None:
    """post_save of Operator (services, Django admin, seed): keep the index in step with ``active``."""
    if instance.active:
        index_reactivated(instance.airline, instance.operator_urn)
    else:
        index_deactivated(instance.airline, instance.operator_urn)


principal_check_register(deactivated_operators)
