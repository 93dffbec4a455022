"""HTTP routes of the notifications app, mounted under /v1/ by nexa/urls.py."""

from django.urls import path

from notifications.api.views import NotificationCaseLogView, NotificationSendView

urlpatterns = [
    path("notifications/case/<str:case_urn>", NotificationCaseLogView.as_view(), name="notifications-case-log"),
    path("notifications/<str:case_urn>/send", NotificationSendView.as_view(), name="notifications-send"),
]
