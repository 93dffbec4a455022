"""Operator sessions: one per live Socket.IO connection.

One :class:`~operators.models.OperatorSession` per live Socket.IO connection. The Socket.IO consumer
calls :func:`operator_session_open` on CONNECT, :func:`operator_sessions_touch` on its heartbeat (which
also renews the leases of those operators) and :func:`operator_session_close` on disconnect; when that
was the operator's last session, all their locks are released at once. Sessions of a process that died
are closed by :func:`operator_sessions_stale_sweep`; its leases also end by themselves
(:func:`lock_leases_expire_sweep`).
"""

from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models.expressions import CombinedExpression
from django.db.models.functions import Now

from nexa.platform.auth import Principal
from nexa.platform.problems import validation_problem
from operators import selectors
from operators.models import Operator, OperatorSession
from operators.services import _common
from operators.services._common import (
    LOCKS,
    OPERATORS,
    SESSIONS,
    SYSTEM_SESSION_SWEEP,
    lease_seconds,
    logger,
    operator_deactivated_problem,
)
from operators.services.locks import _release_all, operator_locks_renew

# --- sessions ---------------------------------------------------------------------------------------

_PROFILE_SQL = f"""
INSERT INTO {OPERATORS} AS o (operator_urn, airline, role, display_name, active, created_at)
VALUES (%s, %s, %s, %s, true, statement_timestamp())
    ON CONFLICT (airline, operator_urn) DO UPDATE SET role = EXCLUDED.role
 WHERE o.airline = EXCLUDED.airline AND o.role <> EXCLUDED.role
"""  # noqa: S608

_SESSION_OPEN_SQL = f"""
INSERT INTO {SESSIONS} (session_id, operator_urn, airline, role, server_instance, connected_at, last_seen_at)
VALUES (%s, %s, %s, %s, %s, statement_timestamp(), statement_timestamp())
    ON CONFLICT (session_id) DO UPDATE SET last_seen_at = statement_timestamp()
"""  # noqa: S608


def _default_display_name(operator_urn: str) -> str:
    """The URN's last segment, cut to the column (a URN may be longer than a display name)."""
    max_length = Operator._meta.get_field("display_name").max_length
    return (operator_urn.rsplit(":", 1)[-1] or operator_urn)[:max_length]


def operator_session_open(*, principal: Principal, session_id: str, server_instance: str) -> None:
    """Record a live socket (the consumer calls this on CONNECT, after validating the token).

    Refuses a deactivated operator with a 403 ``operator-deactivated`` problem (the consumer answers
    CONNECT_ERROR and closes with 4401). An operator known only from tokens gets an Operator profile
    (role from the token, so ``GET /v1/operators`` lists them); a known one's role follows the token.
    The operator's live leases are renewed. Re-opening the same ``session_id`` is harmless.
    """
    if not session_id or len(session_id) > OperatorSession._meta.get_field("session_id").max_length:
        raise validation_problem([{"field": "session_id", "message": "must be 1 to 64 characters"}])
    me = principal.operator_urn
    with transaction.atomic():
        if not selectors.operator_is_active(airline=principal.airline, operator_urn=me):
            raise operator_deactivated_problem(me)
        with connection.cursor() as cursor:
            cursor.execute(_PROFILE_SQL, [me, principal.airline, str(principal.role), _default_display_name(me)])
            cursor.execute(
                _SESSION_OPEN_SQL,
                [session_id, me, principal.airline, str(principal.role), server_instance[:255]],
            )
        operator_locks_renew(operator_urns=[me])


_TOUCH_SQL = f"""
WITH touched AS (
    UPDATE {SESSIONS} SET last_seen_at = statement_timestamp() WHERE session_id = ANY(%s)
    RETURNING airline, operator_urn
),
due AS (
    SELECT l.id
      FROM {LOCKS} AS l
      JOIN (SELECT DISTINCT airline, operator_urn FROM touched) AS t
        ON l.airline = t.airline AND l.holder = t.operator_urn
     WHERE l.expires_at > statement_timestamp()
     ORDER BY l.id
       FOR UPDATE OF l
)
UPDATE {LOCKS} AS l
   SET expires_at = statement_timestamp() + make_interval(secs => %s)
  FROM due
 WHERE l.id = due.id
"""  # noqa: S608


def operator_sessions_touch(*, session_ids: list[str]) -> None:
    """Heartbeat: mark these sockets as alive and renew their operators' live leases (one statement)."""
    if not session_ids:
        return
    with connection.cursor() as cursor:
        cursor.execute(_TOUCH_SQL, [list(session_ids), lease_seconds()])


_SESSION_DELETE_SQL = f"""
DELETE FROM {SESSIONS} WHERE session_id = %s RETURNING airline, operator_urn, last_seen_at
"""  # noqa: S608

# Serialises the closes of one operator's sessions, so that when two of their sockets drop at once the
# second sees the first's delete and exactly one of them releases the locks.
_OPERATOR_ADVISORY_LOCK_SQL = "SELECT pg_advisory_xact_lock(hashtextextended(%s, 7))"

_OTHER_SESSIONS_SQL = f"""
SELECT EXISTS (SELECT 1 FROM {SESSIONS} WHERE airline = %s AND operator_urn = %s)
"""  # noqa: S608

_LAST_SEEN_SQL = f"""
UPDATE {OPERATORS} SET last_seen_at = GREATEST(COALESCE(last_seen_at, %s), %s)
 WHERE operator_urn = %s AND airline = %s
"""  # noqa: S608


def operator_session_close(*, session_id: str, reason: str = "disconnected", actor: str | None = None) -> list[str]:
    """The socket is gone: forget the session. When it was the operator's last one, release every lock
    they hold (audited, ``lockedBy: null`` published) and return those sub-case URNs; else ``[]``.
    Unknown (already closed) sessions return ``[]``. A handful of statements, one transaction: watchers
    see the release as soon as it commits and the outbox relays it."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_SESSION_DELETE_SQL, [session_id])
        row = cursor.fetchone()
        if row is None:
            return []
        airline, operator_urn, last_seen_at = row
        cursor.execute(_OPERATOR_ADVISORY_LOCK_SQL, [f"{airline}|{operator_urn}"])
        cursor.execute(_LAST_SEEN_SQL, [last_seen_at, last_seen_at, operator_urn, airline])
        cursor.execute(_OTHER_SESSIONS_SQL, [airline, operator_urn])
        if cursor.fetchone()[0]:
            return []
        return _release_all(airline=airline, operator_urn=operator_urn, reason=reason, actor=actor or operator_urn)


_STALE_SQL = f"""
SELECT session_id FROM {SESSIONS}
 WHERE last_seen_at < statement_timestamp() - make_interval(secs => %s)
 ORDER BY last_seen_at
 LIMIT %s
"""  # noqa: S608


def operator_sessions_stale_sweep() -> int:
    """Close sessions not heard from for ``NEXA_SESSION_STALE_SECONDS`` (their ASGI process died or
    hung), exactly like a disconnect: an operator left without sessions loses their locks (audited by
    the system). Returns how many sessions were closed."""
    with connection.cursor() as cursor:
        cursor.execute(_STALE_SQL, [int(settings.NEXA_SESSION_STALE_SECONDS), _common.SWEEP_BATCH])
        stale = [session_id for (session_id,) in cursor.fetchall()]
    closed = 0
    for session_id in stale:
        with transaction.atomic():
            # Still stale and not taken by a concurrent sweep? (The close itself deletes by id.)
            still_stale = OperatorSession.objects.filter(
                session_id=session_id,
                last_seen_at__lt=_stale_threshold(),
            ).select_for_update(skip_locked=True)
            if not still_stale.exists():
                continue
            operator_session_close(session_id=session_id, reason="session went stale", actor=SYSTEM_SESSION_SWEEP)
            closed += 1
    if closed:
        logger.info("operator_sessions.stale_closed", closed=closed)
    return closed


def _stale_threshold() -> CombinedExpression:
    return Now() - timedelta(seconds=int(settings.NEXA_SESSION_STALE_SECONDS))
