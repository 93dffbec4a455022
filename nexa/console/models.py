"""The console's own table: an operator's UI preferences, kept per Django user (the console's sign-in).

The operator profile (operators.Operator) belongs to the operators domain and says who someone is; how
their console looks is the console's business, so it lives here and no domain reads it."""

from django.conf import settings
from django.db import models


class ConsolePreference(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="console_preference")
    language = models.CharField(max_length=8, choices=settings.LANGUAGES, default="en")

    def __str__(self) -> str:
        return f"{self.user} ({self.language})"
