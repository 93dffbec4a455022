"""Writing the audit log (ARCHITECTURE §3.11). The only writes are :func:`record` and its batch form
:func:`record_many`; rows are never updated or deleted (the database refuses it)."""

import re
from collections.abc import Iterable, Mapping
from typing import Any, overload

from audit.models import AuditEntry
from nexa.platform.auth import Principal
from nexa.platform.context import current_correlation_urn

# Actors for automation that has no operator behind it.
SYSTEM_BEAT = "urn:nexa:system:beat"
SYSTEM_WORKER = "urn:nexa:system:worker"

_ACTION = re.compile(r"^[a-z][a-z0-9_-]*(\.[a-z][a-z0-9_-]*)+$")
_AIRLINE = re.compile(r"^[A-Z0-9]{2,3}$")


@overload
def record(
    *,
    principal: Principal,
    action: str,
    entity_urn: str,
    case_urn: str | None = None,
    reason: str = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    correlation_urn: str | None = None,
) -> AuditEntry: ...


@overload
def record(
    *,
    airline: str,
    actor: str,
    action: str,
    entity_urn: str,
    case_urn: str | None = None,
    reason: str = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    correlation_urn: str | None = None,
) -> AuditEntry: ...


def record(
    *,
    principal: Principal | None = None,
    airline: str | None = None,
    actor: str | None = None,
    action: str,
    entity_urn: str,
    case_urn: str | None = None,
    reason: str = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    correlation_urn: str | None = None,
) -> AuditEntry:
    """Append one audit row in the caller's transaction (no commit of its own: if the caller's
    transaction rolls back, so does the row).

    Give either ``principal`` (actor and airline come from the token) or, for automation,
    ``airline`` + ``actor`` (e.g. :data:`SYSTEM_BEAT`). ``correlation_urn`` defaults to the
    current request's/task's. ``before``/``after`` are JSON objects (datetimes, UUIDs and
    Decimals are encoded); pass only the fields that changed.
    """
    entry = _entry(
        principal=principal,
        airline=airline,
        actor=actor,
        action=action,
        entity_urn=entity_urn,
        case_urn=case_urn,
        reason=reason,
        before=before,
        after=after,
        correlation_urn=correlation_urn,
    )
    entry.save(force_insert=True)
    return entry


def record_many(entries: Iterable[Mapping[str, Any]]) -> list[AuditEntry]:
    """Append many audit rows with one INSERT, in the caller's transaction: each mapping holds the keyword
    arguments :func:`record` takes, and is checked the same way (one bad entry refuses them all). For batch
    work (the SLA sweep) where one INSERT per row would dominate the time."""
    rows = [_entry(**entry) for entry in entries]
    return AuditEntry.objects.bulk_create(rows) if rows else []


def _entry(
    *,
    principal: Principal | None = None,
    airline: str | None = None,
    actor: str | None = None,
    action: str,
    entity_urn: str,
    case_urn: str | None = None,
    reason: str = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    correlation_urn: str | None = None,
) -> AuditEntry:
    """The checked, unsaved row (see :func:`record`)."""
    if principal is not None:
        if airline is not None or actor is not None:
            raise TypeError("record(): pass either principal or airline + actor, not both")
        airline, actor = principal.airline, principal.operator_urn
    elif airline is None or actor is None:
        raise TypeError("record(): pass principal, or both airline and actor")
    if not _AIRLINE.match(airline):
        raise ValueError(f"record(): {airline!r} is not an airline code")
    if not actor.startswith("urn:"):
        raise ValueError(f"record(): the actor must be a URN, got {actor!r}")
    if not _ACTION.match(action):
        raise ValueError(f'record(): action must look like "<entity>.<verb>", got {action!r}')
    if not entity_urn:
        raise ValueError("record(): entity_urn is required")
    return AuditEntry(
        airline=airline,
        actor=actor,
        action=action,
        entity_urn=entity_urn,
        case_urn=case_urn or None,
        reason=reason or "",
        before=before,
        after=after,
        correlation_urn=correlation_urn or current_correlation_urn() or "",
    )
