"""Transport transfers (``POST /v1/transport/cases/{case_urn}/transfers/request``): one saga run per
sub-case whose only step requests a ride."""

import datetime as dt
import uuid
from typing import Any

from django.db import transaction
from django.utils import timezone

from audit import services as audit
from cases import compensation, saga
from cases.models import Case, PassengerGroup, SagaRun, SagaStep, SubCase
from cases.services._common import _lock_case
from cases.services.compensation import NOT_COMPENSABLE_STATUSES
from cases.services.guards import _guard_subcase_write
from nexa.platform.auth import Principal
from nexa.platform.breakers import breaker_for
from nexa.platform.context import current_correlation_urn
from nexa.platform.problems import conflict_problem, downstream_unavailable_problem, validation_problem
from nexa.platform.urns import format_urn, new_urn

# --- transport transfers (POST /v1/transport/cases/{case_urn}/transfers/request) -----------------------

TRANSFER_MAX_SUBCASES = 1000
TRANSFER_DEFAULT_PROVIDER = "UBER"
TRANSFER_SETTLED_RUN_STATUSES = frozenset({"CANCELLED", "FAILED"})


def transfers_request(
    *,
    principal: Principal,
    case: Case,
    subcase_ids: list[uuid.UUID],
    group_ids: list[uuid.UUID],
    pickup: dict[str, Any],
    dropoff: dict[str, Any],
    pickup_at: dt.datetime | None,
    provider: str,
) -> tuple[str, list[dict[str, str]]]:
    """Request a ride for every named sub-case and every member of the named groups: one saga run per
    sub-case whose only step is ``transport.request_ride`` (the engine of :mod:`cases.saga`: exactly-once
    by the step URN, retries, circuit breaker, ``graph:step:*`` events, progress, retry and cancel).

    Returns ``(correlation_urn, [{transferUrn, subCaseUrn, sagaUrn}])``; a transfer's URN is its step's
    id as ``urn:nexa:transfer:…``. The same request for a sub-case again (same places, time and provider)
    returns its existing transfer unless that run was CANCELLED or FAILED. The values are typed and their
    shape already checked (``cases.api.transport.TransfersRequestSerializer``: the URNs' ids in the body's
    order, at least one of them, places ``{lat, lng, address?}``, a future ``pickup_at`` or ``None`` for
    now, a known provider); 400 names the URNs that are not of this case (``subCaseUrns[i]``,
    ``groupUrns[i]``); 409 ``subcase-not-compensable`` for a named sub-case that is
    CLOSED, CANCELLED or FAILED (such group members are skipped) and ``subcase-locked`` when another
    operator holds one; 503 ``downstream-unavailable`` (``failedDomain``) while the provider's circuit is
    open. One transaction; sub-case versions do not change.
    """

    now = timezone.now()
    errors: list[dict[str, str]] = []
    when = pickup_at.isoformat() if pickup_at is not None else None
    breaker = f"transport-{provider.lower()}"
    if breaker_for(breaker).current_state == "open":
        raise downstream_unavailable_problem(breaker)  # 503: accepting rides that can only wait hides the outage

    item = {
        "type": "TRANSPORT",
        "provider": provider,
        "pickup": pickup,
        "dropoff": dropoff,
        "pickupAt": when or now.astimezone(dt.UTC).isoformat(),
    }
    request_hash = compensation.payload_hash(
        version="transfer",
        items=[{**item, "pickupAt": when}],  # an omitted time ("now") is the same request when repeated
        reason="",
    )
    with transaction.atomic():
        case = _lock_case(principal=principal, case_id=case.pk)
        named = {
            s.id: s for s in SubCase.objects.filter(case_id=case.pk, airline=principal.airline, id__in=subcase_ids)
        }
        errors += [
            {"field": f"subCaseUrns[{index}]", "message": "is not a sub-case of this case"}
            for index, id_ in enumerate(subcase_ids)
            if id_ not in named
        ]
        groups = set(
            PassengerGroup.objects.filter(case_id=case.pk, airline=principal.airline, id__in=group_ids).values_list(
                "id", flat=True
            )
        )
        errors += [
            {"field": f"groupUrns[{index}]", "message": "is not a passenger group of this case"}
            for index, id_ in enumerate(group_ids)
            if id_ not in groups
        ]
        if errors:
            raise validation_problem(errors)
        closed = sorted(s.urn for s in named.values() if s.status in NOT_COMPENSABLE_STATUSES)
        if closed:
            raise conflict_problem(
                slug="subcase-not-compensable",
                title="A sub-case cannot get a transfer",
                detail=f"{', '.join(closed)} cannot get a transfer (CLOSED, CANCELLED or FAILED).",
                subCaseUrns=closed,
            )
        members = SubCase.objects.filter(case_id=case.pk, group_id__in=groups).exclude(
            status__in=NOT_COMPENSABLE_STATUSES
        )
        targets = sorted({**named, **{s.id: s for s in members}}.values(), key=lambda s: (s.created_at, s.id))
        if len(targets) > TRANSFER_MAX_SUBCASES:
            raise validation_problem(
                [{"field": "subCaseUrns", "message": f"at most {TRANSFER_MAX_SUBCASES} sub-cases per request"}]
            )
        for sub_case in targets:
            _guard_subcase_write(principal=principal, sub_case=sub_case, fencing_token=None)

        existing: dict = {}
        previous: dict = {}
        for run in (
            SagaRun.objects.filter(sub_case__in=[s.id for s in targets], payload__transferRequest=request_hash)
            .prefetch_related("steps")
            .order_by("created_at")
        ):
            previous[run.sub_case_id] = previous.get(run.sub_case_id, 0) + 1
            if run.status not in TRANSFER_SETTLED_RUN_STATUSES:
                existing[run.sub_case_id] = run
        fresh = [s for s in targets if s.id not in existing]
        correlation_urn = (
            (current_correlation_urn() or new_urn("correlation"))
            if fresh
            else next(iter(existing.values())).correlation_urn
        )
        runs = SagaRun.objects.bulk_create(
            SagaRun(
                airline=principal.airline,
                case=case,
                sub_case=sub_case,
                payload={"kind": "TRANSFER", "transferRequest": request_hash, "items": [item], "reason": ""},
                payload_hash=compensation.payload_hash(
                    version=previous.get(sub_case.id, 0), items=request_hash, reason="transfer"
                ),
                correlation_urn=correlation_urn,
                requested_by=principal.operator_urn,
            )
            for sub_case in fresh
        )
        steps = SagaStep.objects.bulk_create(
            SagaStep(
                run=run,
                airline=run.airline,
                position=0,
                name=saga.STEP_NAMES["TRANSPORT"],
                kind="TRANSPORT",
                item=item,
            )
            for run in runs
        )
        created = {run.sub_case_id: (run, step) for run, step in zip(runs, steps, strict=True)}
        transfers = []
        for sub_case in targets:
            if sub_case.id in created:
                run, step = created[sub_case.id]
            else:
                run = existing[sub_case.id]
                step = next(s for s in run.steps.all() if s.kind == "TRANSPORT")
            transfers.append(
                {
                    "transferUrn": format_urn("transfer", step.id),
                    "subCaseUrn": sub_case.urn,
                    "sagaUrn": run.urn,
                }
            )
        new_urns = {run.urn for run in runs}
        if runs:
            audit.record(
                principal=principal,
                action="transport.transfers_requested",
                entity_urn=case.urn,
                case_urn=case.urn,
                after={
                    "provider": provider,
                    "pickupAt": item["pickupAt"],
                    "transfers": [t for t in transfers if t["sagaUrn"] in new_urns],
                },
            )
        for run in runs:
            run.case = case
            saga.publish_requested(run)
    return correlation_urn, transfers
