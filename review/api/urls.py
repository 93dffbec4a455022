"""HTTP routes of the review app, mounted under /v1/ by nexa/urls.py (before cases' and booking's, so
``booking/manual-review`` is never read as one of their paths)."""

from django.urls import path

from review.api import actions_booking, actions_policy, views

urlpatterns = [
    path("manual-review", views.ManualReviewListView.as_view(), name="manual-review-list"),
    path("manual-review/<str:review_urn>", views.ManualReviewDetailView.as_view(), name="manual-review-detail"),
    path("manual-review/<str:review_urn>/claim", views.ManualReviewClaimView.as_view(), name="manual-review-claim"),
    path(
        "manual-review/<str:review_urn>/rebook",
        actions_booking.ManualReviewRebookView.as_view(),
        name="manual-review-rebook",
    ),
    path(
        "manual-review/<str:review_urn>/override",
        actions_booking.ManualReviewOverrideView.as_view(),
        name="manual-review-override",
    ),
    path(
        "manual-review/<str:review_urn>/resolve",
        views.ManualReviewResolveView.as_view(),
        name="manual-review-resolve",
    ),
    path(
        "manual-review/<str:review_urn>/relax",
        actions_policy.ManualReviewRelaxView.as_view(),
        name="manual-review-relax",
    ),
    path(
        "manual-review/<str:review_urn>/split",
        actions_policy.ManualReviewSplitView.as_view(),
        name="manual-review-split",
    ),
    path("booking/manual-review", views.BookingReviewQueueView.as_view(), name="booking-manual-review"),
    path(
        "booking/manual-review/<str:review_urn>/assign",
        views.BookingReviewAssignView.as_view(),
        name="booking-manual-review-assign",
    ),
    path(
        "booking/manual-review/<str:review_urn>/resolve",
        views.BookingReviewResolveView.as_view(),
        name="booking-manual-review-resolve",
    ),
    path(
        "booking/manual-review/<str:review_urn>/escalate",
        views.BookingReviewEscalateView.as_view(),
        name="booking-manual-review-escalate",
    ),
]
