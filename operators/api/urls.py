"""HTTP routes of the operators app, mounted under /v1/ by nexa/urls.py."""

from django.urls import path

from operators.api import views

urlpatterns = [
    path("subcases/<str:sub_case_urn>/lock", views.SubCaseLockView.as_view(), name="subcase-lock"),
    path("subcases/<str:sub_case_urn>/unlock", views.SubCaseUnlockView.as_view(), name="subcase-unlock"),
    path(
        "subcases/<str:sub_case_urn>/force-unlock", views.SubCaseForceUnlockView.as_view(), name="subcase-force-unlock"
    ),
    path("operators", views.OperatorListView.as_view(), name="operators"),
    path("operators/<str:operator_urn>/deactivate", views.OperatorDeactivateView.as_view(), name="operator-deactivate"),
    path("operators/<str:operator_urn>/reactivate", views.OperatorReactivateView.as_view(), name="operator-reactivate"),
    path("auth/logout", views.LogoutView.as_view(), name="auth-logout"),
]
