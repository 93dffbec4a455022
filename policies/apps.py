from django.apps import AppConfig


class PoliciesConfig(AppConfig):
    name = "policies"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Importing the events module declares the app's events (nexa/platform/events.py).
        from policies import events  # noqa: F401
