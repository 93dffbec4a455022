from django.apps import AppConfig


class CasesConfig(AppConfig):
    name = "cases"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Every process that commits (web, worker, commands) must hand accepted saga runs to a worker.
        from audit.selectors import case_check_register

        # Importing the events module declares the app's events (nexa/platform/events.py).
        from cases import events, hotel_context, saga, selectors, services  # noqa: F401
        from cases.policy_context import case_policy_context
        from nexa.platform.outbox import register_consumer
        from notifications.selectors import CaseLookups, case_lookups_register, render_context_register
        from policies.selectors import case_context_register

        register_consumer(saga.SAGA_REQUESTED, "cases.tasks.saga_run_execute", queue="saga")
        # The engine moves a failed run's sub-case to review through this hook, in the failing
        # transaction, without importing the services that import it (docs/decisions.md, issue 10).
        saga.review_hook_register(services.subcase_send_to_review_by_system)
        # The room sagas move every occupant BOOKING → BOOKED → NOTIFIED through this one (issue 12).
        saga.subcases_hook_register(services.subcases_advance_by_system)
        # Layers below cases read cases through these hooks, never by importing it (docs/architecture.md):
        # notifications finds the passengers it notifies, audit 404s a trail of a case not the caller's.
        case_lookups_register(
            CaseLookups(
                case_get=selectors.case_get,
                subcase_get=selectors.subcase_get,
                case_manifest=selectors.case_manifest,
            )
        )
        case_check_register(selectors.case_get)
        # GET /v1/policies/resolve?caseUrn=: policies is below cases and learns a case's context through this hook.
        case_context_register(case_policy_context)
        hotel_context.register()  # caseUrn → airport for booking's hotel search
        # The hotel_voucher notification embeds the passenger's voucher page and signed link (cases/selectors.py).
        render_context_register("hotel_voucher", selectors.hotel_voucher_context)
