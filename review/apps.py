from django.apps import AppConfig


class ReviewConfig(AppConfig):
    name = "review"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Importing the events module declares the app's events (nexa/platform/events.py).
        from nexa.platform.outbox import register_consumer
        from policies.selectors import relaxation_register
        from review import events  # noqa: F401
        from review.selectors import case_relaxations
        from review.tasks import CONSUMERS, PAGE_CONSUMER, QUEUE

        # A relax action's relaxations reach policy resolution for that case only (policies sits below review
        # and learns of them through this hook; docs/review.md § Relax).
        relaxation_register(case_relaxations)

        # Every process that relays the outbox (web, worker, commands) hands the failure events that need a
        # human to the review consumers; they are idempotent by event URN (at-least-once delivery).
        for event, task in CONSUMERS.items():
            register_consumer(event, task, queue=QUEUE)
        # An escalation's page reaches the on-call through the outbox, so a committed page is never lost.
        event, task, queue = PAGE_CONSUMER
        register_consumer(event, task, queue=queue)
