from django.apps import AppConfig


class CasesConfig(AppConfig):
    name = "cases"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Every process that commits (web, worker, commands) must hand accepted saga runs to a worker.
        from cases.saga import SAGA_REQUESTED
        from nexa.platform.outbox import register_consumer

        register_consumer(SAGA_REQUESTED, "cases.tasks.saga_run_execute", queue="saga")

        # GET /v1/policies/resolve?caseUrn=: policies is below cases and learns a case's context through this hook.
        from cases.policy_context import case_policy_context
        from policies.selectors import case_context_register

        case_context_register(case_policy_context)
