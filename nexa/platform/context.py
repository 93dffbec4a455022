"""Per-request (or per-task) context: correlation URN, airline, operator.

Kept in contextvars so services, audit rows, outbox rows and log lines pick them up without
threading them through every call.
"""

import contextvars
from contextlib import contextmanager

import structlog

correlation_urn_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("correlation_urn", default=None)


def current_correlation_urn() -> str | None:
    return correlation_urn_var.get()


@contextmanager
def bound_context(*, correlation_urn: str | None = None, **log_fields):
    """Bind a correlation URN (and extra log fields) for the duration of a block."""
    token = correlation_urn_var.set(correlation_urn) if correlation_urn else None
    fields = dict(log_fields)
    if correlation_urn:
        fields["correlation_urn"] = correlation_urn
    with structlog.contextvars.bound_contextvars(**fields):
        try:
            yield
        finally:
            if token is not None:
                correlation_urn_var.reset(token)
