"""Routes. Every API route lives under /v1; each domain app contributes its own api/urls.py."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularSwaggerView

from nexa import dashboard
from nexa.platform import ops

api_v1 = [
    # The composition route joins domains, so it lives in the top layer. Before cases.api.urls, whose
    # cases/<case_urn> would otherwise capture "dashboard" as a (malformed) URN.
    path("cases/dashboard", dashboard.CaseDashboardView.as_view(), name="cases-dashboard"),
    path("", include("agent.api.urls")),  # the exception agent (docs/agent.md)
    path("", include("review.api.urls")),  # manual review, and spec 000's booking/manual-review queue
    path("", include("cases.api.urls")),
    path("", include("booking.api.urls")),
    path("", include("audit.api.urls")),
    path("", include("operators.api.urls")),
    path("", include("notifications.api.urls")),
    path("", include("policies.api.urls")),
    path("openapi.json", SpectacularJSONAPIView.as_view(), name="openapi"),
    path("docs", SpectacularSwaggerView.as_view(url_name="openapi"), name="swagger-ui"),
]
if settings.NEXA_BENCH:
    api_v1.append(path("_bench/ping", ops.BenchPingView.as_view(), name="bench-ping"))
    api_v1.append(path("_bench/write", ops.BenchWriteView.as_view(), name="bench-write"))

urlpatterns = [
    path("v1/", include(api_v1)),
    path(".well-known/jwks.json", ops.jwks_view, name="jwks"),
    path("healthz", ops.healthz, name="healthz"),
    path("readyz", ops.readyz, name="readyz"),
    path("metrics", ops.metrics_view, name="metrics"),
    path("admin/", admin.site.urls),
    path("oidc/", include("mozilla_django_oidc.urls")),
    path("console/", include("nexa.console.urls")),
    path("", RedirectView.as_view(pattern_name="console:dashboard"), name="console"),
]
