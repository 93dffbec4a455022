"""Commands of the operators domain: entity locks (leases with fencing tokens) and operator sessions.

Locks (ARCHITECTURE §4, docs/locks.md)
--------------------------------------
One :class:`~operators.models.EntityLock` row per sub-case. Acquiring is ONE statement,
``INSERT … ON CONFLICT (entity_urn) DO UPDATE … WHERE <free, expired or mine> RETURNING …``: the
database decides who wins, so of 50 operators racing for a sub-case exactly one gets a row back.
The fencing token grows on every grant and stays when the lease is released, so it never repeats;
the holder renewing its own live lease keeps its token. Every lease time is computed in SQL from
``statement_timestamp()`` (the database clock at the start of the statement — not ``now()``, which is
the start of a possibly older transaction): only the database clock counts.

Every grant, holder change, release, forced release and expiry writes one audit row and publishes
``subcase:state-changed`` with the new ``lockedBy`` (null when freed). Renewals by the holder change
nothing but the lease end and are neither audited nor published.

Sessions
--------
One :class:`~operators.models.OperatorSession` per live Socket.IO connection. The Socket.IO consumer
calls :func:`operator_session_open` on CONNECT, :func:`operator_sessions_touch` on its heartbeat (which
also renews the leases of those operators) and :func:`operator_session_close` on disconnect; when that
was the operator's last session, all their locks are released at once. Sessions of a process that died
are closed by :func:`operator_sessions_stale_sweep`; its leases also end by themselves
(:func:`lock_leases_expire_sweep`).
"""

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta

import structlog
from django.conf import settings
from django.db import connection, transaction
from django.db.models.expressions import CombinedExpression
from django.db.models.functions import Now
from django.utils import timezone

from audit import services as audit
from cases import selectors as case_selectors
from cases.models import SubCase
from nexa.platform.auth import Principal, revoke_token_id
from nexa.platform.problems import Problem, conflict_problem, not_found_problem, validation_problem
from nexa.platform.roles import Role, role_satisfies
from nexa.platform.urns import InvalidUrn, is_opaque_urn, parse_urn
from operators import events, principal_check, selectors
from operators.models import EntityLock, Operator, OperatorSession
from operators.permissions import user_role_groups_sync

logger = structlog.get_logger(__name__)

LOCKS = EntityLock._meta.db_table
SESSIONS = OperatorSession._meta.db_table
OPERATORS = Operator._meta.db_table

# Actor of automation in the audit log.
SYSTEM_LOCK_SWEEP = "urn:nexa:system:lock-sweep"
SYSTEM_SESSION_SWEEP = "urn:nexa:system:session-sweep"

REASON_MAX_LENGTH = 1000
SWEEP_BATCH = 500
_ACQUIRE_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class LockGrant:
    """What the holder needs: send ``fencing_token`` as ``X-Fencing-Token`` with every write."""

    sub_case_urn: str
    locked_by: str
    fencing_token: int
    expires_in_seconds: int


@dataclass(frozen=True, slots=True)
class _Released:
    entity_urn: str
    case_urn: str
    airline: str
    holder: str
    fencing_token: int


def lease_seconds() -> int:
    return int(settings.NEXA_LOCK_LEASE_SECONDS)


def remaining_seconds(value: float | None) -> int:
    """Remaining lease as whole seconds, rounded up (0.2 s left is still "1 s")."""
    return max(0, math.ceil(value or 0))


# --- problems ---------------------------------------------------------------------------------------


def subcase_locked_problem(*, sub_case_urn: str, locked_by: str, expires_in_seconds: int) -> Problem:
    return conflict_problem(
        slug="subcase-locked",
        title="The sub-case is locked by another operator",
        detail=f"{sub_case_urn} is locked by {locked_by} for another {expires_in_seconds} s.",
        lockedBy=locked_by,
        expiresInSeconds=expires_in_seconds,
    )


def _not_locked_problem(sub_case_urn: str) -> Problem:
    return conflict_problem(
        slug="subcase-not-locked",
        title="The sub-case is not locked",
        detail=f"{sub_case_urn} has no live lock to release.",
    )


def _locked_by_another_problem(*, sub_case_urn: str, locked_by: str, expires_in_seconds: int) -> Problem:
    return conflict_problem(
        slug="subcase-locked-by-another",
        title="Only the holder can release this lock",
        detail=f"{sub_case_urn} is locked by {locked_by}; only the holder can release it (or force-unlock it).",
        lockedBy=locked_by,
        expiresInSeconds=expires_in_seconds,
    )


def stale_fencing_token_problem(*, sub_case_urn: str, fencing_token: int) -> Problem:
    return conflict_problem(
        slug="stale-fencing-token",
        title="The fencing token is not current",
        detail=(
            f"Fencing token {fencing_token} is not the token of a live lock you hold on {sub_case_urn}; "
            "your lease ended or was taken over. Lock the sub-case again and re-read it."
        ),
    )


def operator_deactivated_problem(operator_urn: str) -> Problem:
    return Problem(
        status=403,
        slug="operator-deactivated",
        title="The operator is deactivated",
        detail=f"{operator_urn} has been deactivated by an administrator.",
    )


def _require_reason(reason: object) -> str:
    if not isinstance(reason, str) or not reason.strip():
        raise validation_problem([{"field": "reason", "message": "is required"}])
    reason = reason.strip()
    if len(reason) > REASON_MAX_LENGTH:
        raise validation_problem([{"field": "reason", "message": f"at most {REASON_MAX_LENGTH} characters"}])
    return reason


# --- shared steps -----------------------------------------------------------------------------------


def _announce(*, released: Sequence[_Released], actor: str, action: str, reason: str) -> None:
    """One audit row and one ``subcase:state-changed`` (lockedBy null) per freed lease, inside the
    caller's transaction."""
    if not released:
        return
    states = _subcase_states([lock.entity_urn for lock in released])
    for lock in released:
        audit.record(
            airline=lock.airline,
            actor=actor,
            action=action,
            entity_urn=lock.entity_urn,
            case_urn=lock.case_urn,
            reason=reason,
            before={"lockedBy": lock.holder, "fencingToken": lock.fencing_token},
            after={"lockedBy": None},
        )
        state = states.get(lock.entity_urn)
        if state is None:  # the sub-case row is gone: nothing to show a watcher
            continue
        events.publish_lock_changed(
            sub_case_urn=lock.entity_urn,
            case_urn=lock.case_urn,
            airline=lock.airline,
            status=state.status,
            version=state.version,
            locked_by=None,
        )


@dataclass(frozen=True, slots=True)
class _SubCaseState:
    status: str
    version: int


def _subcase_states(entity_urns: Sequence[str]) -> dict[str, _SubCaseState]:
    """Current status and version of these sub-cases, for the event payload (one query). Read from the
    cases model directly because the callers (sweeps, disconnects) act for several airlines at once and
    have no principal; every URN comes from a lock row that was created tenant-checked."""
    ids = {}
    for urn in entity_urns:
        try:
            ids[parse_urn(urn, "subcase").id] = urn
        except InvalidUrn:
            continue
    rows = SubCase.objects.filter(pk__in=list(ids)).values_list("id", "status", "version")
    return {ids[pk]: _SubCaseState(status=status, version=version) for pk, status, version in rows}


def _released_rows(rows: Iterable[tuple]) -> list[_Released]:
    return [
        _Released(entity_urn=urn, case_urn=case_urn, airline=airline, holder=holder, fencing_token=token)
        for urn, case_urn, airline, holder, token in rows
    ]


# Statements that change several leases lock their rows in id order (``ORDER BY id FOR UPDATE``), so two
# of them touching the same operator's leases (two processes' heartbeats, a heartbeat and a disconnect)
# queue instead of deadlocking.

# --- locks ------------------------------------------------------------------------------------------

# The acquire statement. Parameters: entity, airline, case, holder, lease seconds, holder (deactivation
# check), airline (deactivation check). A holder renewing its live lease keeps its token and grant time;
# any other grant increments the token. A grant stamps ``granted_at`` with ``statement_timestamp()``, so
# ``granted_at = statement_timestamp()`` in RETURNING is true exactly for a new grant (a renewal keeps the
# time of an earlier statement).
_ACQUIRE_SQL = f"""
INSERT INTO {LOCKS} AS l
       (entity_urn, airline, case_urn, holder, previous_holder, fencing_token, expires_at, granted_at)
SELECT %s, %s, %s, %s, NULL, 1, statement_timestamp() + make_interval(secs => %s), statement_timestamp()
 WHERE NOT EXISTS (SELECT 1 FROM {OPERATORS} o WHERE o.operator_urn = %s AND o.airline = %s AND NOT o.active)
    ON CONFLICT (entity_urn) DO UPDATE
   SET holder = EXCLUDED.holder,
       previous_holder = CASE WHEN l.holder = EXCLUDED.holder AND l.expires_at > statement_timestamp()
                              THEN l.previous_holder ELSE l.holder END,
       fencing_token = CASE WHEN l.holder = EXCLUDED.holder AND l.expires_at > statement_timestamp()
                            THEN l.fencing_token ELSE l.fencing_token + 1 END,
       granted_at = CASE WHEN l.holder = EXCLUDED.holder AND l.expires_at > statement_timestamp()
                         THEN l.granted_at ELSE statement_timestamp() END,
       expires_at = EXCLUDED.expires_at
 WHERE l.airline = EXCLUDED.airline
   AND (l.holder IS NULL OR l.expires_at <= statement_timestamp() OR l.holder = EXCLUDED.holder)
RETURNING l.fencing_token, l.granted_at = statement_timestamp(), l.previous_holder,
          extract(epoch FROM l.expires_at - statement_timestamp())::float8
"""  # noqa: S608 (table names from the models)

# Why an acquire got no row: the lease as it is now (a new statement sees the winner's commit), and
# whether the caller is deactivated.
_REFUSAL_SQL = f"""
SELECT l.holder, l.expires_at > statement_timestamp(), extract(epoch FROM l.expires_at - statement_timestamp())::float8,
       EXISTS (SELECT 1 FROM {OPERATORS} o WHERE o.operator_urn = %s AND o.airline = %s AND NOT o.active)
  FROM (SELECT 1) AS one
  LEFT JOIN {LOCKS} l ON l.entity_urn = %s AND l.airline = %s
"""  # noqa: S608


def subcase_lock(*, principal: Principal, sub_case_urn: str) -> LockGrant:
    """Lock the sub-case for the caller, or renew the caller's live lease (same fencing token).

    400 for a malformed URN, 404 for another airline's or an unknown sub-case, 409 ``subcase-locked``
    (``lockedBy``, ``expiresInSeconds``) when another operator holds a live lease, 403
    ``operator-deactivated`` for a deactivated operator.
    """
    sub_case = case_selectors.subcase_get(principal=principal, sub_case_urn=sub_case_urn)
    urn, case_urn, me = sub_case.urn, sub_case.case.urn, principal.operator_urn
    with transaction.atomic():
        with connection.cursor() as cursor:
            for _ in range(_ACQUIRE_ATTEMPTS):
                cursor.execute(
                    _ACQUIRE_SQL,
                    [urn, principal.airline, case_urn, me, lease_seconds(), me, principal.airline],
                )
                row = cursor.fetchone()
                if row is not None:
                    break
                cursor.execute(_REFUSAL_SQL, [me, principal.airline, urn, principal.airline])
                holder, live, remaining, deactivated = cursor.fetchone()
                if deactivated:
                    raise operator_deactivated_problem(me)
                if holder is not None and live and holder != me:
                    raise subcase_locked_problem(
                        sub_case_urn=urn, locked_by=holder, expires_in_seconds=remaining_seconds(remaining)
                    )
                # Freed (or expired) between the two statements: try again.
            else:  # the lease changed hands between every attempt and its re-read: let the client retry
                raise conflict_problem(
                    slug="lock-contended",
                    title="The lock is changing hands",
                    detail=f"The lock of {urn} changed between every attempt; try again.",
                )
        token, granted, previous_holder, remaining = row
        if granted:
            audit.record(
                principal=principal,
                action="subcase.lock_granted",
                entity_urn=urn,
                case_urn=case_urn,
                before={"lockedBy": previous_holder},
                after={"lockedBy": me, "fencingToken": token},
            )
            events.publish_lock_changed(
                sub_case_urn=urn,
                case_urn=case_urn,
                airline=principal.airline,
                status=sub_case.status,
                version=sub_case.version,
                locked_by=me,
            )
    return LockGrant(
        sub_case_urn=urn, locked_by=me, fencing_token=token, expires_in_seconds=remaining_seconds(remaining)
    )


_RELEASE_SQL = f"""
UPDATE {LOCKS}
   SET previous_holder = holder, holder = NULL, expires_at = statement_timestamp()
 WHERE entity_urn = %s AND airline = %s AND holder IS NOT NULL AND expires_at > statement_timestamp() {{holder_clause}}
RETURNING entity_urn, case_urn, airline, previous_holder, fencing_token
"""  # noqa: S608

_CURRENT_SQL = f"""
SELECT holder, extract(epoch FROM expires_at - statement_timestamp())::float8
  FROM {LOCKS}
 WHERE entity_urn = %s AND airline = %s AND holder IS NOT NULL AND expires_at > statement_timestamp()
"""  # noqa: S608


def subcase_unlock(*, principal: Principal, sub_case_urn: str) -> None:
    """Release the caller's live lock. 409 ``subcase-not-locked`` when there is none (never locked,
    released, or expired), 409 ``subcase-locked-by-another`` (``lockedBy``) when someone else holds it."""
    sub_case = case_selectors.subcase_get(principal=principal, sub_case_urn=sub_case_urn)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            _RELEASE_SQL.format(holder_clause="AND holder = %s"),
            [sub_case.urn, principal.airline, principal.operator_urn],
        )
        released = _released_rows(cursor.fetchall())
        if not released:
            cursor.execute(_CURRENT_SQL, [sub_case.urn, principal.airline])
            current = cursor.fetchone()
            if current is None:
                raise _not_locked_problem(sub_case.urn)
            raise _locked_by_another_problem(
                sub_case_urn=sub_case.urn, locked_by=current[0], expires_in_seconds=remaining_seconds(current[1])
            )
        _announce(released=released, actor=principal.operator_urn, action="subcase.lock_released", reason="")


def subcase_force_unlock(*, principal: Principal, sub_case_urn: str, reason: str) -> str:
    """Release anyone's live lock (OPS_SUPERVISOR+; ``reason`` required). Returns the former holder.
    409 ``subcase-not-locked`` when there is no live lock. The former holder's next write with its
    fencing token is refused (409 ``stale-fencing-token``)."""
    if not role_satisfies(principal.role, Role.OPS_SUPERVISOR):
        raise Problem(status=403, slug="forbidden", title="Forbidden", detail="Force-unlock needs OPS_SUPERVISOR+.")
    reason = _require_reason(reason)
    sub_case = case_selectors.subcase_get(principal=principal, sub_case_urn=sub_case_urn)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_RELEASE_SQL.format(holder_clause=""), [sub_case.urn, principal.airline])
        released = _released_rows(cursor.fetchall())
        if not released:
            raise _not_locked_problem(sub_case.urn)
        _announce(released=released, actor=principal.operator_urn, action="subcase.lock_force_released", reason=reason)
    return released[0].holder


def operator_locks_release_all(*, airline: str, operator_urn: str, reason: str, actor: str | None = None) -> list[str]:
    """Release every lock ``operator_urn`` holds in ``airline`` (their last socket dropped, they were
    deactivated, their session went stale). One audit row (``actor``, default the operator) and one
    ``subcase:state-changed`` with ``lockedBy: null`` per lock. Returns the released sub-case URNs."""
    with transaction.atomic():
        return _release_all(airline=airline, operator_urn=operator_urn, reason=reason, actor=actor or operator_urn)


_RELEASE_ALL_SQL = f"""
WITH due AS (
    SELECT id FROM {LOCKS} WHERE airline = %s AND holder = %s ORDER BY id FOR UPDATE
)
UPDATE {LOCKS} AS l
   SET previous_holder = l.holder, holder = NULL, expires_at = statement_timestamp()
  FROM due
 WHERE l.id = due.id
RETURNING l.entity_urn, l.case_urn, l.airline, l.previous_holder, l.fencing_token
"""  # noqa: S608


def _release_all(*, airline: str, operator_urn: str, reason: str, actor: str) -> list[str]:
    """Inside the caller's transaction. Leases that already expired but were not swept yet are released
    (and announced) here too: the operator still appears as their holder."""
    with connection.cursor() as cursor:
        cursor.execute(_RELEASE_ALL_SQL, [airline, operator_urn])
        released = sorted(_released_rows(cursor.fetchall()), key=lambda lock: lock.entity_urn)
    _announce(released=released, actor=actor, action="subcase.lock_released", reason=reason)
    return [lock.entity_urn for lock in released]


_RENEW_SQL = f"""
WITH due AS (
    SELECT id FROM {LOCKS} WHERE holder = ANY(%s) AND expires_at > statement_timestamp() ORDER BY id FOR UPDATE
)
UPDATE {LOCKS} AS l SET expires_at = statement_timestamp() + make_interval(secs => %s)
  FROM due
 WHERE l.id = due.id
"""  # noqa: S608


def operator_locks_renew(*, operator_urns: list[str]) -> int:
    """Extend the live leases of these operators (they have a live socket) to ``statement_timestamp() + lease``.
    Leases that already expired are not revived. Returns how many leases were extended."""
    if not operator_urns:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(_RENEW_SQL, [list(operator_urns), lease_seconds()])
        return cursor.rowcount


_EXPIRE_SQL = f"""
WITH due AS (
    SELECT id FROM {LOCKS}
     WHERE holder IS NOT NULL AND expires_at <= statement_timestamp()
     ORDER BY expires_at
     LIMIT %s
       FOR UPDATE SKIP LOCKED
)
UPDATE {LOCKS} AS l
   SET previous_holder = l.holder, holder = NULL
  FROM due
 WHERE l.id = due.id
RETURNING l.entity_urn, l.case_urn, l.airline, l.previous_holder, l.fencing_token
"""  # noqa: S608


def lock_leases_expire_sweep() -> int:
    """Free every held lease past its end (the holder's process died or stopped renewing): audited as
    ``subcase.lock_expired`` by the system, published with ``lockedBy: null``. Rows another transaction
    is changing are skipped (``SKIP LOCKED``) and picked up by the next sweep. Returns how many."""
    total = 0
    while True:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(_EXPIRE_SQL, [SWEEP_BATCH])
                released = _released_rows(cursor.fetchall())
            _announce(released=released, actor=SYSTEM_LOCK_SWEEP, action="subcase.lock_expired", reason="lease expired")
        total += len(released)
        if len(released) < SWEEP_BATCH:
            break
    if total:
        logger.info("locks.expired", released=total)
    return total


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
        cursor.execute(_STALE_SQL, [int(settings.NEXA_SESSION_STALE_SECONDS), SWEEP_BATCH])
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


# --- operators --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OperatorDeactivation:
    operator_urn: str
    active: bool
    released_locks: list[str]


# Serialises deactivations and reactivations within one airline, so "is there another active ADMIN?"
# is answered against the other's committed result: two admins deactivating each other at once cannot
# both succeed.
_AIRLINE_OPERATORS_LOCK_SQL = "SELECT pg_advisory_xact_lock(hashtextextended(%s, 9))"


def _require_admin(principal: Principal, what: str) -> None:
    if not role_satisfies(principal.role, Role.ADMIN):
        raise Problem(status=403, slug="forbidden", title="Forbidden", detail=f"{what} needs ADMIN.")


def _require_operator_urn(operator_urn: object) -> str:
    if not is_opaque_urn(operator_urn):
        raise validation_problem([{"field": "operator_urn", "message": "must be an operator URN (urn:…)"}])
    return operator_urn


def _operator_for_update(principal: Principal, operator_urn: str) -> Operator:
    """The caller's airline's profile of ``operator_urn``, row-locked; 404 when the airline has none —
    the same problem whether another airline has that URN or nobody does (nothing is revealed, nothing
    created)."""
    operator = Operator.objects.select_for_update().filter(airline=principal.airline, operator_urn=operator_urn).first()
    if operator is None:
        raise not_found_problem()
    return operator


def _lockout_problem(slug: str, title: str, detail: str) -> Problem:
    return conflict_problem(slug=slug, title=title, detail=detail)


def operator_deactivate(*, principal: Principal, operator_urn: str, reason: str) -> OperatorDeactivation:
    """Deactivate an operator of the caller's airline (ADMIN; ``reason`` required): ``active`` becomes
    false, their sessions are forgotten, every lock they hold is released (audited, published), and
    ``operator:deactivated`` goes to the airline room so the socket consumer closes their sockets with
    4401. From the next request on, their tokens are refused (403 ``operator-deactivated``; the SSE
    stream and socket heartbeat re-check it; operators/principal_check.py); tokens are not revoked.

    Identity is (airline, operator URN): a URN without a profile in the caller's airline — another
    airline's, or nobody's — is a 404 that creates nothing. No lock-out: deactivating yourself is a 409
    ``cannot-deactivate-self``, deactivating the airline's last active ADMIN a 409 ``last-active-admin``
    (serialised per airline, so two admins deactivating each other at once cannot both succeed).
    Deactivating twice is harmless (locks and sockets are released again; one audit row).
    """
    _require_admin(principal, "Deactivating operators")
    reason = _require_reason(reason)
    operator_urn = _require_operator_urn(operator_urn)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(_AIRLINE_OPERATORS_LOCK_SQL, [f"operators|{principal.airline}"])
        operator = _operator_for_update(principal, operator_urn)
        if operator_urn == principal.operator_urn:
            raise _lockout_problem(
                "cannot-deactivate-self",
                "You cannot deactivate yourself",
                "Ask another ADMIN of your airline to deactivate your profile.",
            )
        was_active = operator.active
        if was_active and operator.role == Role.ADMIN.value:
            others = (
                Operator.objects.filter(airline=principal.airline, role=Role.ADMIN.value, active=True)
                .exclude(pk=operator.pk)
                .exists()
            )
            if not others:
                raise _lockout_problem(
                    "last-active-admin",
                    "The airline's last active ADMIN cannot be deactivated",
                    f"{operator_urn} is the last active ADMIN of {principal.airline}; activate another ADMIN first.",
                )
        if was_active:
            Operator.objects.filter(pk=operator.pk).update(active=False)
            operator.active = False
            audit.record(
                principal=principal,
                action="operator.deactivated",
                entity_urn=operator_urn,
                reason=reason,
                before={"active": True},
                after={"active": False},
            )
        principal_check.index_deactivated(principal.airline, operator_urn)
        with connection.cursor() as cursor:
            cursor.execute(_OPERATOR_ADVISORY_LOCK_SQL, [f"{principal.airline}|{operator_urn}"])
        OperatorSession.objects.filter(airline=principal.airline, operator_urn=operator_urn).delete()
        released = _release_all(
            airline=principal.airline,
            operator_urn=operator_urn,
            reason=f"operator deactivated: {reason}",
            actor=principal.operator_urn,
        )
        events.publish_operator_deactivated(operator_urn=operator_urn, airline=principal.airline)
    return OperatorDeactivation(operator_urn=operator_urn, active=False, released_locks=released)


def operator_role_change(*, principal: Principal, operator_urn: str, role: Role | str, reason: str) -> Operator:
    """Change the role of an operator of the caller's airline (ADMIN; ``reason`` required; audited as
    ``operator.role_changed`` with the roles before and after). The operator's Django user moves to the
    new role's admin group (operators/permissions.py).

    403 for a caller below ADMIN and for an ADMIN changing their own role; 404 for an operator of another
    airline or none; 400 for an unknown role or a missing reason; 409 for demoting the airline's last active ADMIN (no
    lock-out). Setting the role it already has changes nothing and writes no audit row.

    The role is the operator's profile (what Django admin goes by); the API goes by the token's role
    claim, issued by the identity provider.
    """
    if not role_satisfies(principal.role, Role.ADMIN):
        raise Problem(status=403, slug="forbidden", title="Forbidden", detail="Changing roles needs ADMIN.")
    if operator_urn == principal.operator_urn:
        raise Problem(status=403, slug="forbidden", title="Forbidden", detail="Nobody changes their own role.")
    try:
        new_role = Role(role)
    except ValueError:
        raise validation_problem(
            [{"field": "role", "message": f"must be one of {', '.join(r.value for r in Role)}"}]
        ) from None
    reason = _require_reason(reason)
    with transaction.atomic():
        # The same per-airline lock as deactivation and reactivation: two ADMINs demoting or deactivating
        # each other at once cannot both pass the last-ADMIN check.
        with connection.cursor() as cursor:
            cursor.execute(_AIRLINE_OPERATORS_LOCK_SQL, [f"operators|{principal.airline}"])
        operator = (
            Operator.objects.select_for_update().filter(airline=principal.airline, operator_urn=operator_urn).first()
        )
        if operator is None:
            raise not_found_problem()
        old_role = operator.role
        if old_role == new_role.value:
            return operator
        if old_role == Role.ADMIN.value and operator.active:
            others = (
                Operator.objects.filter(airline=principal.airline, role=Role.ADMIN.value, active=True)
                .exclude(pk=operator.pk)
                .exists()
            )
            if not others:
                raise _lockout_problem(
                    "last-active-admin",
                    "The airline's last active ADMIN",
                    f"{operator_urn} is the airline's last active ADMIN; make another operator ADMIN first.",
                )
        Operator.objects.filter(pk=operator.pk).update(role=new_role.value)
        operator.role = new_role.value
        audit.record(
            principal=principal,
            action="operator.role_changed",
            entity_urn=operator_urn,
            reason=reason,
            before={"role": old_role},
            after={"role": new_role.value},
        )
        if operator.user_id is not None:
            user_role_groups_sync(user_ids=[operator.user_id])
    return operator


def operator_reactivate(*, principal: Principal, operator_urn: str, reason: str) -> Operator:
    """Reactivate a deactivated operator of the caller's airline (ADMIN; ``reason`` required; audited as
    ``operator.reactivated``). 404 for a URN without a profile in the caller's airline; 409
    ``operator-already-active`` when they are active. Their tokens are accepted again from the next
    request on (those not revoked and not expired)."""
    _require_admin(principal, "Reactivating operators")
    reason = _require_reason(reason)
    operator_urn = _require_operator_urn(operator_urn)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(_AIRLINE_OPERATORS_LOCK_SQL, [f"operators|{principal.airline}"])
        operator = _operator_for_update(principal, operator_urn)
        if operator.active:
            raise _lockout_problem(
                "operator-already-active", "The operator is active", f"{operator_urn} is not deactivated."
            )
        Operator.objects.filter(pk=operator.pk).update(active=True)
        operator.active = True
        audit.record(
            principal=principal,
            action="operator.reactivated",
            entity_urn=operator_urn,
            reason=reason,
            before={"active": False},
            after={"active": True},
        )
        principal_check.index_reactivated(principal.airline, operator_urn)
    return operator


# --- tokens -----------------------------------------------------------------------------------------


def token_logout(*, principal: Principal) -> bool:
    """Revoke the caller's own token (its ``jti``) until it expires; audited as ``auth.logout`` the first
    time. Returns False when it was already revoked (logging out twice is harmless, audited once). A
    token without ``jti`` cannot be revoked: 422 ``token-not-revocable`` (production refuses such tokens
    altogether)."""
    if not principal.token_id:
        raise Problem(
            status=422,
            slug="token-not-revocable",
            title="The token cannot be revoked",
            detail="The token has no 'jti' claim, so it cannot be revoked; it stays valid until it expires.",
        )
    ttl = 86400
    if principal.expires_at is not None:
        remaining = (principal.expires_at - timezone.now()).total_seconds()
        ttl = max(int(remaining) + int(settings.NEXA_JWT_LEEWAY_SECONDS) + 1, 1)
    with transaction.atomic():
        revoked = revoke_token_id(principal.token_id, ttl_seconds=ttl)
        if revoked:
            audit.record(
                principal=principal,
                action="auth.logout",
                entity_urn=principal.operator_urn,
                reason="logout",
                before={"tokenId": principal.token_id},
                after={"revoked": True},
            )
    return revoked
