from django.apps import AppConfig


class OperatorsConfig(AppConfig):
    name = "operators"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Every process that commits events (web, worker, commands) must guard sub-case writes with
        # entity locks and fan committed events out to sockets, so both register here.
        from operators import lock_guard, realtime  # noqa: F401
