"""``audit.services.record_many`` (batch work such as the SLA sweep): one row per entry, checked as ``record``
checks one; a bad entry refuses them all."""

import pytest
from django.db import transaction

from audit import services
from audit.models import AuditEntry
from nexa.platform.auth import Principal
from nexa.platform.roles import Role

pytestmark = pytest.mark.django_db

SYSTEM = Principal(airline="IB", role=Role.ADMIN, operator_urn="urn:nexa:system:sla", subject="system:sla")


def test_one_row_per_entry_with_the_records_fields():
    rows = services.record_many(
        [
            {"principal": SYSTEM, "action": "review.sla_breached", "entity_urn": f"urn:nexa:review:{n}",
             "case_urn": "urn:nexa:case:c", "reason": "HIGH SLA breached", "after": {"n": n}}
            for n in range(3)
        ]
    )  # fmt: skip
    assert len(rows) == 3
    stored = AuditEntry.objects.filter(action="review.sla_breached").order_by("entity_urn")
    assert [(row.airline, row.actor, row.entity_urn, row.after) for row in stored] == [
        ("IB", "urn:nexa:system:sla", f"urn:nexa:review:{n}", {"n": n}) for n in range(3)
    ]


def test_a_bad_entry_refuses_them_all():
    good = {"airline": "IB", "actor": "urn:nexa:system:sla", "action": "review.sla_breached", "entity_urn": "u:1"}
    with pytest.raises(ValueError, match="action"), transaction.atomic():
        services.record_many([good, {**good, "action": "breached"}])
    assert not AuditEntry.objects.exists()
