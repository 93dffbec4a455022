"""Reads of the notifications domain; every query is scoped to the principal's airline.

Cases and sub-cases (the passengers notified) belong to ``cases``, a layer above this app
(docs/architecture.md). Notifications never imports it: :class:`Case` and :class:`SubCase` below say
what it reads of their rows, and ``cases`` lends it three of its selectors at start-up
(:func:`case_lookups_register`, from ``CasesConfig.ready``) — :func:`case_get`, :func:`subcase_get`
and :func:`case_manifest` here call them.
"""

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from django.db.models import QuerySet

from nexa.platform.auth import Principal
from nexa.platform.tenancy import for_principal
from notifications.models import Notification, NotificationStatus, WhatsAppOptIn

# Newest first, like the audit log; ids are UUIDv7 so they break ties in creation order.
NOTIFICATION_ORDERING = ("-created_at", "-id")


# --- what notifications reads of the cases domain ------------------------------------------------------


class Case(Protocol):
    """A ``cases.Case`` row, as far as notifications reads it."""

    pk: Any
    urn: str
    airline: str
    flight_number: str
    flight_date: dt.date
    airport: str


class SubCase(Protocol):
    """A ``cases.SubCase`` row (one passenger), as far as notifications reads it."""

    pk: Any
    urn: str
    airline: str
    case_id: Any
    case: Case
    first_name: str
    last_name: str
    pnr: str
    email: str
    phone: str
    language: str
    anonymised_at: dt.datetime | None


@dataclass(frozen=True, slots=True)
class CaseLookups:
    """The selectors of ``cases`` that notifications calls, each tenant-scoped (another airline's row is
    a 404 problem, a malformed URN an :class:`~nexa.platform.urns.InvalidUrn`):

    * ``case_get(*, principal, case_urn) -> Case``;
    * ``subcase_get(*, principal, sub_case_urn) -> SubCase`` (its case loaded);
    * ``case_manifest(*, principal, case) -> QuerySet`` of the case's sub-cases.
    """

    case_get: Callable[..., Case]
    subcase_get: Callable[..., SubCase]
    case_manifest: Callable[..., QuerySet]


_case_lookups: list[CaseLookups] = []


def case_lookups_register(lookups: CaseLookups) -> CaseLookups:
    """Install the case lookups (``cases`` calls this from its ``AppConfig.ready``); the last one wins."""
    _case_lookups[:] = [lookups]
    return lookups


def _lookups() -> CaseLookups:
    if not _case_lookups:
        raise RuntimeError("no case lookups registered: CasesConfig.ready() registers them (is 'cases' installed?)")
    return _case_lookups[0]


def case_get(*, principal: Principal, case_urn: str) -> Case:
    """The case, or a 404 problem (also for another airline's); a malformed URN is a 400."""
    return _lookups().case_get(principal=principal, case_urn=case_urn)


def subcase_get(*, principal: Principal, sub_case_urn: str) -> SubCase:
    """The sub-case with its case, or a 404 problem (also for another airline's)."""
    return _lookups().subcase_get(principal=principal, sub_case_urn=sub_case_urn)


def case_manifest(*, principal: Principal, case: Case) -> QuerySet:
    """The case's sub-cases (a query set the caller may filter, count and order)."""
    return _lookups().case_manifest(principal=principal, case=case)


# --- render hooks: values only a higher layer can compute -------------------------------------------------

# template name → fn(*, sub_case, context, language, channel) -> dict of extra template values, read at delivery
# time (``channel`` lets a hook skip what only one channel shows, e.g. an email's HTML).
# ``cases`` registers the ``hotel_voucher`` one (the passenger's voucher page and signed link) in
# ``CasesConfig.ready``: the voucher needs the reservation (booking) and the passengers (cases).
_render_context_hooks: dict[str, Callable[..., dict]] = {}


def render_context_register(template: str, hook: Callable[..., dict]) -> Callable[..., dict]:
    """Install the render hook of ``template`` (the last one registered wins)."""
    _render_context_hooks[template] = hook
    return hook


def render_context_extra(*, template: str, sub_case: SubCase, context: dict, language: str, channel: str) -> dict:
    """The hook's values for this notification (``{}`` without a hook). They win over the stored context,
    so HTML a hook marks safe can never be supplied by a caller's context instead."""
    hook = _render_context_hooks.get(template)
    if hook is None:
        return {}
    return dict(hook(sub_case=sub_case, context=context, language=language, channel=channel) or {})


# --- notifications -------------------------------------------------------------------------------------


def notifications_for_case(*, principal: Principal, case: Case, status: str | None = None) -> QuerySet[Notification]:
    """The case's notification log (every sub-case, every channel), optionally one status."""
    notifications = for_principal(Notification.objects.filter(case_id=case.pk), principal).select_related("sub_case")
    if status:
        notifications = notifications.filter(status=status)
    return notifications


def notifications_awaiting_resend(*, principal: Principal, case: Case | None = None) -> QuerySet[Notification]:
    """FAILED notifications (retries exhausted or refused): what an operator should resend by hand."""
    failed = for_principal(Notification.objects.filter(status=NotificationStatus.FAILED), principal)
    return failed.filter(case_id=case.pk) if case is not None else failed


def whatsapp_opted_in(*, sub_case: SubCase) -> bool:
    """Whether the passenger agreed to WhatsApp messages (the latest recorded decision)."""
    return WhatsAppOptIn.objects.filter(sub_case_id=sub_case.pk, airline=sub_case.airline, opted_in=True).exists()


def last_context_for(*, sub_case: SubCase, template: str) -> dict:
    """The values the last notification of ``template`` to this passenger was rendered with (a resend
    repeats them), or ``{}``."""
    context = (
        Notification.objects.filter(sub_case_id=sub_case.pk, airline=sub_case.airline, template=template)
        .order_by("-created_at", "-id")
        .values_list("context", flat=True)
        .first()
    )
    return dict(context or {})
