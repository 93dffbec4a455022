from django.apps import AppConfig


class BookingConfig(AppConfig):
    name = "booking"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # The hotel search checks offers against policies.selectors.policy_resolve once it exists.
        from booking import policy_hook

        policy_hook.register()
