"""HTTP routes of the policies app, mounted under /v1/ by nexa/urls.py."""

from django.urls import path

from policies.api import views

urlpatterns = [
    path("policies", views.PolicyCreateView.as_view(), name="policies"),
    # Before policies/<policy_urn>, which would otherwise capture these words as (malformed) URNs.
    path("policies/generate-ai", views.PolicyGenerateView.as_view(), name="policies-generate-ai"),
    path("policies/active", views.PoliciesActiveView.as_view(), name="policies-active"),
    path("policies/resolve", views.PolicyResolveView.as_view(), name="policies-resolve"),
    path("policies/<str:policy_urn>", views.PolicyDetailView.as_view(), name="policy-detail"),
    path("policies/<str:policy_urn>/patch", views.PolicyPatchView.as_view(), name="policy-patch"),
    path("policies/<str:policy_urn>/activate", views.PolicyActivateView.as_view(), name="policy-activate"),
    path("policies/<str:policy_urn>/deactivate", views.PolicyDeactivateView.as_view(), name="policy-deactivate"),
]
