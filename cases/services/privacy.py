"""Personal data: anonymising the passengers of a closed case past its retention."""

import base64
import datetime as dt
import hashlib
import hmac

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.db.models.functions import Now

from audit import services as audit
from cases.models import Case, CaseStatus, SubCase
from cases.services._common import _lock_case
from nexa.platform.auth import Principal
from notifications.services import notification_recipients_purge

# --- personal data ------------------------------------------------------------------------------------

REDACTED = "REDACTED"


def _pnr_pseudonym(*, case: Case, pnr: str) -> str:
    """A stable 6-character stand-in for a PNR within one case: who travelled together stays
    visible, the real booking reference does not."""
    digest = hmac.new(settings.SECRET_KEY.encode(), f"{case.pk}:{pnr}".encode(), hashlib.sha256).digest()
    return base64.b32encode(digest).decode()[:6]


def case_passenger_data_purge(*, principal: Principal, case: Case, today: dt.date) -> int:
    """Anonymise the passengers of a CLOSED case whose ``retention_until`` is before ``today``:
    names become ``REDACTED``; email, phone, onward flight and special needs are emptied; the PNR is
    replaced by a pseudonym. Tier, loyalty tier, language, status and the audit trail (which never
    held personal data) stay. Returns how many sub-cases were anonymised (0 when nothing is due,
    so re-running is harmless)."""
    with transaction.atomic():
        case = _lock_case(principal=principal, case_id=case.pk)
        if case.status != CaseStatus.CLOSED or case.retention_until >= today:
            return 0
        pending = SubCase.objects.filter(case_id=case.pk, anonymised_at__isnull=True)
        anonymised = 0
        for pnr in sorted(set(pending.values_list("pnr", flat=True))):
            anonymised += pending.filter(pnr=pnr).update(
                first_name=REDACTED,
                last_name=REDACTED,
                email="",
                phone="",
                onward_flight="",
                special_needs=[],
                pnr=_pnr_pseudonym(case=case, pnr=pnr),
                anonymised_at=Now(),
                version=F("version") + 1,
                updated_at=Now(),
            )
        # Notification rows keep full addresses for sending and retries; they go with the rest.

        notification_recipients_purge(case=case)
        if anonymised:
            audit.record(
                principal=principal,
                action="case.passenger_data_purged",
                entity_urn=case.urn,
                case_urn=case.urn,
                after={"anonymisedSubCases": anonymised, "retentionUntil": case.retention_until.isoformat()},
            )
    return anonymised
