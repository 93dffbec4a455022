"""Lets transactional tests (``django_db(transaction=True)``, ``live_server``) coexist with the
append-only audit table.

Django flushes the test database after such a test with one ``TRUNCATE`` of every table; the
audit trigger refuses TRUNCATE while the table has rows. This autouse fixture runs before the
flush and empties the table as a superuser with ``session_replication_role = replica`` (which
skips ordinary triggers; scoped with SET LOCAL to one transaction), so the flush's TRUNCATE
meets an empty table, which the trigger allows.

Register it for the whole suite by adding ``"tests.audit.db_plugin"`` to ``pytest_plugins`` in
tests/conftest.py (tests/audit/conftest.py imports it for this package already).
"""

import pytest
from django.db import connection, transaction

_TRANSACTIONAL_FIXTURES = ("transactional_db", "live_server", "django_db_reset_sequences")


def purge_audit_rows() -> None:
    """Delete every audit row, bypassing the append-only trigger. Tests only."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute("DELETE FROM audit_auditentry")


def _is_transactional(request) -> bool:
    marker = request.node.get_closest_marker("django_db")
    if marker is not None and (marker.kwargs.get("transaction") or (marker.args and marker.args[0])):
        return True
    return any(name in request.fixturenames for name in _TRANSACTIONAL_FIXTURES)


@pytest.fixture(autouse=True)
def _audit_rows_purged_before_flush(request):
    transactional = _is_transactional(request)
    if transactional:
        # Make sure the database fixture is set up first, so its teardown (the flush) runs
        # after ours.
        request.getfixturevalue("_django_db_helper")
    yield
    if transactional:
        purge_audit_rows()
