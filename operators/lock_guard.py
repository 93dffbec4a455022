"""Entity locks guard every sub-case write (registered with cases.services at start-up), and tell the
cases domain who holds a sub-case's lock (registered with cases.events: every ``subcase:state-changed``
carries the current ``lockedBy``, :func:`subcase_lock_holder`).

``cases.services`` calls :func:`entity_lock_guard` inside the writing transaction, with the case row
locked, before it changes a sub-case:

* a live lease held by someone else → 409 ``subcase-locked`` (``lockedBy``, ``expiresInSeconds``);
* a fencing token was presented (``X-Fencing-Token``) and it is not the token of a live lease the
  caller holds → 409 ``stale-fencing-token``. The check is SQL —
  ``… WHERE fencing_token = $token AND holder = $me AND expires_at > statement_timestamp() FOR SHARE`` — and the row
  stays share-locked until the write commits, so the lease cannot be taken over, released or swept
  while the protected write is in flight: a holder that lost its lease cannot write.
* otherwise (free, or the caller's own lease, with no token) the write goes ahead; the lease row, when
  there is one, is share-locked for the same reason.
"""

from django.db import connection

from cases.events import lock_holder_lookup_register
from cases.models import SubCase
from cases.services import subcase_write_guard_register
from nexa.platform.auth import Principal
from operators.models import EntityLock
from operators.services import remaining_seconds, stale_fencing_token_problem, subcase_locked_problem

LOCKS = EntityLock._meta.db_table

_FENCED_SQL = f"""
SELECT 1 FROM {LOCKS}
 WHERE entity_urn = %s AND airline = %s AND fencing_token = %s AND holder = %s AND expires_at > statement_timestamp()
   FOR SHARE
"""  # noqa: S608 (table name from the model)

_LEASE_SQL = f"""
SELECT holder,
       holder IS NOT NULL AND expires_at > statement_timestamp(),
       extract(epoch FROM expires_at - statement_timestamp())::float8
  FROM {LOCKS}
 WHERE entity_urn = %s AND airline = %s
   FOR SHARE
"""  # noqa: S608


_HOLDER_SQL = f"""
SELECT holder FROM {LOCKS}
 WHERE entity_urn = %s AND airline = %s AND holder IS NOT NULL AND expires_at > statement_timestamp()
"""  # noqa: S608


def subcase_lock_holder(*, sub_case_urn: str, airline: str) -> str | None:
    """The operator holding a live lease on the sub-case, or None; read on the caller's connection, so
    inside the publishing transaction (a lease granted or released earlier in it is seen as it is now)."""
    with connection.cursor() as cursor:
        cursor.execute(_HOLDER_SQL, [sub_case_urn, airline])
        row = cursor.fetchone()
    return row[0] if row else None


def entity_lock_guard(*, principal: Principal, sub_case: SubCase, fencing_token: int | None) -> None:
    urn, me = sub_case.urn, principal.operator_urn
    with connection.cursor() as cursor:
        if fencing_token is not None:
            cursor.execute(_FENCED_SQL, [urn, sub_case.airline, fencing_token, me])
            if cursor.fetchone() is not None:
                return
        cursor.execute(_LEASE_SQL, [urn, sub_case.airline])
        row = cursor.fetchone()
    if row is not None:
        holder, live, remaining = row
        if live and holder != me:
            raise subcase_locked_problem(
                sub_case_urn=urn, locked_by=holder, expires_in_seconds=remaining_seconds(remaining)
            )
    if fencing_token is not None:
        raise stale_fencing_token_problem(sub_case_urn=urn, fencing_token=fencing_token)


subcase_write_guard_register(entity_lock_guard)
lock_holder_lookup_register(subcase_lock_holder)
