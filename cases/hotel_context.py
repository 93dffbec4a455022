"""The case lookup ``booking``'s hotel search uses for ``caseUrn`` (booking must not import cases:
ARCHITECTURE §2), registered at app ready (cases/apps.py)."""

from booking.services import CaseContext, register_case_context_lookup
from cases.selectors import case_get
from nexa.platform.auth import Principal


def case_hotel_context(*, principal: Principal, case_urn: str) -> CaseContext:
    """The case's airport and cause; a 404 problem for another airline's case, a 400 for a malformed URN."""
    case = case_get(principal=principal, case_urn=case_urn)
    return CaseContext(case_urn=case.urn, airport=case.airport, cause=case.cause)


def register() -> None:
    register_case_context_lookup(case_hotel_context)
