"""Compensation sagas: accepting a compensation request (the saga run and its steps), retrying a
failed run and cancelling one. The engine that executes them is :mod:`cases.saga`; the request's
validation, limits and settlement are :mod:`cases.compensation`."""

import dataclasses
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import F
from django.db.models.functions import Now
from django.utils import timezone

from audit import services as audit
from cases import compensation, events, saga
from cases.models import Case, SagaRun, SagaRunStatus, SagaStepStatus, SubCase, SubCaseStatus
from cases.services._common import _version_conflict
from cases.services.booking import hotel_items_resolve
from cases.services.guards import _guard_subcase_write
from nexa.platform.auth import Principal
from nexa.platform.context import current_correlation_urn
from nexa.platform.problems import Problem, conflict_problem, not_found_problem
from nexa.platform.urns import format_urn, new_urn, parse_urn

# --- compensation sagas -----------------------------------------------------------------------------

NOT_COMPENSABLE_STATUSES = frozenset({SubCaseStatus.CLOSED, SubCaseStatus.CANCELLED, SubCaseStatus.FAILED})
RETRYABLE_RUN_STATUSES = frozenset({"FAILED"})
CANCELLABLE_RUN_STATUSES = frozenset({"PENDING", "RUNNING", "COMPLETED"})


_COMPENSATE_LOCK_SQL = f"""
SELECT s.case_id, s.status, s.version
  FROM {SubCase._meta.db_table} s
 WHERE s.id = %s AND s.airline = %s
   AND EXISTS (SELECT 1 FROM {Case._meta.db_table} c WHERE c.id = s.case_id FOR KEY SHARE)
   FOR NO KEY UPDATE OF s
"""  # noqa: S608 (table names from the models)


def subcase_compensate(
    *,
    principal: Principal,
    sub_case_urn: str,
    expected_version: int,
    items: Any,
    reason: Any,
    fencing_token: int | None = None,
):
    """Accept a compensation request: validate it, check the version (OCC) and the write guards (entity
    locks, fencing token), and in ONE transaction bump the sub-case's version, create the saga run and
    its steps and write the outbox rows (``subcase:state-changed``, ``saga:requested``) that make a worker
    execute it.

    Returns ``(run, created)``. The same request again (same body, same version: same payload hash)
    returns the existing run with ``created=False`` and changes nothing. Invalid items are a 400/422
    problem (:mod:`cases.compensation`); an unknown sub-case (or another airline's) a 404; a stale
    version a 409 with the current ``version``.

    Concurrency: this is the hot path of a disruption (every passenger of a flight at once), so unlike
    the other commands it does not lock the case row ``FOR UPDATE`` — that would serialise a whole
    flight's compensations. It locks only the sub-case row (``FOR NO KEY UPDATE``: its status does not
    change, so the derived case status cannot either) after taking the case row ``FOR KEY SHARE``, the
    lock the run's foreign key to the case needs anyway: taking it first keeps the lock order
    case → sub-case of every other command, so the two cannot deadlock.
    """

    sub_case_id = parse_urn(sub_case_urn, "subcase").id  # malformed: 400 (nexa.platform.problems)
    request = compensation.validate_request(airline=principal.airline, items=items, reason=reason, now=timezone.now())
    # A HOTEL item becomes the hotel steps' item (its offers found now: a search is a provider call).
    request = dataclasses.replace(
        request, items=hotel_items_resolve(airline=principal.airline, sub_case_id=sub_case_id, items=request.items)
    )
    digest = compensation.payload_hash(version=expected_version, items=items, reason=reason)
    limits = compensation.limits_for(principal.airline)
    with transaction.atomic():
        with transaction.get_connection().cursor() as cursor:
            cursor.execute(_COMPENSATE_LOCK_SQL, [sub_case_id, principal.airline])
            row = cursor.fetchone()
        if row is None:
            raise not_found_problem()
        case_id, status, version = row
        current = SubCase(id=sub_case_id, case_id=case_id, airline=principal.airline, status=status, version=version)
        existing = SagaRun.objects.filter(sub_case_id=sub_case_id, payload_hash=digest).first()
        if existing is not None:
            return existing, False
        compensation.refuse_while_circuit_open(request)
        if version != expected_version:
            raise _version_conflict(
                sub_case_urn=current.urn, current_version=version, expected_version=expected_version
            )
        if status in NOT_COMPENSABLE_STATUSES:
            raise conflict_problem(
                slug="subcase-not-compensable",
                title="The sub-case cannot be compensated",
                detail=f"{current.urn} is {status}; compensation needs an open sub-case.",
                currentStatus=status,
                version=version,
            )
        _guard_subcase_write(principal=principal, sub_case=current, fencing_token=fencing_token)
        # Limits per passenger per disruption over every run, summed under this row lock: a concurrent
        # compensation (or retry) of the same passenger waits for it and then sees this run's steps.
        settlement = compensation.settle(request, limits)
        compensation.check_limits(
            limits=limits, granted=compensation.granted_for(sub_case_id), adding=settlement.totals
        )
        SubCase.objects.filter(pk=sub_case_id).update(version=F("version") + 1, updated_at=Now())
        current.version = expected_version + 1
        run = SagaRun.objects.create(
            airline=principal.airline,
            case_id=case_id,
            sub_case_id=sub_case_id,
            payload=request.as_payload(),
            payload_hash=digest,
            correlation_urn=current_correlation_urn() or new_urn("correlation"),
            requested_by=principal.operator_urn,
            reason=request.reason,
            fx=settlement.fx,
        )
        steps = saga.create_steps(run, request.items, settled=settlement.amounts)
        case_urn = format_urn("case", case_id)
        audit.record(
            principal=principal,
            action="subcase.compensation_requested",
            entity_urn=current.urn,
            case_urn=case_urn,
            reason=request.reason,
            before={"version": expected_version},
            after={
                "version": current.version,
                "sagaUrn": run.urn,
                "items": [
                    {k: item[k] for k in ("type", "amount", "currency", "provider", "regulation") if k in item}
                    for item in request.items
                ],
                "steps": [step.name for step in steps],
            },
        )
        events.publish_subcase_state_changed(
            sub_case_urn=current.urn,
            case_urn=case_urn,
            airline=principal.airline,
            status=status,
            version=current.version,
        )
        saga.publish_requested(run)
    return run, True


def _run_state_conflict(run, action: str, allowed: frozenset[str]) -> Problem:
    return conflict_problem(
        slug="saga-run-state",
        title=f"The saga run cannot be {action} in its current status",
        detail=f"{run.urn} is {run.status}; {action} needs one of {', '.join(sorted(allowed))}.",
        currentStatus=run.status,
    )


def _lock_run(*, principal: Principal, run):
    try:
        return (
            SagaRun.objects.select_for_update(of=("self",))  # only the run: the sub-case is locked after it
            .select_related("case", "sub_case")
            .get(pk=run.pk, airline=principal.airline)
        )
    except SagaRun.DoesNotExist:
        raise not_found_problem() from None


def saga_run_retry(*, principal: Principal, run, reason: str = ""):
    """Retry a FAILED run from its failed step: every step that is not COMPLETED runs again — the
    failed one and those compensated when it failed — each under a fresh idempotency key (its URN
    plus ``/retry-<n>``), so the provider makes a new effect instead of replaying the refusal or the
    voided card. A step whose outcome is unknown (``outcome_unknown``: timeout, 5xx, crash) keeps its
    original key: the worker resolves it with the provider first (cases.saga). 409 unless the run is
    FAILED, or when a compensation failed (a human must resolve it)."""

    limits = compensation.limits_for(principal.airline)
    with transaction.atomic():
        run = _lock_run(principal=principal, run=run)
        if run.status not in RETRYABLE_RUN_STATUSES:
            raise _run_state_conflict(run, "retried", RETRYABLE_RUN_STATUSES)
        if run.steps.filter(status=SagaStepStatus.COMPENSATION_FAILED).exists():
            raise conflict_problem(
                slug="saga-run-compensation-failed",
                title="A compensation of this run failed",
                detail=f"{run.urn} has a step whose compensation failed; resolve it manually before retrying.",
                currentStatus=run.status,
            )
        before = {"status": run.status, "category": run.failure_category, "retries": run.retries}
        # A retry grants again what the failure undid: it counts against the passenger's limits, checked
        # under the sub-case's row lock like a new compensation (lock order: run, then sub-case).
        SubCase.objects.select_for_update(no_key=True).filter(pk=run.sub_case_id).values_list("pk").first()
        steps = list(run.steps.exclude(status=SagaStepStatus.COMPLETED))
        regranted: dict[str, Decimal] = {}
        for step in steps:
            released = step.status in (SagaStepStatus.COMPENSATED, SagaStepStatus.SKIPPED) or (
                step.status == SagaStepStatus.FAILED and not step.outcome_unknown
            )
            if released and step.settled_amount is not None:
                regranted[step.kind] = regranted.get(step.kind, Decimal("0")) + step.settled_amount
        compensation.check_limits(limits=limits, granted=compensation.granted_for(run.sub_case_id), adding=regranted)
        for step in steps:
            # A step in doubt keeps its key: the worker first asks the provider what became of it, and
            # only a step the provider confirms it never executed gets a new key (cases.saga).
            if not step.outcome_unknown and (step.status != SagaStepStatus.SKIPPED or step.attempts):
                step.generation += 1
            step.status = SagaStepStatus.PENDING
            step.attempts = 0
            step.result = step.error = step.compensation = None
            step.started_at = step.completed_at = step.compensated_at = step.next_attempt_at = None
            step.save()
        run.status = SagaRunStatus.PENDING
        run.failure_category, run.failure, run.finished_at = "", None, None
        run.retries += 1
        run.save(update_fields=["status", "failure_category", "failure", "finished_at", "retries", "updated_at"])
        audit.record(
            principal=principal,
            action="saga.retried",
            entity_urn=run.urn,
            case_urn=run.case.urn,
            reason=reason,
            before=before,
            after={"status": run.status, "retries": run.retries},
        )
        saga.publish_requested(run)
    return run


def saga_run_cancel(*, principal: Principal, run, reason: str = ""):
    """Cancel a run: it becomes CANCELLING and the worker undoes what was done (completed steps in
    reverse), then CANCELLED. 409 unless PENDING, RUNNING or COMPLETED."""

    with transaction.atomic():
        run = _lock_run(principal=principal, run=run)
        if run.status not in CANCELLABLE_RUN_STATUSES:
            raise _run_state_conflict(run, "cancelled", CANCELLABLE_RUN_STATUSES)
        before = run.status
        run.status = SagaRunStatus.CANCELLING
        run.save(update_fields=["status", "updated_at"])
        audit.record(
            principal=principal,
            action="saga.cancel_requested",
            entity_urn=run.urn,
            case_urn=run.case.urn,
            reason=reason,
            before={"status": before},
            after={"status": run.status},
        )
        saga.publish_requested(run)
    return run
