"""Commands of the operators domain: entity locks (leases with fencing tokens), operator sessions,
operator administration and tokens.

One module per use case; callers import this package (``from operators import services``), which
re-exports every public name:

- :mod:`.locks` — acquire, release, force-release, renew and expire sub-case locks (docs/locks.md);
- :mod:`.sessions` — one session per live Socket.IO connection; the last one closing frees the locks;
- :mod:`.operator_admin` — deactivate, reactivate and change the role of an airline's operators;
- :mod:`.tokens` — logout;
- :mod:`._common` — constants, problems and the steps that announce freed leases.

``SWEEP_BATCH`` may be set on this package (ops, tests): it is passed on to :mod:`._common`, where both
sweeps read it at call time.
"""

import sys
import types

from operators.services import _common
from operators.services._common import (
    LOCKS,
    OPERATORS,
    REASON_MAX_LENGTH,
    SESSIONS,
    SWEEP_BATCH,
    SYSTEM_LOCK_SWEEP,
    SYSTEM_SESSION_SWEEP,
    lease_seconds,
    logger,
    operator_deactivated_problem,
    remaining_seconds,
    stale_fencing_token_problem,
    subcase_locked_problem,
)
from operators.services.locks import (
    LockGrant,
    lock_leases_expire_sweep,
    operator_locks_release_all,
    operator_locks_renew,
    subcase_force_unlock,
    subcase_lock,
    subcase_unlock,
)
from operators.services.operator_admin import (
    OperatorDeactivation,
    operator_deactivate,
    operator_reactivate,
    operator_role_change,
)
from operators.services.sessions import (
    operator_session_close,
    operator_session_open,
    operator_sessions_stale_sweep,
    operator_sessions_touch,
)
from operators.services.tokens import token_logout


class _ServicesPackage(types.ModuleType):
    """Setting ``SWEEP_BATCH`` on ``operators.services`` sets it where the sweeps read it."""

    def __setattr__(self, name: str, value) -> None:
        if name == "SWEEP_BATCH":
            _common.SWEEP_BATCH = value
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _ServicesPackage

__all__ = [
    "LOCKS",
    "OPERATORS",
    "REASON_MAX_LENGTH",
    "SESSIONS",
    "SWEEP_BATCH",
    "SYSTEM_LOCK_SWEEP",
    "SYSTEM_SESSION_SWEEP",
    "LockGrant",
    "OperatorDeactivation",
    "lease_seconds",
    "lock_leases_expire_sweep",
    "logger",
    "operator_deactivate",
    "operator_deactivated_problem",
    "operator_locks_release_all",
    "operator_locks_renew",
    "operator_reactivate",
    "operator_role_change",
    "operator_session_close",
    "operator_session_open",
    "operator_sessions_stale_sweep",
    "operator_sessions_touch",
    "remaining_seconds",
    "stale_fencing_token_problem",
    "subcase_force_unlock",
    "subcase_lock",
    "subcase_locked_problem",
    "subcase_unlock",
    "token_logout",
]
