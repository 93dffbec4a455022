"""The console's routes, mounted at /console/ by nexa/urls.py."""

from django.urls import path

from nexa.console import views, views_audit, views_manifest, views_policies

app_name = "console"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("sign-in", views.SignInView.as_view(), name="signin"),
    path("sign-out", views.sign_out, name="signout"),
    path("language", views.language_set, name="language"),
    path("socket-token", views.socket_token, name="socket-token"),
    path("dashboard/sections", views.dashboard_sections, name="dashboard-sections"),
    path("cases/<str:case_urn>", views.case_detail, name="case"),
    path("cases/<str:case_urn>/waves", views.case_waves, name="case-waves"),
    path("cases/<str:case_urn>/demand", views.demand_request, name="demand-request"),
    path("cases/<str:case_urn>/manifest", views.case_manifest, name="case-manifest"),
    path("cases/<str:case_urn>/manifest/upload", views_manifest.manifest_upload, name="manifest-upload"),
    path("subcases/<str:sub_case_urn>/lock", views.subcase_lock, name="subcase-lock"),
    path("subcases/<str:sub_case_urn>/unlock", views.subcase_unlock, name="subcase-unlock"),
    path("subcases/<str:sub_case_urn>/transition", views.subcase_transition, name="subcase-transition"),
    path("review", views.review_queue, name="review-queue"),
    path("audit", views_audit.audit_log, name="audit"),
    path("audit/export.csv", views_audit.audit_export, name="audit-export"),
    path("policies", views_policies.policies, name="policies"),
    path("policies/resolve", views_policies.policy_resolve, name="policy-resolve"),
    path("policies/<str:policy_urn>/activate", views_policies.policy_activate, name="policy-activate"),
    path("demand/<str:demand_urn>/<str:decision>", views.demand_resolve, name="demand-resolve"),
]
