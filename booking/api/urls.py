"""HTTP routes of the booking app, mounted under /v1/ by nexa/urls.py."""

urlpatterns: list = []
