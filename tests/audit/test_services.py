"""audit.services.record, and the database's refusal to change audit rows."""

import uuid
from datetime import datetime

import pytest
from django.db import connection, transaction
from django.db.utils import ProgrammingError

from audit.models import AuditEntry
from audit.services import SYSTEM_BEAT, record
from nexa.platform.auth import Principal
from nexa.platform.context import bound_context
from nexa.platform.roles import Role
from nexa.platform.urns import new_urn

pytestmark = pytest.mark.django_db

# PL/pgSQL RAISE EXCEPTION (SQLSTATE P0001) surfaces as ProgrammingError under psycopg 3.
AppendOnlyRefused = ProgrammingError

PRINCIPAL = Principal(airline="IB", role=Role.OPS_SUPERVISOR, operator_urn="urn:nexa:user:opsA", subject="opsA")


def _record(**overrides) -> AuditEntry:
    fields = {
        "principal": PRINCIPAL,
        "action": "subcase.locked",
        "entity_urn": new_urn("subcase"),
        "case_urn": new_urn("case"),
        "reason": "taking over",
        "before": {"lockedBy": None},
        "after": {"lockedBy": "urn:nexa:user:opsA"},
    }
    fields.update(overrides)
    return record(**fields)


# --- record ------------------------------------------------------------------------------------


def test_record_writes_every_field():
    entity, case, correlation = new_urn("subcase"), new_urn("case"), new_urn("correlation")
    entry = record(
        principal=PRINCIPAL,
        action="subcase.locked",
        entity_urn=entity,
        case_urn=case,
        reason="taking over",
        before={"lockedBy": None, "version": 3},
        after={"lockedBy": "urn:nexa:user:opsA", "version": 4},
        correlation_urn=correlation,
    )
    assert isinstance(entry.created_at, datetime)  # filled by the database default (RETURNING)
    row = AuditEntry.objects.get(pk=entry.pk)
    assert row.id.version == 7
    assert row.urn == f"urn:nexa:audit:{row.id}"
    assert row.airline == "IB"
    assert row.actor == "urn:nexa:user:opsA"
    assert row.action == "subcase.locked"
    assert row.entity_urn == entity
    assert row.case_urn == case
    assert row.reason == "taking over"
    assert row.before == {"lockedBy": None, "version": 3}
    assert row.after == {"lockedBy": "urn:nexa:user:opsA", "version": 4}
    assert row.correlation_urn == correlation
    assert row.created_at == entry.created_at
    assert row.created_at.tzinfo is not None


def test_record_defaults_correlation_to_the_current_request():
    correlation = new_urn("correlation")
    with bound_context(correlation_urn=correlation):
        entry = _record()
    assert AuditEntry.objects.get(pk=entry.pk).correlation_urn == correlation


def test_record_without_case_diff_or_correlation():
    entry = record(principal=PRINCIPAL, action="policy.activated", entity_urn=new_urn("policy"))
    row = AuditEntry.objects.get(pk=entry.pk)
    assert row.case_urn is None
    assert row.before is None and row.after is None
    assert row.reason == "" and row.correlation_urn == ""


def test_record_encodes_uuids_and_datetimes_in_the_diff():
    when = datetime(2026, 1, 2, 3, 4, 5)
    ident = uuid.uuid4()
    entry = _record(before={"at": when, "id": ident})
    assert AuditEntry.objects.get(pk=entry.pk).before == {"at": "2026-01-02T03:04:05", "id": str(ident)}


def test_record_for_a_system_actor():
    entry = record(airline="BA", actor=SYSTEM_BEAT, action="review.escalated", entity_urn=new_urn("review"))
    row = AuditEntry.objects.get(pk=entry.pk)
    assert (row.airline, row.actor) == ("BA", "urn:nexa:system:beat")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"principal": PRINCIPAL, "airline": "IB"},
        {"principal": PRINCIPAL, "actor": SYSTEM_BEAT},
        {"airline": "IB"},
        {"actor": SYSTEM_BEAT},
        {},
    ],
)
def test_record_needs_principal_or_airline_and_actor(kwargs):
    with pytest.raises(TypeError):
        record(action="case.declared", entity_urn=new_urn("case"), **kwargs)
    assert not AuditEntry.objects.exists()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"action": "locked"},
        {"action": "Subcase.Locked"},
        {"action": ""},
        {"entity_urn": ""},
    ],
)
def test_record_refuses_malformed_input(kwargs):
    with pytest.raises(ValueError):
        _record(**kwargs)


def test_record_refuses_a_non_urn_actor_or_bad_airline():
    with pytest.raises(ValueError):
        record(airline="IB", actor="beat", action="review.escalated", entity_urn=new_urn("review"))
    with pytest.raises(ValueError):
        record(airline="iberia", actor=SYSTEM_BEAT, action="review.escalated", entity_urn=new_urn("review"))


def test_record_joins_the_callers_transaction():
    class Boom(Exception):
        pass

    with pytest.raises(Boom), transaction.atomic():
        entry = _record()
        assert AuditEntry.objects.filter(pk=entry.pk).exists()
        raise Boom
    assert not AuditEntry.objects.filter(pk=entry.pk).exists()


# --- append-only, enforced by the database -----------------------------------------------------


def _unchanged(entry: AuditEntry) -> None:
    row = AuditEntry.objects.get(pk=entry.pk)
    assert (row.reason, row.action, row.before, row.after) == (entry.reason, entry.action, entry.before, entry.after)


def test_orm_update_is_refused():
    entry = _record()
    with pytest.raises(AppendOnlyRefused, match="append-only"), transaction.atomic():
        AuditEntry.objects.filter(pk=entry.pk).update(reason="rewritten")
    _unchanged(entry)


def test_saving_an_existing_row_is_refused():
    entry = _record()
    original_reason = entry.reason
    entry.reason = "rewritten"
    with pytest.raises(AppendOnlyRefused, match="append-only"), transaction.atomic():
        entry.save()
    assert AuditEntry.objects.get(pk=entry.pk).reason == original_reason


def test_orm_delete_is_refused():
    entry = _record()
    with pytest.raises(AppendOnlyRefused, match="append-only"), transaction.atomic():
        entry.delete()
    with pytest.raises(AppendOnlyRefused, match="append-only"), transaction.atomic():
        AuditEntry.objects.all().delete()
    _unchanged(entry)


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_auditentry SET reason = 'rewritten'",
        "UPDATE audit_auditentry SET created_at = now() - interval '1 day'",
        "DELETE FROM audit_auditentry",
        "TRUNCATE audit_auditentry",
        "TRUNCATE audit_auditentry CASCADE",
    ],
)
def test_raw_sql_changes_are_refused(sql):
    entry = _record()
    with pytest.raises(AppendOnlyRefused, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql)
    _unchanged(entry)
    assert AuditEntry.objects.count() == 1


def test_truncating_an_empty_table_is_allowed():
    # Destroys nothing; Django's test flush truncates every table.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("TRUNCATE audit_auditentry")
    assert not AuditEntry.objects.exists()


def test_inserting_more_rows_stays_allowed():
    for _ in range(3):
        _record()
    AuditEntry.objects.bulk_create([AuditEntry(airline="IB", actor=SYSTEM_BEAT, action="x.y", entity_urn="urn:e")])
    assert AuditEntry.objects.count() == 4


@pytest.mark.django_db(transaction=True)
def test_committed_rows_persist_and_rolled_back_ones_vanish_outside_a_test_transaction():
    kept = _record(reason="kept")
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        lost = _record(reason="lost")
        1 / 0  # noqa: B018
    assert AuditEntry.objects.filter(pk=kept.pk).exists()
    assert not AuditEntry.objects.filter(pk=lost.pk).exists()
    # Autocommit: the refusal is the database's, not a savepoint artefact.
    with pytest.raises(AppendOnlyRefused, match="append-only"):
        AuditEntry.objects.filter(pk=kept.pk).delete()
    assert AuditEntry.objects.filter(pk=kept.pk).exists()
    # The teardown flush must still succeed (tests/audit/db_plugin.py).
