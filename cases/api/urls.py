"""HTTP routes of the cases app, mounted under /v1/ by nexa/urls.py."""

from django.urls import path

from cases.api import booking, event_stream, orchestration, transport, views

urlpatterns = [
    path("cases", views.CaseListCreateView.as_view(), name="cases"),
    # GET cases/dashboard is nexa.dashboard's (the top layer), routed in nexa/urls.py before this file.
    path("cases/<str:case_urn>", views.CaseDetailView.as_view(), name="case-detail"),
    path("cases/<str:case_urn>/manifest", views.CaseManifestView.as_view(), name="case-manifest"),
    path("cases/<str:case_urn>/events", event_stream.CaseEventStreamView.as_view(), name="case-events"),
    path("cases/<str:case_urn>/passenger-groups", views.PassengerGroupsView.as_view(), name="case-passenger-groups"),
    path("subcases/<str:sub_case_urn>/transition", views.SubCaseTransitionView.as_view(), name="subcase-transition"),
    path(
        "subcases/<str:sub_case_urn>/compensate",
        orchestration.SubCaseCompensateView.as_view(),
        name="subcase-compensate",
    ),
    path("subcases/<str:sub_case_urn>/wallet", orchestration.SubCaseWalletView.as_view(), name="subcase-wallet"),
    path(
        "orchestration/cases/<str:case_urn>/progress",
        orchestration.CaseProgressView.as_view(),
        name="orchestration-case-progress",
    ),
    path(
        "orchestration/runs/<str:saga_urn>/retry",
        orchestration.SagaRunRetryView.as_view(),
        name="orchestration-run-retry",
    ),
    path(
        "orchestration/runs/<str:saga_urn>/cancel",
        orchestration.SagaRunCancelView.as_view(),
        name="orchestration-run-cancel",
    ),
    path("transport/cases/<str:case_urn>/transfers/request", transport.TransfersView.as_view(), name="transfers"),
    # Booking (issue 12): book-rooms and manual reservations need cases, so their views live here.
    path("cases/<str:case_urn>/book-rooms", booking.BookRoomsView.as_view(), name="case-book-rooms"),
    path("booking/manual-reservations", booking.ManualReservationsView.as_view(), name="manual-reservations"),
]
