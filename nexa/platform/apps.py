from django.apps import AppConfig


class PlatformConfig(AppConfig):
    name = "nexa.platform"
    label = "platform"
    verbose_name = "Nexa platform"
    default_auto_field = "django.db.models.BigAutoField"
