from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Every process that commits or sweeps outbox rows must hand queued notifications to the worker.
        # Importing the events module also declares the app's events (nexa/platform/events.py).
        from notifications.events import register_delivery_consumer

        register_delivery_consumer()
