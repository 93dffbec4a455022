"""Every route in the URLconf is held by the shared API contract base (``tests/api_base.py``) or
excused, in :data:`EXCUSED` below and nowhere else, with a reason. Adding a route without a
``RouteContract`` on a ``Test…(APIContractTests)`` class fails :func:`test_every_route_has_a_contract_or_an_excuse`."""

import importlib
import re
from pathlib import Path

from django.urls import URLPattern, URLResolver, get_resolver, resolve

from tests.api_base import APIContractTests

TESTS = Path(__file__).resolve().parents[1]
# Each entry: "METHOD path" or "path" (every method), paths as Django routes with every
# placeholder written {}; a trailing * excuses everything under a prefix. Each needs its reason.
EXCUSED: dict[str, str] = {
    # Outside the API: no token, no tenant, nothing for the role matrix to hold.
    "healthz": "liveness probe, unauthenticated by design (tests/platform/test_ops.py)",
    "readyz": "readiness probe, unauthenticated by design (tests/platform/test_ops.py)",
    "metrics": "Prometheus scrape, guarded by its own token/network rule (tests/platform/test_ops.py)",
    ".well-known/jwks.json": "public keys, public by design (tests/platform/test_auth.py)",
    "": "redirects to the console, a browser session, not a bearer token (tests/e2e browser tests)",
    "console/*": (
        "the operator console: a browser session (Django login), not a bearer token; its roles, tenant wall and "
        "refusals are tested in a real browser in tests/e2e/test_console_*.py"
    ),
    "admin/*": "Django admin: session login and staff permissions (tests/*/test_admin.py)",
    "oidc/*": "mozilla-django-oidc login flow for the admin, not the API",
    "GET v1/openapi.json": "the schema itself, public (tests/platform/test_schema_truth.py)",
    "GET v1/docs": "Swagger UI over the schema, public",
    "v1/_bench/*": "only when NEXA_BENCH is set: benchmark probes, never in production",
    "GET v1/vouchers/{}": (
        "the passenger's hotel voucher link (SMS/WhatsApp): public by design, the signed token is the credential "
        "(no bearer token, no role, no tenant); valid, tampered, expired, released and other passengers' links "
        "are tested in tests/cases/test_reservations_api.py"
    ),
    # The base calls routes in process, inside the test's transaction.
    "GET v1/cases/{}/events": (
        "Server-Sent Events: before streaming, the view closes the request thread's database connections "
        "(connections.close_all), which would end the base's test transaction, and a 200 is an endless "
        "stream; its refusals (401/403/404/400 problem documents) and the roles that may stream are "
        "tested over a live server in tests/cases/test_event_stream.py"
    ),
}


def _contract_modules() -> list[str]:
    names = []
    for path in sorted(TESTS.rglob("test_*.py")):
        if "(APIContractTests)" in path.read_text(encoding="utf-8"):
            names.append(".".join(path.relative_to(TESTS.parent).with_suffix("").parts))
    return names


def _subclasses(cls) -> set[type]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub} | _subclasses(sub)
    return found


def contract_routes() -> set[tuple[str, str]]:
    """``(METHOD, normalised path)`` of every ``RouteContract`` on a collected contract class."""
    for module in _contract_modules():
        importlib.import_module(module)
    routes = set()
    for cls in _subclasses(APIContractTests):
        if cls.__name__.startswith("Test"):
            routes |= {(route.method, _normalise_contract(route.path)) for route in cls.routes}
    return routes


def _normalise_contract(path: str) -> str:
    """The URLconf route a contract's path resolves to (placeholders filled, query string dropped)."""
    filled = re.sub(r"\{[^}]*\}", "x", path.split("?", 1)[0])
    return _normalise_django(resolve(filled).route)


def _normalise_django(route: str) -> str:
    return re.sub(r"<[^>]*>", "{}", route)


def _methods(callback) -> set[str]:
    view = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
    if view is None:
        return {"*"}  # a plain function view
    return {m.upper() for m in view.http_method_names if m not in ("options", "head") and hasattr(view, m)}


def url_routes(patterns=None, prefix: str = "") -> set[tuple[str, str]]:
    """``(METHOD, normalised path)`` for every route of the URLconf (``*`` for function views)."""
    patterns = get_resolver().url_patterns if patterns is None else patterns
    routes = set()
    for pattern in patterns:
        piece = _normalise_django(str(pattern.pattern))
        if isinstance(pattern, URLResolver):
            routes |= url_routes(pattern.url_patterns, prefix + piece)
        elif isinstance(pattern, URLPattern):
            routes |= {(method, prefix + piece) for method in _methods(pattern.callback)}
    return routes


def _excused(method: str, path: str, excused: dict[str, str]) -> bool:
    for entry in excused:
        entry_method, _, entry_path = entry.rpartition(" ")
        if entry_method and entry_method != method:
            continue
        if entry_path == path or (entry_path.endswith("*") and path.startswith(entry_path[:-1])):
            return True
    return False


def uncovered(routes, contracts, excused) -> list[str]:
    return sorted(
        f"{method} /{path}"
        for method, path in routes
        if (method, path) not in contracts and not _excused(method, path, excused)
    )


def test_every_route_has_a_contract_or_an_excuse():
    missing = uncovered(url_routes(), contract_routes(), EXCUSED)
    assert not missing, (
        "Routes without a RouteContract on a Test…(APIContractTests) class (tests/api_base.py) and "
        f"without a reasoned entry in {__name__}.EXCUSED: {missing}"
    )


def test_every_excuse_names_a_route_and_gives_a_reason():
    routes = url_routes()
    for entry, reason in EXCUSED.items():
        path = entry.rpartition(" ")[2]
        assert len(reason) > 20, entry
        if path.startswith("v1/_bench"):
            continue  # present only with NEXA_BENCH
        matched = [r for r in routes if _excused(r[0], r[1], {entry: reason})]
        assert matched, f"EXCUSED[{entry!r}] matches no route: remove it"
        assert not any(r in contract_routes() for r in matched), f"{entry!r} has a contract now: remove the excuse"


def test_a_route_added_without_a_contract_is_reported():
    contracts = contract_routes()
    before = set(uncovered(url_routes(), contracts, EXCUSED))
    routes = url_routes() | {("GET", "v1/widgets"), ("POST", "v1/cases/{}/widgets")}
    assert set(uncovered(routes, contracts, EXCUSED)) - before == {"GET /v1/widgets", "POST /v1/cases/{}/widgets"}
