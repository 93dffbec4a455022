"""Entity locks: leases with fencing tokens over sub-cases (ARCHITECTURE §4, docs/locks.md).

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
"""

from dataclasses import dataclass

from django.db import connection, transaction

from audit import services as audit
from cases import selectors as case_selectors
from nexa.platform.auth import Principal
from nexa.platform.problems import Problem, conflict_problem
from nexa.platform.roles import Role, role_satisfies
from operators import events
from operators.services import _common
from operators.services._common import (
    LOCKS,
    OPERATORS,
    SYSTEM_LOCK_SWEEP,
    _announce,
    _locked_by_another_problem,
    _not_locked_problem,
    _released_rows,
    _require_reason,
    lease_seconds,
    logger,
    operator_deactivated_problem,
    remaining_seconds,
    subcase_locked_problem,
)

_ACQUIRE_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class LockGrant:
    """What the holder needs: send ``fencing_token`` as ``X-Fencing-Token`` with every write."""

    sub_case_urn: str
    locked_by: str
    fencing_token: int
    expires_in_seconds: int


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
                cursor.execute(_EXPIRE_SQL, [_common.SWEEP_BATCH])
                released = _released_rows(cursor.fetchall())
            _announce(released=released, actor=SYSTEM_LOCK_SWEEP, action="subcase.lock_expired", reason="lease expired")
        total += len(released)
        if len(released) < _common.SWEEP_BATCH:
            break
    if total:
        logger.info("locks.expired", released=total)
    return total
