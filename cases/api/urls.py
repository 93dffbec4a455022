"""HTTP routes of the cases app, mounted under /v1/ by nexa/urls.py."""

from django.urls import path

from cases.api import (
    allocation,
    booking,
    demand,
    entitlements,
    event_stream,
    orchestration,
    reservations,
    transport,
    views,
)

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
        "subcases/<str:sub_case_urn>/entitlements",
        entitlements.SubCaseEntitlementsView.as_view(),
        name="subcase-entitlements",
    ),
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
    # The literal demand routes come before demand/<demand_urn>/…, which would otherwise read "pending" or
    # "case" as a (malformed) demand URN.
    path("demand/pending/approvals", demand.DemandPendingApprovalsView.as_view(), name="demand-pending-approvals"),
    path("demand/case/<str:case_urn>", demand.DemandRequestView.as_view(), name="demand-request"),
    path("demand/<str:demand_urn>/approve", demand.DemandApproveView.as_view(), name="demand-approve"),
    path("demand/<str:demand_urn>/reject", demand.DemandRejectView.as_view(), name="demand-reject"),
    path("allocation/allocate", allocation.AllocationAllocateView.as_view(), name="allocation-allocate"),
    path("cases/<str:case_urn>/allocate", allocation.CaseAllocateView.as_view(), name="case-allocate"),
    # Reservations are booking's; these reads join them with the case's passengers (cases/api/reservations.py).
    path(
        "booking/cases/<str:case_urn>/reservations",
        reservations.CaseReservationsView.as_view(),
        name="booking-case-reservations",
    ),
    path(
        "booking/reservations/<str:reservation_urn>",
        reservations.ReservationDetailView.as_view(),
        name="booking-reservation-detail",
    ),
    path(
        "booking/reservations/<str:reservation_urn>/voucher/html",
        reservations.ReservationVoucherView.as_view(),
        name="booking-reservation-voucher-html",
    ),
    path("vouchers/<str:token>", reservations.PublicVoucherView.as_view(), name="voucher-public"),
    # Booking (issue 12): book-rooms and manual reservations need cases, so their views live here.
    path("cases/<str:case_urn>/book-rooms", booking.BookRoomsView.as_view(), name="case-book-rooms"),
    path("booking/manual-reservations", booking.ManualReservationsView.as_view(), name="manual-reservations"),
]
