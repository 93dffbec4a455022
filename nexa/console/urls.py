"""The console's routes, mounted at /console/ by nexa/urls.py."""

from django.urls import path

from nexa.console import views, views_audit, views_booking, views_manifest, views_policies, views_review

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
    path("cases/<str:case_urn>/booking", views_booking.case_booking, name="case-booking"),
    path("cases/<str:case_urn>/allocate", views_booking.case_allocate, name="case-allocate"),
    path("cases/<str:case_urn>/book-rooms", views_booking.case_book_rooms, name="case-book-rooms"),
    path("reservations/<str:reservation_urn>/voucher", views_booking.reservation_voucher, name="voucher"),
    path("review", views.review_queue, name="review-queue"),
    path("review/<str:review_urn>", views_review.review_item, name="review-item"),
    path("review/<str:review_urn>/claim", views_review.review_claim, name="review-claim"),
    path("review/<str:review_urn>/rebook", views_review.review_rebook, name="review-rebook"),
    path("review/<str:review_urn>/relax", views_review.review_relax, name="review-relax"),
    path("review/<str:review_urn>/split", views_review.review_split, name="review-split"),
    path("review/<str:review_urn>/override", views_review.review_override, name="review-override"),
    path("review/<str:review_urn>/resolve", views_review.review_resolve, name="review-resolve"),
    path("review/<str:review_urn>/triage", views_review.review_triage, name="review-triage"),
    path("agent/<str:agent_action_urn>/approve", views_review.agent_approve, name="agent-approve"),
    path("agent/<str:agent_action_urn>/reject", views_review.agent_reject, name="agent-reject"),
    path("agent/<str:agent_action_urn>/execute", views_review.agent_execute, name="agent-execute"),
    path("audit", views_audit.audit_log, name="audit"),
    path("audit/export.csv", views_audit.audit_export, name="audit-export"),
    path("policies", views_policies.policies, name="policies"),
    path("policies/resolve", views_policies.policy_resolve, name="policy-resolve"),
    path("policies/<str:policy_urn>/activate", views_policies.policy_activate, name="policy-activate"),
    path("demand/<str:demand_urn>/<str:decision>", views.demand_resolve, name="demand-resolve"),
]
