"""The compensation saga engine (ARCHITECTURE §6, docs/compensation.md): plan, step execution,
compensation. The modules: ``kinds`` (one :class:`StepKind` per kind of step — what differs between
kinds), ``engine`` (driving a run), ``transitions`` (the one function that changes a step's status),
``resolution`` (steps in doubt), ``undo`` (compensation), ``leases``, ``planning``, ``recovery``,
``common`` (events, tunables, audit, the review hook). Callers import from here."""

from cases.saga import hotel  # noqa: F401 - registers the hotel step kinds
from cases.saga.common import (
    SAGA_CANCELLED,
    SAGA_COMPLETED,
    SAGA_FAILED,
    SAGA_REQUESTED,
    STEP_CHANGED,
    STEP_COMPLETED,
    STEP_PROGRESS,
    STEP_STARTED,
    SYSTEM_SAGA_ACTOR,
    backoff_seconds,
    heartbeat_seconds,
    lease_seconds,
    max_attempts,
    review_hook_register,
    subcases_hook_register,
    system_principal,
    unavailable_max_attempts,
    unavailable_wait_seconds,
)
from cases.saga.engine import execute
from cases.saga.kinds import NOTIFY_TEMPLATE, STEP_NAMES, StepKind, kind_of, register, unregister
from cases.saga.leases import LeaseLost, _claim, _hold, _release, _renew
from cases.saga.planning import create_steps, plan, publish_requested
from cases.saga.recovery import resume_stalled, stalled_run_ids, subcase_for_run
from cases.saga.transitions import step_status_set
from cases.saga.undo import run_sub_case_ids

__all__ = [
    "NOTIFY_TEMPLATE",
    "SAGA_CANCELLED",
    "SAGA_COMPLETED",
    "SAGA_FAILED",
    "SAGA_REQUESTED",
    "STEP_CHANGED",
    "STEP_COMPLETED",
    "STEP_NAMES",
    "STEP_PROGRESS",
    "STEP_STARTED",
    "SYSTEM_SAGA_ACTOR",
    "LeaseLost",
    "StepKind",
    "_claim",
    "_hold",
    "_release",
    "_renew",
    "backoff_seconds",
    "create_steps",
    "execute",
    "heartbeat_seconds",
    "kind_of",
    "lease_seconds",
    "max_attempts",
    "plan",
    "publish_requested",
    "register",
    "resume_stalled",
    "review_hook_register",
    "run_sub_case_ids",
    "stalled_run_ids",
    "step_status_set",
    "subcase_for_run",
    "subcases_hook_register",
    "system_principal",
    "unavailable_max_attempts",
    "unavailable_wait_seconds",
    "unregister",
]
