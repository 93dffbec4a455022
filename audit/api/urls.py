"""HTTP routes of the audit app, mounted under /v1/ by nexa/urls.py."""

from django.urls import path

from audit.api.views import AuditCaseListView, AuditEntityListView, AuditExportView, AuditListView

urlpatterns = [
    path("audit", AuditListView.as_view(), name="audit-list"),
    path("audit/export.csv", AuditExportView.as_view(), name="audit-export"),
    path("audit/case/<str:case_urn>", AuditCaseListView.as_view(), name="audit-case"),
    path("audit/entity/<str:entity_urn>", AuditEntityListView.as_view(), name="audit-entity"),
]
