"""RFC 9457 problem details for every error under ``/v1`` (ARCHITECTURE §3.5).

Domain code raises :class:`Problem` (or one of its helpers); DRF's own exceptions, Django's 404
and 405, oversized bodies and unhandled errors are all turned into ``application/problem+json``
here, with ``instance`` set to the request's correlation URN.
"""

import json
from typing import Any

import structlog
from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpResponse
from rest_framework import exceptions as drf_exceptions
from rest_framework import status as http_status

from nexa.platform.context import current_correlation_urn
from nexa.platform.models import IdempotencyRecord
from nexa.platform.urns import InvalidUrn

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://api.nexa/problems/"

logger = structlog.get_logger(__name__)


def problem_type(slug: str) -> str:
    return PROBLEM_TYPE_BASE + slug


class Problem(drf_exceptions.APIException):
    """An error the API answers as a problem document.

    ``slug`` names the ``type``; ``extensions`` are extra members (``lockedBy``, ``version``,
    ``failedDomain``, ``errors`` …); ``headers`` are response headers (``Retry-After``).
    """

    def __init__(
        self,
        *,
        status: int,
        slug: str,
        title: str,
        detail: str = "",
        extensions: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(detail or title)
        self.status_code = status
        self.slug = slug
        self.title = title
        self.detail_text = detail or title
        self.extensions = extensions or {}
        self.headers = headers or {}


def validation_problem(errors: list[dict[str, str]], *, status: int = 400, detail: str | None = None) -> Problem:
    """Bad input: ``errors`` is ``[{field, message}]``."""
    return Problem(
        status=status,
        slug="validation-error" if status == 400 else "unprocessable",
        title="The request is invalid" if status == 400 else "The request cannot be processed",
        detail=detail or "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5]),
        extensions={"errors": errors},
    )


def not_found_problem(detail: str = "No such resource.") -> Problem:
    return Problem(status=404, slug="not-found", title="Not found", detail=detail)


def conflict_problem(*, slug: str, title: str, detail: str, **extensions: Any) -> Problem:
    return Problem(status=409, slug=slug, title=title, detail=detail, extensions=extensions)


def downstream_unavailable_problem(domain: str, detail: str | None = None) -> Problem:
    """A circuit is open: 503 with ``failedDomain`` and ``Retry-After: 30`` (do not auto-retry)."""
    return Problem(
        status=503,
        slug="downstream-unavailable",
        title="A downstream service is unavailable",
        detail=detail or f"The {domain} circuit is open; try again later.",
        extensions={"failedDomain": domain},
        headers={"Retry-After": "30"},
    )


def problem_body(*, status: int, slug: str, title: str, detail: str, extensions: dict | None = None) -> dict:
    body = {
        "type": problem_type(slug),
        "title": title,
        "status": status,
        "detail": detail,
        "instance": current_correlation_urn(),
    }
    for key, value in (extensions or {}).items():
        body.setdefault(key, value)
    return body


def problem_response(
    *,
    status: int,
    slug: str,
    title: str,
    detail: str,
    extensions: dict | None = None,
    headers: dict[str, str] | None = None,
) -> HttpResponse:
    """A plain Django response carrying a problem (for middleware and non-DRF views)."""
    body = problem_body(status=status, slug=slug, title=title, detail=detail, extensions=extensions)
    response = HttpResponse(json.dumps(body), status=status, content_type=PROBLEM_CONTENT_TYPE)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def _flatten_validation_errors(detail: Any, prefix: str = "") -> list[dict[str, str]]:
    """DRF's nested ``ValidationError.detail`` → ``[{field, message}]`` with dotted paths."""
    errors: list[dict[str, str]] = []
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = "" if key == "non_field_errors" else str(key)
            errors.extend(_flatten_validation_errors(value, f"{prefix}.{name}" if prefix and name else prefix or name))
    elif isinstance(detail, list):
        if all(not isinstance(item, (dict, list)) for item in detail):
            errors.extend({"field": prefix or "body", "message": str(item)} for item in detail)
        else:
            for index, item in enumerate(detail):
                errors.extend(_flatten_validation_errors(item, f"{prefix}[{index}]"))
    else:
        errors.append({"field": prefix or "body", "message": str(detail)})
    return errors


def _as_problem(exc: Exception) -> Problem | None:
    """Map a known exception to a :class:`Problem`; ``None`` for unexpected errors (→ 500)."""
    if isinstance(exc, Problem):
        return exc
    if isinstance(exc, InvalidUrn):
        field = "urn"
        return validation_problem([{"field": field, "message": exc.message}], detail=exc.message)
    if isinstance(exc, RequestDataTooBig):
        return Problem(
            status=413,
            slug="payload-too-large",
            title="Request body too large",
            detail="The request body is too large.",
        )
    if isinstance(exc, drf_exceptions.ValidationError):
        return validation_problem(_flatten_validation_errors(exc.detail))
    if isinstance(exc, drf_exceptions.ParseError):
        return Problem(status=400, slug="malformed-body", title="Malformed request body", detail=str(exc.detail))
    if isinstance(exc, (drf_exceptions.NotAuthenticated, drf_exceptions.AuthenticationFailed)):
        return Problem(
            status=401,
            slug="unauthorized",
            title="Authentication required",
            detail=str(exc.detail),
            headers={"WWW-Authenticate": 'Bearer realm="nexa"'},
        )
    if isinstance(exc, (drf_exceptions.PermissionDenied, DjangoPermissionDenied)):
        detail = str(exc.detail) if isinstance(exc, drf_exceptions.APIException) else "Forbidden."
        return Problem(status=403, slug="forbidden", title="Forbidden", detail=detail)
    if isinstance(exc, (drf_exceptions.NotFound, Http404)):
        return not_found_problem()
    if isinstance(exc, drf_exceptions.MethodNotAllowed):
        return Problem(status=405, slug="method-not-allowed", title="Method not allowed", detail=str(exc.detail))
    if isinstance(exc, drf_exceptions.UnsupportedMediaType):
        return Problem(
            status=415,
            slug="unsupported-media-type",
            title="Unsupported media type",
            detail=f"{exc.detail} Send application/json.",
        )
    if isinstance(exc, drf_exceptions.NotAcceptable):
        return Problem(status=406, slug="not-acceptable", title="Not acceptable", detail=str(exc.detail))
    if isinstance(exc, drf_exceptions.Throttled):
        wait = int(exc.wait or 1)
        return Problem(
            status=429,
            slug="rate-limited",
            title="Too many requests",
            detail=f"Rate limit exceeded; retry in {wait} s.",
            headers={"Retry-After": str(max(wait, 1))},
        )
    if isinstance(exc, drf_exceptions.APIException):
        return Problem(status=exc.status_code, slug="error", title="Error", detail=str(exc.detail))
    return None


def exception_handler(exc: Exception, context: dict) -> HttpResponse | None:
    """DRF ``EXCEPTION_HANDLER``: every API error becomes a problem document."""
    problem = _as_problem(exc)
    if problem is None:
        return None  # unexpected: re-raised, answered as a 500 problem by ProblemMiddleware
    if problem.status_code >= 500:
        logger.warning("problem", status=problem.status_code, slug=problem.slug, detail=problem.detail_text)
    return problem_response(
        status=problem.status_code,
        slug=problem.slug,
        title=problem.title,
        detail=problem.detail_text,
        extensions=problem.extensions,
        headers=problem.headers,
    )


def _is_api_path(path: str) -> bool:
    return path == "/v1" or path.startswith("/v1/")


def _nul_in_path_or_query(request) -> list[str]:
    """Where a decoded ``%00`` sits: ``path`` and the names of query parameters (PostgreSQL refuses NUL
    in text, so it would reach the database as a 500 wherever a path or query value is matched)."""
    fields = ["path"] if "\x00" in request.path else []
    if "%00" in request.META.get("QUERY_STRING", "") or "\x00" in request.META.get("QUERY_STRING", ""):
        fields += sorted(
            {
                name.replace("\x00", "%00")
                for name, values in request.GET.lists()
                if "\x00" in name or any("\x00" in value for value in values)
            }
        )
    return fields


# Routes (exact paths) that take larger bodies than NEXA_MAX_BODY_BYTES: file uploads. Apps register them in
# their AppConfig.ready (the platform knows no routes); every other path keeps the global limit.
_route_body_limits: dict[str, int] = {}


def route_body_limit_register(path: str, max_bytes: int) -> None:
    """Let requests to ``path`` (exact) carry bodies of up to ``max_bytes`` (413 above, as everywhere)."""
    _route_body_limits[path] = max_bytes


def body_limit_for(path: str, default: int | None) -> int | None:
    return _route_body_limits.get(path, default)


class ProblemMiddleware:
    """Problems for what never reaches a DRF view under ``/v1``: unknown routes, oversized bodies
    and unhandled exceptions (a 500 that never leaks a stack trace)."""

    def __init__(self, get_response):
        self.get_response = get_response

        self.max_body_bytes = settings.DATA_UPLOAD_MAX_MEMORY_SIZE

        # No route of ours needs a longer path (URNs are ~60 characters), and an Idempotency-Key claim
        # stores the path: a longer one failed in the database (a 500).
        self.max_path_length = IdempotencyRecord._meta.get_field("path").max_length

    def __call__(self, request):
        if not _is_api_path(request.path):
            return self.get_response(request)
        try:
            declared_length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared_length = 0
        max_body_bytes = _route_body_limits.get(request.path, self.max_body_bytes)
        if max_body_bytes is not None and declared_length > max_body_bytes:
            return problem_response(
                status=413,
                slug="payload-too-large",
                title="Request body too large",
                detail=f"The request body is larger than {max_body_bytes} bytes.",
            )
        if len(request.path) > self.max_path_length:
            return problem_response(
                status=400,
                slug="validation-error",
                title="The request is invalid",
                detail=f"The path is longer than {self.max_path_length} characters.",
                extensions={"errors": [{"field": "path", "message": f"at most {self.max_path_length} characters"}]},
            )
        nul_fields = _nul_in_path_or_query(request)
        if nul_fields:
            return problem_response(
                status=400,
                slug="validation-error",
                title="The request is invalid",
                detail="The path and query parameters must not contain the NUL character (%00).",
                extensions={
                    "errors": [
                        {"field": field, "message": "must not contain the NUL character (%00)"} for field in nul_fields
                    ]
                },
            )
        response = self.get_response(request)
        if response.get("Content-Type", "").startswith(PROBLEM_CONTENT_TYPE):
            return response
        if response.status_code == 404:
            return problem_response(status=404, slug="not-found", title="Not found", detail=f"No route {request.path}.")
        if response.status_code == 405:
            return problem_response(
                status=405,
                slug="method-not-allowed",
                title="Method not allowed",
                detail=f"{request.method} is not allowed on {request.path}.",
            )
        return response

    def process_exception(self, request, exception):
        if not _is_api_path(request.path):
            return None
        problem = _as_problem(exception)
        if problem is not None:
            return exception_handler(problem, {})
        logger.exception("unhandled_error", exc_info=exception)
        return problem_response(
            status=http_status.HTTP_500_INTERNAL_SERVER_ERROR,
            slug="internal-error",
            title="Internal server error",
            detail="An unexpected error occurred; quote the instance URN when reporting it.",
        )
