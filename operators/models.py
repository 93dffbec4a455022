"""Tables owned by the operators domain."""

from django.conf import settings
from django.db import models

from nexa.platform.roles import Role


class Operator(models.Model):
    """A person who works cases for one airline: the subject of a token's ``operator_urn`` claim.

    ``user`` links the profile to a Django user only for the console's development login and
    Django admin; API callers are identified by their token, never by this row.
    """

    operator_urn = models.CharField(max_length=255, unique=True)
    airline = models.CharField(max_length=3, db_index=True, help_text="IATA airline code (the tenant).")
    role = models.CharField(max_length=20, choices=[(role.value, role.value) for role in Role])
    display_name = models.CharField(max_length=200)
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="operator",
    )
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["airline", "operator_urn"]

    def __str__(self) -> str:
        return f"{self.display_name} ({self.airline} {self.role})"
