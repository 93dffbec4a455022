"""Roles and their inheritance (spec 000 § Roles; ARCHITECTURE §3.2).

ADMIN ⊃ OPS_SUPERVISOR ⊃ AIRPORT_OPERATOR; ADMIN also holds FINANCE_AUDIT, which otherwise
stands apart (read-only). Routes declare their minimum with :func:`MinRole` / :func:`AnyOf`.
"""

import enum

from rest_framework.exceptions import NotAuthenticated, PermissionDenied
from rest_framework.permissions import BasePermission


class Role(enum.StrEnum):
    ADMIN = "ADMIN"
    OPS_SUPERVISOR = "OPS_SUPERVISOR"
    AIRPORT_OPERATOR = "AIRPORT_OPERATOR"
    FINANCE_AUDIT = "FINANCE_AUDIT"


# Every role a holder of the key role may act as (itself included).
_INCLUDES: dict[Role, frozenset[Role]] = {
    Role.ADMIN: frozenset({Role.ADMIN, Role.OPS_SUPERVISOR, Role.AIRPORT_OPERATOR, Role.FINANCE_AUDIT}),
    Role.OPS_SUPERVISOR: frozenset({Role.OPS_SUPERVISOR, Role.AIRPORT_OPERATOR}),
    Role.AIRPORT_OPERATOR: frozenset({Role.AIRPORT_OPERATOR}),
    Role.FINANCE_AUDIT: frozenset({Role.FINANCE_AUDIT}),
}


def role_satisfies(held: Role, required: Role) -> bool:
    return required in _INCLUDES[held]


class _RolePermission(BasePermission):
    required: tuple[Role, ...] = ()

    def has_permission(self, request, view) -> bool:
        principal = getattr(request, "auth", None)
        if principal is None or not hasattr(principal, "role"):
            raise NotAuthenticated("A bearer token is required.")
        if any(role_satisfies(principal.role, required) for required in self.required):
            return True
        raise PermissionDenied(f"This route needs {self.describe()}; your role is {principal.role}.")

    @classmethod
    def describe(cls) -> str:
        return " or ".join(f"{role}+" if role is not Role.FINANCE_AUDIT else str(role) for role in cls.required)


def MinRole(role: Role) -> type[BasePermission]:  # noqa: N802 - reads as a declaration on the view
    """The role or anything that inherits from it (spec 000's ``ROLE+``)."""
    return type(f"MinRole_{role}", (_RolePermission,), {"required": (role,)})


def AnyOf(*roles: Role) -> type[BasePermission]:  # noqa: N802
    """Any of these roles (each with its inheritors), e.g. ``AnyOf(FINANCE_AUDIT, OPS_SUPERVISOR)``."""
    return type("AnyOf_" + "_".join(roles), (_RolePermission,), {"required": tuple(roles)})
