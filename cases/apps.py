from django.apps import AppConfig


class CasesConfig(AppConfig):
    name = "cases"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Every process that commits (web, worker, commands) must hand accepted saga runs to a worker.
        from cases import saga, services
        from nexa.platform.outbox import register_consumer

        register_consumer(saga.SAGA_REQUESTED, "cases.tasks.saga_run_execute", queue="saga")
        # The engine moves a failed run's sub-case to review through this hook, in the failing
        # transaction, without importing the services that import it (docs/decisions.md, issue 10).
        saga.review_hook_register(services.subcase_send_to_review_by_system)
