from django.apps import AppConfig


class CasesConfig(AppConfig):
    name = "cases"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Every process that commits (web, worker, commands) must hand accepted saga runs to a worker.
        from cases.saga import SAGA_REQUESTED
        from nexa.platform.outbox import register_consumer

        register_consumer(SAGA_REQUESTED, "cases.tasks.saga_run_execute", queue="saga")
        from cases import hotel_context

        hotel_context.register()  # caseUrn → airport for booking's hotel search
