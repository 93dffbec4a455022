"""Beat tasks of the operators domain: thin wrappers, the work lives in operators.services."""

from celery import shared_task

from operators import services


@shared_task(name="operators.tasks.lock_leases_expire_sweep", ignore_result=True)
def lock_leases_expire_sweep() -> int:
    """Free leases past their end (e.g. held through a server process that died); every ~5 s."""
    return services.lock_leases_expire_sweep()


@shared_task(name="operators.tasks.operator_sessions_stale_sweep", ignore_result=True)
def operator_sessions_stale_sweep() -> int:
    """Close sessions not heard from for NEXA_SESSION_STALE_SECONDS; their operators' locks go with them."""
    return services.operator_sessions_stale_sweep()
