"""Operator administration: deactivate, reactivate and change the role of an airline's operators
(ADMIN only; never locking the airline out)."""

from dataclasses import dataclass

from django.db import connection, transaction

from audit import services as audit
from nexa.platform.auth import Principal
from nexa.platform.problems import Problem, conflict_problem, not_found_problem, validation_problem
from nexa.platform.roles import Role, role_satisfies
from nexa.platform.urns import is_opaque_urn
from operators import events, principal_check
from operators.models import Operator, OperatorSession
from operators.permissions import user_role_groups_sync
from operators.services._common import _require_reason
from operators.services.locks import _release_all
from operators.services.sessions import _OPERATOR_ADVISORY_LOCK_SQL

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


def _lock_airline_operators(principal: Principal) -> None:
    """Serialise deactivation, reactivation and role changes of one airline's operators (until the
    transaction ends), so the last-active-ADMIN rule holds when two ADMINs act at once."""
    with connection.cursor() as cursor:
        cursor.execute(_AIRLINE_OPERATORS_LOCK_SQL, [f"operators|{principal.airline}"])


def _active_set(*, principal: Principal, operator: Operator, active: bool, action: str, reason: str) -> None:
    """Flip ``operator.active`` and write its audit row."""
    Operator.objects.filter(pk=operator.pk).update(active=active)
    operator.active = active
    audit.record(
        principal=principal,
        action=action,
        entity_urn=operator.operator_urn,
        reason=reason,
        before={"active": not active},
        after={"active": active},
    )


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
        _lock_airline_operators(principal)
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
            _active_set(
                principal=principal, operator=operator, active=False, action="operator.deactivated", reason=reason
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
        _lock_airline_operators(principal)
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
        _lock_airline_operators(principal)
        operator = _operator_for_update(principal, operator_urn)
        if operator.active:
            raise _lockout_problem(
                "operator-already-active", "The operator is active", f"{operator_urn} is not deactivated."
            )
        _active_set(principal=principal, operator=operator, active=True, action="operator.reactivated", reason=reason)
        principal_check.index_reactivated(principal.airline, operator_urn)
    return operator
