"""The case screen's manifest file upload: the file is read by the reader ``manage.py import_manifest`` uses
(:func:`cases.manifest.read_manifest_text`) and appended by the service of ``POST /v1/cases/{urn}/manifest``
(:func:`cases.services.manifest_append`, all or nothing, audited), as the signed-in operator, with that route's
role (OPS_SUPERVISOR+). A refused file comes back as a table of its rows' errors."""

import re
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from cases import selectors as case_selectors
from cases import services as case_services
from cases.manifest import ManifestFileError, read_manifest_text
from nexa.console.views import _render, console_view
from nexa.platform.auth import Principal
from nexa.platform.context import current_correlation_urn
from nexa.platform.problems import Problem
from nexa.platform.roles import Role

# The API's body limit (NEXA_MAX_BODY_BYTES) is 5 MB: a file that would not fit in a POST is refused here too.
MANIFEST_UPLOAD_MAX_BYTES = 5 * 1024 * 1024
# "passengers[3].email" → row 3 (0-based, the header not counted), field "email".
_ROW_FIELD = re.compile(r"^passengers\[(\d+)\](?:\.(.+))?$")
MANIFEST_MIN_ROLE = Role.OPS_SUPERVISOR  # POST /v1/cases/{urn}/manifest is SUPERVISOR in cases/api/views.py


def manifest_error_rows(errors: list[dict[str, str]]) -> list[dict[str, Any]]:
    """The problem's ``{field: 'passengers[3].email', message}`` as the table shows them: the file's row
    number (1 = the first passenger under the header), the column, the message."""
    rows = []
    for error in errors:
        match = _ROW_FIELD.match(error.get("field", ""))
        if match:
            rows.append({"row": int(match.group(1)) + 1, "field": match.group(2) or "", "message": error["message"]})
        else:
            rows.append({"row": None, "field": error.get("field", ""), "message": error.get("message", "")})
    return rows


def _refused(request: HttpRequest, problem: Problem) -> HttpResponse:
    errors = (problem.extensions or {}).get("errors") or []
    context = {
        "problem": problem,
        "detail": problem.detail_text,
        "error_rows": manifest_error_rows(errors),
        "correlation": current_correlation_urn(),
    }
    return _render(request, "console/manifest_upload_result.html", context, status=problem.status_code)


def _file_problem(message: str) -> Problem:
    return Problem(
        status=400,
        slug="validation-error",
        title=_("The file cannot be read"),
        detail=message,
        extensions={"errors": [{"field": "file", "message": message}]},
    )


def _read_upload(request: HttpRequest) -> list[object]:
    upload = request.FILES.get("file")
    if upload is None:
        raise _file_problem(_("Choose a CSV file."))
    if upload.size > MANIFEST_UPLOAD_MAX_BYTES:
        raise _file_problem(_("The file is larger than %(n)s bytes.") % {"n": MANIFEST_UPLOAD_MAX_BYTES})
    try:
        text = upload.read().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _file_problem(_("The file is not UTF-8 text.")) from None
    try:
        return read_manifest_text(text, name=upload.name or "manifest.csv")
    except ManifestFileError as error:
        raise _file_problem(str(error)) from None


@require_POST
@console_view(min_role=MANIFEST_MIN_ROLE)
def manifest_upload(request: HttpRequest, principal: Principal, case_urn: str) -> HttpResponse:
    """Append the uploaded CSV (or JSON) manifest to the case, all or nothing."""
    case = case_selectors.case_get(principal=principal, case_urn=case_urn)
    try:
        rows = _read_upload(request)
        created = case_services.manifest_append(principal=principal, case=case, rows=rows)
    except Problem as problem:
        return _refused(request, problem)
    note = _("%(n)s passengers added to the manifest.") % {"n": len(created)}
    return _render(request, "console/manifest_upload_result.html", {"note": note, "added": len(created)}, status=201)
