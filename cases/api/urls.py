"""HTTP routes of the cases app, mounted under /v1/ by nexa/urls.py."""

urlpatterns: list = []
