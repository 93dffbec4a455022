"""The audit screen: the airline's log filtered as ``GET /v1/audit`` filters it (actor, action, a half-open
``[from, to)`` range, parsed by that route's own :class:`AuditLogFilters`), a case's trail
(``GET /v1/audit/case/{urn}``) or one entity's history (``GET /v1/audit/entity/{urn}``), with the selectors of
those routes, and the CSV of ``GET /v1/audit/export.csv`` (:func:`audit.export.audit_export_prepare`).
Read-only; FINANCE_AUDIT or OPS_SUPERVISOR+, like the API (``AUDIT_READERS``)."""

import json
from typing import Any

from django.core.handlers.asgi import ASGIRequest
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from audit.api.serializers import AuditLogFilters
from audit.export import audit_export_prepare
from audit.selectors import AUDIT_ORDERING, audit_entries, audit_entries_for_case, audit_entries_for_entity, case_check
from nexa.console.views import _render, console_view
from nexa.platform.auth import Principal
from nexa.platform.problems import Problem, validation_problem
from nexa.platform.roles import Role, role_satisfies
from nexa.platform.urns import is_opaque_urn

AUDIT_READER_ROLES = (Role.FINANCE_AUDIT, Role.OPS_SUPERVISOR)  # audit/api/views.py AUDIT_READERS
AUDIT_SCREEN_CAP = 200
LOG_FILTERS = ("actor", "action", "from", "to")


def may_read_audit(principal: Principal) -> bool:
    return any(role_satisfies(principal.role, role) for role in AUDIT_READER_ROLES)


def _require_reader(principal: Principal) -> None:
    if not may_read_audit(principal):
        raise Problem(
            status=403,
            slug="forbidden",
            title=_("Not allowed for your role"),
            detail=_("This screen needs FINANCE_AUDIT or OPS_SUPERVISOR+; your role is %(role)s.")
            % {"role": principal.role.value},
        )


def _log_filters(request: HttpRequest) -> dict[str, Any]:
    """The query string through the API route's filter serializer; a bad value is a 400 naming it. The form
    sends every field, so an empty one is absent (the API refuses ``?actor=``: a client never sends it)."""
    sent = {name: request.GET[name] for name in LOG_FILTERS if request.GET.get(name, "").strip()}
    serializer = AuditLogFilters(data=sent)
    if not serializer.is_valid():
        errors = [
            {"field": name, "message": str(message)}
            for name, messages in serializer.errors.items()
            for message in (messages if isinstance(messages, list) else [messages])
        ]
        raise validation_problem(errors)
    return dict(serializer.validated_data)


def _json_text(value: Any) -> str:
    """A changed-fields snapshot as the CSV's before_json/after_json cells spell it."""
    return "" if value is None else json.dumps(value, cls=DjangoJSONEncoder, sort_keys=True, ensure_ascii=False)


def _log_entries(principal: Principal, filters: dict[str, Any]):
    return audit_entries(
        principal=principal,
        actor=filters["actor"],
        action=filters["action"],
        created_from=filters["from"],
        created_to=filters["to"],
    )


@require_GET
@console_view(min_role=None)
def audit_log(request: HttpRequest, principal: Principal) -> HttpResponse:
    _require_reader(principal)
    case_urn = request.GET.get("case", "").strip()
    entity_urn = request.GET.get("entity", "").strip()
    sent = {name: request.GET.get(name, "") for name in (*LOG_FILTERS, "case", "entity")}
    export_url = ""
    if case_urn:
        case_check(principal=principal, case_urn=case_urn)  # another airline's case is a 404, as in the API
        entries = audit_entries_for_case(principal=principal, case_urn=case_urn)
    elif entity_urn:
        if not is_opaque_urn(entity_urn):
            raise validation_problem([{"field": "entity", "message": _("Must be a URN (urn:…).")}])
        entries = audit_entries_for_entity(principal=principal, entity_urn=entity_urn)
    else:
        entries = _log_entries(principal, _log_filters(request))
        query = urlencode({name: sent[name] for name in LOG_FILTERS if sent[name]})
        export_url = reverse("console:audit-export") + (f"?{query}" if query else "")
    context = {
        "entries": [
            {"entry": entry, "before": _json_text(entry.before), "after": _json_text(entry.after)}
            for entry in entries.order_by(*AUDIT_ORDERING)[:AUDIT_SCREEN_CAP]
        ],
        "cap": AUDIT_SCREEN_CAP,
        "filters": sent,
        "export_url": export_url,
    }
    return _render(request, "console/audit.html", context)


@require_GET
@console_view(min_role=None)
def audit_export(request: HttpRequest, principal: Principal) -> HttpResponse:
    """The CSV of GET /v1/audit/export.csv: same filters, counted and capped, streamed in keyset batches."""
    _require_reader(principal)
    export = audit_export_prepare(_log_entries(principal, _log_filters(request)))
    # Under ASGI an async body is streamed; a sync one would be read whole before sending (as in the API).
    streaming = isinstance(request, ASGIRequest)
    response = StreamingHttpResponse(
        export.achunks() if streaming else export.chunks(), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{export.filename(principal.airline)}"'
    response["Cache-Control"] = "no-store"
    return response
