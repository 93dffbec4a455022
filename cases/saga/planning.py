"""Planning a run: its steps (one per requested item, then ``notify``) and the outbox row that hands it
to a worker."""

from __future__ import annotations

from typing import Any

from cases.models import SagaRun, SagaStep
from cases.saga.common import SAGA_REQUESTED
from cases.saga.kinds import STEP_NAMES
from nexa.platform.outbox import publish
from nexa.platform.urns import format_urn


def plan(items: list[dict[str, Any]]) -> list[tuple[str, str, dict[str, Any]]]:
    """(name, kind, item) per step: one per item in request order, then notify."""
    steps = [(STEP_NAMES[item["type"]], item["type"], item) for item in items]
    steps.append((STEP_NAMES["NOTIFY"], "NOTIFY", {"type": "NOTIFY"}))
    return steps


def create_steps(run: SagaRun, items: list[dict[str, Any]], settled: list | None = None) -> list[SagaStep]:
    """One step per item (``settled[i]``: the item's amount in the settlement currency), then notify."""
    settled = list(settled or []) + [None] * (len(items) + 1)
    return SagaStep.objects.bulk_create(
        SagaStep(
            run=run, airline=run.airline, position=position, name=name, kind=kind, item=item,
            settled_amount=settled[position],
        )
        for position, (name, kind, item) in enumerate(plan(items))
    )  # fmt: skip


def publish_requested(run: SagaRun) -> None:
    """Inside the transaction that created (or re-armed) the run: the outbox relays it to the worker."""
    publish(
        SAGA_REQUESTED,
        {
            "sagaUrn": run.urn,
            "subCaseUrn": format_urn("subcase", run.sub_case_id),
            "caseUrn": format_urn("case", run.case_id),
        },
        [],
        airline=run.airline,
    )
