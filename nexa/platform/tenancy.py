"""Tenant scoping (ARCHITECTURE §3.3).

Every tenant-owned row has an ``airline`` column (IATA code). Selectors scope with
:func:`for_principal`; callers never pass a tenant. Another airline's row is simply not found,
so the API answers 404, never 403 (no existence leak).
"""

from django.db.models import Model, QuerySet

from nexa.platform.auth import Principal
from nexa.platform.problems import not_found_problem


def for_principal(queryset: QuerySet, principal: Principal, *, field: str = "airline") -> QuerySet:
    return queryset.filter(**{field: principal.airline})


def get_for_principal[M: Model](queryset: QuerySet[M], principal: Principal, *, field: str = "airline", **lookup) -> M:
    """The one row matching ``lookup`` in the principal's airline, else a 404 problem."""
    try:
        return for_principal(queryset, principal, field=field).get(**lookup)
    except queryset.model.DoesNotExist:
        raise not_found_problem() from None
