"""Tenant-scoped reads of the audit log, newest first."""

from datetime import UTC, datetime, timedelta

import pytest

from audit.selectors import audit_entries, audit_entries_for_case, audit_entries_for_entity
from nexa.platform.auth import Principal
from nexa.platform.roles import Role
from nexa.platform.urns import new_urn
from tests.audit.factories import AuditEntryFactory

pytestmark = pytest.mark.django_db

IB = Principal(airline="IB", role=Role.FINANCE_AUDIT, operator_urn="urn:nexa:user:ib-audit", subject="a")
BA = Principal(airline="BA", role=Role.FINANCE_AUDIT, operator_urn="urn:nexa:user:ba-audit", subject="b")
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_audit_entries_are_scoped_to_the_airline_and_newest_first():
    old = AuditEntryFactory(created_at=T0)
    new = AuditEntryFactory(created_at=T0 + timedelta(minutes=5))
    AuditEntryFactory(airline="BA", created_at=T0 + timedelta(minutes=1))
    assert list(audit_entries(principal=IB)) == [new, old]
    assert [e.airline for e in audit_entries(principal=BA)] == ["BA"]


def test_ties_on_time_are_ordered_by_id_descending():
    entries = [AuditEntryFactory(created_at=T0) for _ in range(4)]
    assert list(audit_entries(principal=IB)) == sorted(entries, key=lambda e: e.id, reverse=True)


def test_audit_entries_filters():
    a = AuditEntryFactory(actor="urn:nexa:user:a", action="subcase.locked", created_at=T0)
    b = AuditEntryFactory(actor="urn:nexa:user:b", action="subcase.locked", created_at=T0 + timedelta(hours=1))
    c = AuditEntryFactory(actor="urn:nexa:user:a", action="policy.activated", created_at=T0 + timedelta(hours=2))
    assert list(audit_entries(principal=IB, actor="urn:nexa:user:a")) == [c, a]
    assert list(audit_entries(principal=IB, action="subcase.locked")) == [b, a]
    # from inclusive, to exclusive
    assert list(audit_entries(principal=IB, created_from=T0 + timedelta(hours=1))) == [c, b]
    assert list(audit_entries(principal=IB, created_to=T0 + timedelta(hours=1))) == [a]
    assert list(
        audit_entries(principal=IB, actor="urn:nexa:user:a", created_from=T0, created_to=T0 + timedelta(hours=3))
    ) == [c, a]
    assert list(audit_entries(principal=BA, actor="urn:nexa:user:a")) == []


def test_entries_for_case_and_entity():
    case, entity = new_urn("case"), new_urn("subcase")
    first = AuditEntryFactory(case_urn=case, entity_urn=entity, created_at=T0)
    second = AuditEntryFactory(case_urn=case, created_at=T0 + timedelta(seconds=1))
    AuditEntryFactory()  # another case
    AuditEntryFactory(airline="BA", case_urn=case, entity_urn=entity)  # same URN text, other tenant
    assert list(audit_entries_for_case(principal=IB, case_urn=case)) == [second, first]
    assert list(audit_entries_for_entity(principal=IB, entity_urn=entity)) == [first]
    assert [e.airline for e in audit_entries_for_case(principal=BA, case_urn=case)] == ["BA"]
