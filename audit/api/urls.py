"""HTTP routes of the audit app, mounted under /v1/ by nexa/urls.py."""

urlpatterns: list = []
