from django.apps import AppConfig
from django.db.models.signals import post_save


class OperatorsConfig(AppConfig):
    name = "operators"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Every process that commits events (web, worker, commands) must guard sub-case writes with
        # entity locks and fan committed events out to sockets, so both register here. Every process
        # that authenticates principals refuses deactivated operators (operators/principal_check.py).
        from nexa.platform.admin import admin_actor_resolver_register
        from operators import lock_guard, principal_check, realtime  # noqa: F401
        from operators.models import Operator
        from operators.permissions import admin_actor_for_user

        post_save.connect(principal_check.operator_saved, sender=Operator, dispatch_uid="operators.active_index")
        # Django admin's tenant wall learns who a signed-in user is from their operator profile.
        admin_actor_resolver_register(admin_actor_for_user)
