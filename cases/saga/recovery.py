"""Recovery: runs nobody is driving (their worker died) are handed back to a worker
(``cases.tasks.saga_runs_resume_stalled``, beat)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from django.db.models import Q
from django.db.models.functions import Now

from cases.models import SagaRun, SubCase
from cases.saga.common import idle_seconds
from cases.saga.leases import _ACTIVE


def stalled_run_ids(limit: int = 100) -> list:
    """Active runs nobody is driving: the worker's lease expired (it died mid-step), or no lease and no
    progress for ``NEXA_SAGA_IDLE_SECONDS`` (default 900 s, above any retry countdown; e.g. the task
    died on an unexpected error after releasing the lease)."""
    idle = dt.timedelta(seconds=idle_seconds())
    stalled = Q(lease_expires_at__lt=Now()) | Q(lease_expires_at__isnull=True, updated_at__lt=Now() - idle)
    return list(
        SagaRun.objects.filter(stalled, status__in=_ACTIVE).order_by("updated_at").values_list("pk", flat=True)[:limit]
    )


def resume_stalled(enqueue: Callable[[str], None], limit: int = 100) -> int:
    """Hand every stalled run to ``enqueue(saga_urn)``; returns how many."""
    ids = stalled_run_ids(limit)
    for run_id in ids:
        enqueue(SagaRun(pk=run_id).urn)
    return len(ids)


def subcase_for_run(run: SagaRun) -> SubCase:
    return run.sub_case
