from django.db import migrations


class Migration(migrations.Migration):
    """The stream sequence the outbox relay draws offsets from (ARCHITECTURE §3.10)."""

    dependencies = [("platform", "0001_initial")]

    operations = [
        migrations.RunSQL(
            "CREATE SEQUENCE IF NOT EXISTS platform_outbox_stream_seq",
            "DROP SEQUENCE IF EXISTS platform_outbox_stream_seq",
        )
    ]
