"""The case context for policy resolution: ``policies`` sits below ``cases`` and may not import it, so
``cases`` registers this lookup with ``policies.selectors`` at app ready (``GET /v1/policies/resolve?caseUrn=``)."""

from cases.models import Case
from nexa.platform.auth import Principal
from nexa.platform.urns import InvalidUrn, parse_urn
from policies.selectors import CaseContext


def case_policy_context(*, principal: Principal, case_urn: str) -> CaseContext | None:
    """The case's airport and cause, or None when it is not a case of the principal's airline."""
    try:
        urn = parse_urn(case_urn, "case")
    except InvalidUrn:
        return None
    row = Case.objects.filter(id=urn.id, airline=principal.airline).values_list("airport", "cause").first()
    return CaseContext(airport=row[0], cause=row[1]) if row else None
