"""Beat tasks of the platform: thin wrappers, the work lives in the platform modules."""

from celery import shared_task

from nexa.platform.idempotency import purge_expired_records
from nexa.platform.outbox import sweep_undelivered


@shared_task(name="nexa.platform.tasks.outbox_sweep", ignore_result=True)
def outbox_sweep() -> int:
    """Re-deliver outbox rows that no dispatcher delivered after commit (a process died)."""

    return sweep_undelivered()


@shared_task(name="nexa.platform.tasks.idempotency_purge", ignore_result=True)
def idempotency_purge() -> int:
    """Delete idempotency records past their retention (24 h by default)."""

    return purge_expired_records()
