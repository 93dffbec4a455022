"""Planning a run: its steps (one per requested item, then ``notify``) and the outbox row that hands it
to a worker."""

from __future__ import annotations

from typing import Any

from cases.models import SagaRun, SagaStep
from cases.saga.common import SAGA_REQUESTED
from cases.saga.kinds import STEP_NAMES, kind_of
from nexa.platform.outbox import publish
from nexa.platform.urns import format_urn


def plan(items: list[dict[str, Any]], *, summary: bool = True) -> list[tuple[str, str, dict[str, Any], int]]:
    """(name, kind, item, index of the request item) per step: each item's steps in request order (one,
    or several for a kind that expands, e.g. HOTEL), then notify (``summary=False``: no summary notice,
    for runs whose own steps notify, such as book-rooms)."""
    steps = [
        (STEP_NAMES[kind], kind, step_item, index)
        for index, item in enumerate(items)
        for kind, step_item in kind_of(item["type"]).expand(item)
    ]
    if summary:
        steps.append((STEP_NAMES["NOTIFY"], "NOTIFY", {"type": "NOTIFY"}, len(items)))
    return steps


def create_steps(
    run: SagaRun, items: list[dict[str, Any]], settled: list | None = None, *, summary: bool = True
) -> list[SagaStep]:
    """The steps of ``items`` (``settled[i]``: item i's amount in the settlement currency, on its first
    step), then notify."""
    settled = list(settled or []) + [None] * (len(items) + 1)
    seen: set[int] = set()
    steps = []
    for position, (name, kind, item, index) in enumerate(plan(items, summary=summary)):
        amount = settled[index] if index not in seen else None
        seen.add(index)
        steps.append(SagaStep(run=run, airline=run.airline, position=position, name=name, kind=kind, item=item,
                              settled_amount=amount))  # fmt: skip
    return SagaStep.objects.bulk_create(steps)


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
