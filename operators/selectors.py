"""Reads of the operators domain (tenant-scoped: callers never pass another airline)."""

from datetime import timedelta

from django.conf import settings
from django.contrib.postgres.expressions import ArraySubquery
from django.db.models import DateTimeField, Exists, Max, OuterRef, QuerySet, Subquery
from django.db.models.functions import Greatest, Now

from nexa.platform.auth import Principal
from nexa.platform.tenancy import for_principal
from operators.models import EntityLock, Operator, OperatorSession


def operator_is_active(*, airline: str, operator_urn: str) -> bool:
    """False only for an operator an ADMIN deactivated. Unknown operators are active: the token is the
    identity, the profile row is optional."""
    return not Operator.objects.filter(airline=airline, operator_urn=operator_urn, active=False).exists()


def operators_active(*, principal: Principal) -> QuerySet[Operator]:
    """The airline's active operator profiles, plain (no presence or lock annotations: cheap for lists)."""
    return for_principal(Operator.objects.filter(active=True), principal)


def operators_list(*, principal: Principal) -> QuerySet[Operator]:
    """The airline's operator profiles, each annotated with:

    * ``connected`` — any session heard from within ``NEXA_SESSION_STALE_SECONDS``;
    * ``seen_at`` — the latest heartbeat of a live session, else when their last socket closed (or null);
    * ``locks_held`` — sub-case URNs of their unexpired leases, sorted.
    """
    sessions = OperatorSession.objects.filter(airline=OuterRef("airline"), operator_urn=OuterRef("operator_urn"))
    live = sessions.filter(last_seen_at__gte=Now() - timedelta(seconds=int(settings.NEXA_SESSION_STALE_SECONDS)))
    latest_session = (
        sessions.order_by().values("operator_urn").annotate(latest=Max("last_seen_at")).values("latest")[:1]
    )
    locks = (
        EntityLock.objects.filter(airline=OuterRef("airline"), holder=OuterRef("operator_urn"), expires_at__gt=Now())
        .order_by("entity_urn")
        .values("entity_urn")
    )
    return for_principal(Operator.objects.all(), principal).annotate(
        connected=Exists(live),
        # PostgreSQL's GREATEST skips nulls: null only when neither is known.
        seen_at=Greatest(Subquery(latest_session, output_field=DateTimeField()), "last_seen_at"),
        locks_held=ArraySubquery(locks),
    )


def operators_online(*, principal: Principal) -> list[str]:
    """URNs of the airline's operators with a live Socket.IO session (heard from within
    ``NEXA_SESSION_STALE_SECONDS``), sorted. Includes operators known only from their tokens."""
    stale_after = timedelta(seconds=int(settings.NEXA_SESSION_STALE_SECONDS))
    live = for_principal(OperatorSession.objects.filter(last_seen_at__gte=Now() - stale_after), principal)
    return sorted(set(live.values_list("operator_urn", flat=True)))
