"""Reads of the notifications domain; every query is scoped to the principal's airline."""

from django.db.models import QuerySet

from cases.models import Case, SubCase
from nexa.platform.auth import Principal
from nexa.platform.tenancy import for_principal
from notifications.models import Notification, NotificationStatus, WhatsAppOptIn

# Newest first, like the audit log; ids are UUIDv7 so they break ties in creation order.
NOTIFICATION_ORDERING = ("-created_at", "-id")


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
