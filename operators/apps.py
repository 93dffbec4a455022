from django.apps import AppConfig


class OperatorsConfig(AppConfig):
    name = "operators"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Every process that commits events (web, worker, commands) must guard sub-case writes with
        # entity locks and fan committed events out to sockets, so both register here.
        from nexa.platform.admin import admin_actor_resolver_register
        from operators import lock_guard, realtime  # noqa: F401
        from operators.permissions import admin_actor_for_user

        # Django admin's tenant wall learns who a signed-in user is from their operator profile.
        admin_actor_resolver_register(admin_actor_for_user)
