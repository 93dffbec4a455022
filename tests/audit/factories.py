"""factory_boy factories for audit rows (INSERT is the only write the table allows)."""

import factory

from audit.models import AuditEntry
from nexa.platform.urns import new_urn


class AuditEntryFactory(factory.django.DjangoModelFactory):
    """An audit row; pass ``created_at=`` for a fixed time (else the database's now())."""

    class Meta:
        model = AuditEntry

    airline = "IB"
    actor = "urn:nexa:user:ib-ops"
    action = "subcase.locked"
    entity_urn = factory.LazyFunction(lambda: new_urn("subcase"))
    case_urn = factory.LazyFunction(lambda: new_urn("case"))
    reason = ""
    correlation_urn = factory.LazyFunction(lambda: new_urn("correlation"))
