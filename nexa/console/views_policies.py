"""The policies screen: the airline's ACTIVE policies by scope (``GET /v1/policies/active``'s selector), the
resolve preview (``GET /v1/policies/resolve``: its query serializer, :func:`policies.selectors.policy_resolve`
and the same ``why`` the API returns, from :func:`policies.api.serializers.resolution_data`), and activating a
DRAFT (``POST /v1/policies/{urn}/activate``'s service; ADMIN, as that route). Reading is AIRPORT_OPERATOR+."""

import json
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from nexa.console.views import _render, console_view
from nexa.platform.auth import Principal
from nexa.platform.problems import validation_problem
from nexa.platform.roles import Role
from policies import selectors, services
from policies.api.serializers import PolicyResolveQuerySerializer, resolution_data
from policies.models import Cause, PolicyStatus, Tier
from policies.selectors import specificity, specificity_label

REASON_MAX_LENGTH = 1000  # PolicyTransitionSerializer's reason


def rule_rows(rules: dict[str, Any]) -> list[tuple[str, str]]:
    """A policy's rules as the screen lists them: nested values (money, occupancy) as compact JSON."""
    return [
        (name, value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True))
        for name, value in sorted(rules.items())
    ]


def _row(policy) -> dict[str, Any]:
    return {"policy": policy, "specificity": specificity_label(policy.scope), "rules": rule_rows(policy.rules)}


def _policies_context(principal: Principal) -> dict[str, Any]:
    active = sorted(
        selectors.policies_active(principal=principal).order_by("created_at", "id"),
        key=lambda policy: -specificity(policy.scope),  # most specific scope first, as the resolver ranks them
    )
    drafts = selectors.policies_list(principal=principal, status=PolicyStatus.DRAFT).order_by("created_at", "id")
    return {
        "active": [_row(policy) for policy in active],
        "drafts": [_row(policy) for policy in drafts],
        "tiers": Tier.values,
        "causes": Cause.values,
    }


@require_GET
@console_view()
def policies(request: HttpRequest, principal: Principal) -> HttpResponse:
    context = _policies_context(principal)
    context["query"] = {name: request.GET.get(name, "") for name in ("airport", "tier", "cause", "caseUrn")}
    return _render(request, "console/policies.html", context)


@require_GET
@console_view()
def policy_resolve(request: HttpRequest, principal: Principal) -> HttpResponse:
    """Which policy applies to this context, and why: the API route's serializer, selector and explanation."""
    query = PolicyResolveQuerySerializer(query=request.GET)
    if not query.is_valid():
        raise validation_problem(
            [{"field": name, "message": str(messages[0])} for name, messages in query.errors.items()]
        )
    data = query.validated_data
    resolution = selectors.policy_resolve(
        principal=principal,
        airport=data.get("airport"),
        tier=data.get("tier"),
        cause=data.get("cause"),
        case_urn=data.get("caseUrn"),
    )
    context = {"resolution": resolution_data(resolution), "rules": rule_rows(resolution.effective_rules)}
    return _render(request, "console/_policy_resolution.html", context)


@require_POST
@console_view(min_role=Role.ADMIN)
def policy_activate(request: HttpRequest, principal: Principal, policy_urn: str) -> HttpResponse:
    """DRAFT → ACTIVE (the ACTIVE policy of the same scope is archived), audited by the service."""
    policy = selectors.policy_get(principal=principal, policy_urn=policy_urn)
    policy = services.policy_activate(
        principal=principal, policy=policy, reason=request.POST.get("reason", "")[:REASON_MAX_LENGTH]
    )
    context = _policies_context(principal)
    context["note"] = _("%(name)s (version %(version)s) is now active.") % {
        "name": policy.name,
        "version": policy.version,
    }
    return _render(request, "console/_policy_lists.html", context)
