"""The seam for entity locks: guards asked before any sub-case write.

``operators`` registers its lock guard here from its ``AppConfig.ready``, so ``cases`` never imports
``operators`` (ARCHITECTURE §2: a lower layer learns of a higher one only through a registered hook)."""

from typing import Protocol

from cases.models import SubCase
from nexa.platform.auth import Principal


class SubCaseWriteGuard(Protocol):
    """Asked before any sub-case changes, inside the writing transaction, with the case row locked.

    Raise a :class:`~nexa.platform.problems.Problem` to refuse the write — e.g. 409 with
    ``lockedBy``/``expiresInSeconds`` when another operator holds the sub-case's lock, or when
    ``fencing_token`` is older than the lock's current token. ``fencing_token`` is what the caller
    presented (``None`` when it presented none, e.g. automatic grouping).
    """

    def __call__(self, *, principal: Principal, sub_case: SubCase, fencing_token: int | None) -> None: ...


_subcase_write_guards: list[SubCaseWriteGuard] = []


def subcase_write_guard_register(guard: SubCaseWriteGuard) -> SubCaseWriteGuard:
    """Install a guard (the entity-lock module calls this from its ``AppConfig.ready``). Idempotent."""
    if guard not in _subcase_write_guards:
        _subcase_write_guards.append(guard)
    return guard


def subcase_write_guard_unregister(guard: SubCaseWriteGuard) -> None:
    if guard in _subcase_write_guards:
        _subcase_write_guards.remove(guard)


def _guard_subcase_write(*, principal: Principal, sub_case: SubCase, fencing_token: int | None) -> None:
    for guard in tuple(_subcase_write_guards):
        guard(principal=principal, sub_case=sub_case, fencing_token=fencing_token)
