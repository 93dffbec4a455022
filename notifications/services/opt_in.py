"""WhatsApp opt-ins: recording a passenger's consent or its withdrawal."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from audit.services import record
from nexa.platform.auth import Principal
from nexa.platform.problems import validation_problem
from notifications.models import WhatsAppOptIn
from notifications.selectors import subcase_get


def whatsapp_opt_in_record(*, principal: Principal, sub_case_urn: str, opted_in: bool, source: str) -> WhatsAppOptIn:
    """Record the passenger's WhatsApp consent (or its withdrawal); audited, no personal data."""
    if not source or len(source) > 100:
        raise validation_problem([{"field": "source", "message": "Give 1 to 100 characters."}])
    with transaction.atomic():
        sub_case = subcase_get(principal=principal, sub_case_urn=sub_case_urn)
        current = WhatsAppOptIn.objects.select_for_update().filter(sub_case_id=sub_case.pk).first()
        before = {"optedIn": current.opted_in} if current else None
        opt_in, _ = WhatsAppOptIn.objects.update_or_create(
            sub_case_id=sub_case.pk,
            defaults={
                "airline": sub_case.airline,
                "opted_in": opted_in,
                "source": source,
                "recorded_by": principal.operator_urn,
                "updated_at": timezone.now(),
            },
        )
        record(
            principal=principal,
            action="subcase.whatsapp-opt-in-recorded",
            entity_urn=sub_case.urn,
            case_urn=sub_case.case.urn,
            before=before,
            after={"optedIn": opted_in, "source": source},
        )
    return opt_in
