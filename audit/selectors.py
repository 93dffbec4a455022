"""Reading the audit log. Always scoped to the principal's airline; newest first, with the id
as tie-breaker — the order the paginator walks (``AUDIT_ORDERING``).

Cases belong to ``cases``, a layer above (docs/architecture.md). A case's trail must be a 404 when the
case is not the caller's, so ``cases`` registers its check here at start-up (:func:`case_check_register`,
from ``CasesConfig.ready``) and :func:`case_check` calls it; audit never imports ``cases``."""

from datetime import datetime
from typing import Protocol

from django.db.models import QuerySet

from audit.models import AuditEntry
from nexa.platform.auth import Principal
from nexa.platform.tenancy import for_principal

AUDIT_ORDERING = ("-created_at", "-id")


class CaseCheck(Protocol):
    """Raise a 404 problem unless ``case_urn`` is a case of the principal's airline; a malformed URN
    raises :class:`~nexa.platform.urns.InvalidUrn`. The return value is ignored."""

    def __call__(self, *, principal: Principal, case_urn: str) -> object: ...


_case_checks: list[CaseCheck] = []


def case_check_register(check: CaseCheck) -> CaseCheck:
    """Install the case check (``cases`` calls this from its ``AppConfig.ready``); the last one wins."""
    _case_checks[:] = [check]
    return check


def case_check(*, principal: Principal, case_urn: str) -> None:
    """A 404 problem unless the principal's airline has this case (another airline's included)."""
    if not _case_checks:
        raise RuntimeError("no case check registered: CasesConfig.ready() registers it (is 'cases' installed?)")
    _case_checks[0](principal=principal, case_urn=case_urn)


def _scoped(principal: Principal) -> QuerySet[AuditEntry]:
    return for_principal(AuditEntry.objects.all(), principal)


def audit_entries(
    *,
    principal: Principal,
    actor: str | None = None,
    action: str | None = None,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
) -> QuerySet[AuditEntry]:
    """The airline's audit log, optionally narrowed. ``created_from`` is inclusive and
    ``created_to`` exclusive (half-open, so consecutive ranges never overlap)."""
    queryset = _scoped(principal)
    if actor:
        queryset = queryset.filter(actor=actor)
    if action:
        queryset = queryset.filter(action=action)
    if created_from is not None:
        queryset = queryset.filter(created_at__gte=created_from)
    if created_to is not None:
        queryset = queryset.filter(created_at__lt=created_to)
    return queryset.order_by(*AUDIT_ORDERING)


def audit_entries_for_case(*, principal: Principal, case_urn: str) -> QuerySet[AuditEntry]:
    """Everything recorded under one case (the case itself, its sub-cases, bookings …)."""
    return _scoped(principal).filter(case_urn=case_urn).order_by(*AUDIT_ORDERING)


def audit_entries_for_entity(*, principal: Principal, entity_urn: str) -> QuerySet[AuditEntry]:
    """The history of one entity."""
    return _scoped(principal).filter(entity_urn=entity_urn).order_by(*AUDIT_ORDERING)
