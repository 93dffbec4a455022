from django.apps import AppConfig


class PlatformConfig(AppConfig):
    name = "nexa.platform"
    label = "platform"
    verbose_name = "Nexa platform"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from nexa.platform import strict_fields

        strict_fields.install()
