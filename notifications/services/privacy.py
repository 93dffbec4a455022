"""Personal data: forgetting the full addresses of a case's notifications (the passenger-data purge)."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from notifications.models import Notification, NotificationStatus
from notifications.selectors import Case


def notification_recipients_purge(*, case: Case) -> int:
    """Forget the full addresses of the case's notifications (for the passenger-data purge); the masked
    ones stay in the log. Queued notifications can no longer be sent and become FAILED. Returns the
    number of rows changed."""
    now = timezone.now()
    with transaction.atomic():
        rows = Notification.objects.filter(case_id=case.pk).exclude(recipient="")
        rows.filter(status=NotificationStatus.QUEUED).update(
            status=NotificationStatus.FAILED, last_error="The passenger's personal data was purged.", updated_at=now
        )
        return rows.update(recipient="", updated_at=now)
