from django.apps import AppConfig
from django.db.models.signals import post_save


class OperatorsConfig(AppConfig):
    name = "operators"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Every process that commits events (web, worker, commands) must guard sub-case writes with
        # entity locks and fan committed events out to sockets, so both register here. Every process
        # that authenticates principals refuses deactivated operators (operators/principal_check.py).
        from operators import lock_guard, principal_check, realtime  # noqa: F401
        from operators.models import Operator

        post_save.connect(principal_check.operator_saved, sender=Operator, dispatch_uid="operators.active_index")
