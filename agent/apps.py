from django.apps import AppConfig


class AgentConfig(AppConfig):
    name = "agent"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from agent.tasks import QUEUE, REVIEW_CREATED, TRIAGE_ON_CREATED
        from nexa.platform.outbox import register_consumer

        # Every new review item reaches the exception agent through the outbox (at-least-once; the
        # consumer is idempotent per event and per item, and does nothing unless the airline enabled it).
        register_consumer(REVIEW_CREATED, TRIAGE_ON_CREATED, queue=QUEUE)
