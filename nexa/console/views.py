"""The console's screens: parse → call the same selector or service the API route calls → render.

Who the caller is: the signed-in Django user's **active** operator profile, resolved by the resolver the
operators app registers for Django admin (:func:`nexa.platform.admin.admin_actor`), turned into the same
:class:`~nexa.platform.auth.Principal` a bearer token gives the API. Every screen declares the role its
API route declares; the selectors do the tenancy (another airline's case is a 404, as in the API).
A :class:`~nexa.platform.problems.Problem` raised by a service is rendered as a readable message with the
correlation URN to quote, never as a stack trace.
"""

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib.auth import logout
from django.contrib.auth.views import LoginView, redirect_to_login
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST
from rest_framework import serializers

from cases import selectors as case_selectors
from cases import services as case_services
from cases.api.demand import DemandRequestSerializer
from cases.models import DemandKind, SubCaseStatus, Tier
from nexa.console.models import ConsolePreference
from nexa.platform.admin import admin_actor
from nexa.platform.auth import Principal, dev_issuer_enabled, issue_token
from nexa.platform.context import current_correlation_urn
from nexa.platform.problems import Problem, _flatten_validation_errors, not_found_problem, validation_problem
from nexa.platform.roles import Role, role_satisfies
from nexa.platform.urns import InvalidUrn
from operators import selectors as operator_selectors
from operators import services as operator_services
from review import selectors as review_selectors
from review.models import ReviewCategory, ReviewPriority

# The presence channel's token lives this long; the page asks for a fresh one at every (re)connect.
SOCKET_TOKEN_TTL_SECONDS = 300
MANIFEST_ROW_CAP = 2000
REVIEW_QUEUE_CAP = 500
OPEN_CASE_STATUSES = ("OPEN", "IN_PROGRESS", "PARTIALLY_FULFILLED")
REVIEW_PRIORITY_ORDER = ("HIGH", "MEDIUM", "LOW")


def console_principal(request: HttpRequest) -> Principal | None:
    """The principal of the signed-in user's active operator, or None (no operator, or deactivated)."""
    actor = admin_actor(request)
    if actor is None:
        return None
    return Principal(
        airline=actor.airline,
        role=actor.role,
        operator_urn=actor.operator_urn,
        subject=f"console:{request.user.get_username()}",
    )


def operator_language(user) -> str:
    language = ConsolePreference.objects.filter(user=user).values_list("language", flat=True).first()
    return language or settings.LANGUAGE_CODE.split("-")[0]


def _can(principal: Principal) -> dict[str, bool]:
    """What the templates may offer: a button shows only when the API would allow its route."""
    role = principal.role
    return {
        "work_cases": role_satisfies(role, Role.AIRPORT_OPERATOR),
        "supervise": role_satisfies(role, Role.OPS_SUPERVISOR),
        # The audit routes' AUDIT_READERS: FINANCE_AUDIT or OPS_SUPERVISOR+; policy activation is ADMIN.
        "read_audit": role_satisfies(role, Role.FINANCE_AUDIT) or role_satisfies(role, Role.OPS_SUPERVISOR),
        "administer": role_satisfies(role, Role.ADMIN),
    }


def _render(request: HttpRequest, template: str, context: dict[str, Any], status: int = 200) -> HttpResponse:
    principal = getattr(request, "principal", None)
    base = {"principal": principal, "can": _can(principal) if principal else {}, "languages": settings.LANGUAGES}
    return render(request, template, {**base, **context}, status=status)


def problem_response(request: HttpRequest, problem: Problem) -> HttpResponse:
    """A service's refusal as the console shows it: title, detail, who holds a lock, the current version, and
    the correlation URN to quote. htmx swaps 4xx answers in too (``htmx:beforeSwap`` in console.js)."""
    extensions = problem.extensions or {}
    locked_by = extensions.get("lockedBy")
    principal = getattr(request, "principal", None)
    names = _operator_names(principal) if locked_by and principal else {}
    context = {
        "problem": problem,
        "detail": problem.detail_text,
        "locked_by": locked_by,
        "locked_by_name": names.get(locked_by, locked_by),
        "version": extensions.get("version"),
        "errors": extensions.get("errors") or [],
        "correlation": current_correlation_urn(),
        "reload": problem.status_code == 409,
    }
    # htmx swaps the message where the action was; a page (a link followed, a form without JS) gets it whole.
    template = "console/_problem.html" if request.headers.get("HX-Request") else "console/problem_page.html"
    return _render(request, template, context, status=problem.status_code)


def console_view(min_role: Role | None = Role.AIRPORT_OPERATOR) -> Callable:
    """Signed in, with an active operator whose role meets ``min_role`` (None: any role), in the operator's
    language; a service's Problem becomes :func:`problem_response`."""

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path(), reverse("console:signin"))
            principal = console_principal(request)
            with translation.override(operator_language(request.user)):
                if principal is None:
                    return _render(request, "console/no_operator.html", {}, status=403)
                request.principal = principal
                if min_role is not None and not role_satisfies(principal.role, min_role):
                    return problem_response(
                        request,
                        Problem(
                            status=403,
                            slug="forbidden",
                            title=_("Not allowed for your role"),
                            detail=_("This screen needs %(needed)s; your role is %(role)s.")
                            % {"needed": min_role.value, "role": principal.role.value},
                        ),
                    )
                try:
                    return view(request, principal, *args, **kwargs)
                except Problem as problem:
                    return problem_response(request, problem)
                except InvalidUrn:  # a URL edited by hand: nothing of that name (the API says 400 for a bad URN)
                    return problem_response(request, not_found_problem())
                except serializers.ValidationError as error:  # a form checked by the API's serializer
                    return problem_response(request, validation_problem(_flatten_validation_errors(error.detail)))

        return wrapped

    return decorate


# --- sign-in ---------------------------------------------------------------------------------------------


class SignInView(LoginView):
    """Django's login form (username, password) in development; the provider's button when one is configured
    (mozilla-django-oidc's authorization-code flow at /oidc/authenticate/)."""

    template_name = "console/signin.html"
    redirect_authenticated_user = True

    def get_default_redirect_url(self):
        return reverse("console:dashboard")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["oidc_enabled"] = bool(settings.OIDC_RP_CLIENT_ID)
        context["languages"] = settings.LANGUAGES
        return context

    def dispatch(self, request, *args, **kwargs):
        language = translation.get_language_from_request(request)
        with translation.override(language):
            response = super().dispatch(request, *args, **kwargs)
            if hasattr(response, "render"):
                response.render()
            return response


@require_POST
def sign_out(request: HttpRequest) -> HttpResponse:
    logout(request)
    return redirect("console:signin")


@require_POST
@console_view(min_role=None)
def language_set(request: HttpRequest, principal: Principal) -> HttpResponse:
    language = request.POST.get("language", "")
    if language in dict(settings.LANGUAGES):
        ConsolePreference.objects.update_or_create(user=request.user, defaults={"language": language})
    target = request.POST.get("next") or reverse("console:dashboard")
    if not target.startswith("/"):
        target = reverse("console:dashboard")
    return redirect(target)


@require_GET
@console_view(min_role=None)
def socket_token(request: HttpRequest, principal: Principal) -> JsonResponse:
    """A short-lived bearer token for the presence channel's CONNECT (docs/decisions.md): minted for the
    signed-in operator by the development issuer (exactly what ``manage.py issue_token`` signs), or the
    provider's access token that mozilla-django-oidc stored in the session when a provider is configured."""
    if dev_issuer_enabled():
        token = issue_token(
            airline=principal.airline,
            role=principal.role,
            operator_urn=principal.operator_urn,
            ttl_seconds=SOCKET_TOKEN_TTL_SECONDS,
        )
    else:
        token = request.session.get("oidc_access_token", "")
    response = JsonResponse({"token": token})
    response["Cache-Control"] = "no-store"
    return response


# --- dashboard -------------------------------------------------------------------------------------------


def _open_cases(principal: Principal) -> list[dict[str, Any]]:
    cases = case_selectors.cases_list(principal=principal).filter(status__in=OPEN_CASE_STATUSES)
    rows = []
    for case in cases.order_by("created_at", "id")[:50]:
        counts = case_selectors.case_subcase_counts(principal=principal, case=case)
        rows.append(
            {"case": case, "counts": {status: n for status, n in counts.items() if n}, "total": sum(counts.values())}
        )
    return rows


def _review_by_priority(principal: Principal) -> list[dict[str, Any]]:
    items = review_selectors.review_items_list(principal=principal, unresolved_only=True).order_by("sla_due_at", "id")
    by_priority: dict[str, list] = {priority: [] for priority in REVIEW_PRIORITY_ORDER}
    for item in items[:200]:
        by_priority.setdefault(item.priority, []).append(item)
    return [{"priority": priority, "items": rows} for priority, rows in by_priority.items()]


def _operators(principal: Principal) -> QuerySet:
    return operator_selectors.operators_active(principal=principal).order_by("display_name", "id")


def _online(principal: Principal) -> list[dict[str, str]]:
    names = dict(_operators(principal).values_list("operator_urn", "display_name"))
    return [
        {"urn": urn, "name": names.get(urn, urn)} for urn in operator_selectors.operators_online(principal=principal)
    ]


def _dashboard_context(principal: Principal) -> dict[str, Any]:
    context: dict[str, Any] = {"now": timezone.now()}
    if role_satisfies(principal.role, Role.AIRPORT_OPERATOR):
        context["open_cases"] = _open_cases(principal)
        context["online"] = _online(principal)
    if role_satisfies(principal.role, Role.OPS_SUPERVISOR):  # the review queue's routes are OPS_SUPERVISOR+
        context["review"] = _review_by_priority(principal)
    return context


@require_GET
@console_view(min_role=None)
def dashboard(request: HttpRequest, principal: Principal) -> HttpResponse:
    return _render(request, "console/dashboard.html", _dashboard_context(principal))


@require_GET
@console_view()
def dashboard_sections(request: HttpRequest, principal: Principal) -> HttpResponse:
    """The live part of the dashboard, re-fetched by the page on ``case:updated``."""
    return _render(request, "console/_dashboard_sections.html", _dashboard_context(principal))


# --- the case screen -------------------------------------------------------------------------------------


def _lock_holders(principal: Principal) -> dict[str, str]:
    """Sub-case URN → holder URN for every live lease of the airline (operators_list's ``locks_held``)."""
    holders = {}
    for operator_urn, locks in operator_selectors.operators_list(principal=principal).values_list(
        "operator_urn", "locks_held"
    ):
        for entity_urn in locks or ():
            holders[entity_urn] = operator_urn
    return holders


def _manifest(request: HttpRequest, principal: Principal, case) -> dict[str, Any]:
    status = request.GET.get("status") or None
    group = request.GET.get("group") or None
    tier = request.GET.get("tier") or None
    need = request.GET.get("need") or None
    if status is not None and status not in SubCaseStatus.values:
        status = None
    # The selector GET /v1/cases/{urn}/manifest uses (status, group); tier and needs narrow its queryset.
    sub_cases = case_selectors.case_manifest(principal=principal, case=case, status=status, group_urn=group)
    if tier in Tier.values:
        sub_cases = sub_cases.filter(tier=tier)
    if need:
        sub_cases = sub_cases.filter(special_needs__contains=[need])
    rows = list(sub_cases.select_related("group").order_by("created_at", "id")[:MANIFEST_ROW_CAP])
    return {
        "rows": rows,
        "holders": _lock_holders(principal),
        "filters": {"status": status or "", "group": group or "", "tier": tier or "", "need": need or ""},
    }


def _operator_names(principal: Principal) -> dict[str, str]:
    return dict(_operators(principal).values_list("operator_urn", "display_name"))


@require_GET
@console_view()
def case_detail(request: HttpRequest, principal: Principal, case_urn: str) -> HttpResponse:
    case = case_selectors.case_get(principal=principal, case_urn=case_urn)
    counts = case_selectors.case_subcase_counts(principal=principal, case=case)
    groups = case_selectors.case_groups(principal=principal, case=case)
    waves = _pending_waves(principal, case)
    context = {
        "case": case,
        "counts": {status: n for status, n in counts.items() if n},
        "groups": groups,
        "waves": waves,
        "demand_kinds": DemandKind.values,
        "today": timezone.now().date(),
        "statuses": SubCaseStatus.values,
        "tiers": Tier.values,
        "needs": sorted({need for row in case.subcases.values_list("special_needs", flat=True) for need in row}),
        "operator_names": _operator_names(principal),
        **_manifest(request, principal, case),
    }
    return _render(request, "console/case.html", context)


def _pending_waves(principal: Principal, case) -> list:
    """The selector of GET /v1/demand/pending/approvals, for this case: the waves waiting for a supervisor."""
    waves = case_selectors.demand_pending_approvals(principal=principal, now=timezone.now(), case_urn=case.urn)
    return list(waves.order_by("created_at", "id"))


@require_GET
@console_view()
def case_waves(request: HttpRequest, principal: Principal, case_urn: str) -> HttpResponse:
    """The pending waves, re-fetched by the case page on ``case:updated`` (a wave asked for or resolved)."""
    case = case_selectors.case_get(principal=principal, case_urn=case_urn)
    return _render(request, "console/_waves.html", {"case": case, "waves": _pending_waves(principal, case)})


@require_POST
@console_view()
def demand_request(request: HttpRequest, principal: Principal, case_urn: str) -> HttpResponse:
    """Ask for rooms for every grouped passenger of the case not yet in an open wave: the body of
    POST /v1/demand/case/{urn}, validated by that route's own serializer, then its service (AIRPORT_OPERATOR+)."""
    case = case_selectors.case_get(principal=principal, case_urn=case_urn)
    nights = request.POST.get("nights", "")
    body = DemandRequestSerializer(
        data={
            "kind": request.POST.get("kind", ""),
            "checkIn": request.POST.get("check_in", ""),
            "nights": int(nights) if nights.isdigit() else nights,
            "reason": request.POST.get("reason", ""),
        }
    )
    body.is_valid(raise_exception=True)
    case_services.demand_request(principal=principal, case=case, **body.validated_data)
    context = {"case": case, "waves": _pending_waves(principal, case), "note": _("Rooms asked for.")}
    return _render(request, "console/_waves.html", context)


@require_GET
@console_view()
def case_manifest(request: HttpRequest, principal: Principal, case_urn: str) -> HttpResponse:
    case = case_selectors.case_get(principal=principal, case_urn=case_urn)
    context = {"case": case, "operator_names": _operator_names(principal), **_manifest(request, principal, case)}
    return _render(request, "console/_manifest_rows.html", context)


def _editor(request: HttpRequest, principal: Principal, sub_case, fencing_token: int, note: str = "") -> HttpResponse:
    transitions = [t.name for t in sub_case.get_available_status_transitions()]
    context = {"sub": sub_case, "fencing_token": fencing_token, "transitions": transitions, "note": note}
    return _render(request, "console/_subcase_editor.html", context)


@require_POST
@console_view()
def subcase_lock(request: HttpRequest, principal: Principal, sub_case_urn: str) -> HttpResponse:
    """Opening a passenger to edit takes the lock (POST /v1/subcases/{urn}/lock's service); the editor keeps
    the fencing token and sends it with the write."""
    grant = operator_services.subcase_lock(principal=principal, sub_case_urn=sub_case_urn)
    sub_case = case_selectors.subcase_get(principal=principal, sub_case_urn=sub_case_urn)
    return _editor(request, principal, sub_case, grant.fencing_token)


@require_POST
@console_view()
def subcase_unlock(request: HttpRequest, principal: Principal, sub_case_urn: str) -> HttpResponse:
    operator_services.subcase_unlock(principal=principal, sub_case_urn=sub_case_urn)
    return HttpResponse(
        format_html('<p class="muted" role="status">{}</p>', _("Released: anyone may open this passenger now."))
    )


@require_POST
@console_view()
def subcase_transition(request: HttpRequest, principal: Principal, sub_case_urn: str) -> HttpResponse:
    """The write of POST /v1/subcases/{urn}/transition: the version the page read and the fencing token of
    its lock. Someone else's lock or a moved version comes back as a 409 the page shows (who, reload)."""
    sub_case = case_selectors.subcase_get(principal=principal, sub_case_urn=sub_case_urn)
    try:
        version = int(request.POST.get("version", ""))
        fencing_token = int(request.POST.get("fencing_token", ""))
    except ValueError:
        raise Problem(status=400, slug="validation", title=_("Invalid form"), detail=_("Reload the page.")) from None
    sub_case = case_services.subcase_transition(
        principal=principal,
        sub_case=sub_case,
        transition=request.POST.get("transition", ""),
        expected_version=version,
        reason=request.POST.get("reason", "")[:500],
        fencing_token=fencing_token,
    )
    return _editor(request, principal, sub_case, fencing_token, note=_("Saved."))


@require_POST
@console_view(min_role=Role.OPS_SUPERVISOR)
def demand_resolve(request: HttpRequest, principal: Principal, demand_urn: str, decision: str) -> HttpResponse:
    """Approve or reject a demand wave (POST /v1/demand/{urn}/approve|reject's services; OPS_SUPERVISOR+)."""
    wave = case_selectors.demand_get(principal=principal, demand_urn=demand_urn)
    resolve = case_services.demand_approve if decision == "approve" else case_services.demand_reject
    wave = resolve(principal=principal, wave=wave, reason=request.POST.get("reason", "")[:500])
    note = _("%(kind)s wave of %(people)s people: %(status)s.") % {
        "kind": wave.kind,
        "people": wave.people,
        "status": wave.status,
    }
    context = {"case": wave.case, "waves": _pending_waves(principal, wave.case), "note": note}
    return _render(request, "console/_waves.html", context)


# --- the review queue (read-only for now) --------------------------------------------------------------


@require_GET
@console_view(min_role=Role.OPS_SUPERVISOR)
def review_queue(request: HttpRequest, principal: Principal) -> HttpResponse:
    """Spec 000's booking queue as GET /v1/booking/manual-review lists it: unresolved items by SLA due time
    (the selector and ordering of that route; OPS_SUPERVISOR+), filtered by priority and category."""
    priority = request.GET.get("priority") or None
    category = request.GET.get("category") or None
    items = review_selectors.review_items_list(
        principal=principal,
        priority=priority if priority in ReviewPriority.values else None,
        category=category if category in ReviewCategory.values else None,
        unresolved_only=True,
    ).order_by("sla_due_at", "id")
    context = {
        "items": list(items[:REVIEW_QUEUE_CAP]),
        "now": timezone.now(),
        "priorities": ReviewPriority.values,
        "categories": ReviewCategory.values,
        "filters": {"priority": priority or "", "category": category or ""},
        "operator_names": _operator_names(principal),
    }
    return _render(request, "console/review_queue.html", context)
