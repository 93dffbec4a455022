"""The database refuses to change or remove audit rows (ARCHITECTURE §3.11).

BEFORE UPDATE OR DELETE (per row) and BEFORE TRUNCATE (per statement) triggers raise, so the
ORM, the admin, raw SQL and psql sessions are all refused (SQLSTATE P0001, which psycopg 3
and Django surface as ``ProgrammingError``). Only INSERT is allowed.

Two deliberate exceptions:
* TRUNCATE of an *empty* table is allowed: it destroys nothing, and Django's test-database
  flush (``transaction=True`` tests, live server) truncates every table. The TRUNCATE
  trigger runs after the table's ACCESS EXCLUSIVE lock is taken, so no row can slip in
  between the emptiness check and the truncation.
* A superuser may set ``session_replication_role = replica``, which skips ordinary triggers
  (standard PostgreSQL; the application role must not be a superuser in production). Test
  teardown uses this to purge rows; see tests/audit/db_plugin.py.
"""

from django.db import migrations

FORWARD = r"""
CREATE OR REPLACE FUNCTION audit_entry_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    has_rows boolean;
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I.%I)', TG_TABLE_SCHEMA, TG_TABLE_NAME) INTO has_rows;
        IF NOT has_rows THEN
            RETURN NULL;
        END IF;
    END IF;
    RAISE EXCEPTION 'audit entries are append-only: % on %.% is not allowed', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
        USING HINT = 'Write a new audit entry instead of changing or removing one.';
END;
$$;

CREATE TRIGGER audit_entry_no_update_delete
    BEFORE UPDATE OR DELETE ON audit_auditentry
    FOR EACH ROW EXECUTE FUNCTION audit_entry_refuse_change();

CREATE TRIGGER audit_entry_no_truncate
    BEFORE TRUNCATE ON audit_auditentry
    FOR EACH STATEMENT EXECUTE FUNCTION audit_entry_refuse_change();
"""

REVERSE = r"""
DROP TRIGGER IF EXISTS audit_entry_no_truncate ON audit_auditentry;
DROP TRIGGER IF EXISTS audit_entry_no_update_delete ON audit_auditentry;
DROP FUNCTION IF EXISTS audit_entry_refuse_change();
"""


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [migrations.RunSQL(sql=FORWARD, reverse_sql=REVERSE)]
