"""Tables owned by the operators domain."""

from django.conf import settings
from django.db import models
from django.db.models.functions import Now

from nexa.platform.roles import Role


class Operator(models.Model):
    """A person who works cases for one airline: the subject of a token's ``operator_urn`` claim.

    ``user`` links the profile to a Django user only for the console's development login and
    Django admin; API callers are identified by their token, never by this row.
    """

    operator_urn = models.CharField(
        max_length=255, help_text="The token's operator URN; unique per airline (identity is airline + URN)."
    )
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
    last_seen_at = models.DateTimeField(
        null=True, blank=True, help_text="When the operator's last socket was last heard from (after it closed)."
    )

    class Meta:
        ordering = ["airline", "operator_urn"]
        constraints = [
            # Identity is (airline, operator URN): two airlines' providers may issue the same URN, and
            # neither may see or act on the other's profile.
            models.UniqueConstraint(fields=["airline", "operator_urn"], name="operator_unique_per_airline"),
        ]

    def __str__(self) -> str:
        return f"{self.display_name} ({self.airline} {self.role})"


class EntityLock(models.Model):
    """A lease on one entity (today: a sub-case), in PostgreSQL (ARCHITECTURE §4).

    One row per entity, created on its first lock and kept for ever after: ``fencing_token`` grows on
    every grant and survives releases, so a token is never issued twice for the same entity. The row is
    free when ``holder`` is null or ``expires_at`` has passed (the database clock decides; expiry times
    are always computed in SQL as ``now() + lease``). Writes go through :mod:`operators.services` only.
    """

    entity_urn = models.CharField(max_length=255, unique=True)
    airline = models.CharField(max_length=3, help_text="IATA airline code (the tenant).")
    case_urn = models.CharField(max_length=255, help_text="The case the entity belongs to (its event room).")
    # Null (not "") means free: the acquire statement tests ``holder IS NULL``.
    holder = models.CharField(  # noqa: DJ001
        max_length=255, null=True, blank=True, help_text="Operator URN; null when free."
    )
    previous_holder = models.CharField(  # noqa: DJ001
        max_length=255, null=True, blank=True, help_text="Holder before the last change (for the audit trail)."
    )
    fencing_token = models.BigIntegerField(default=0, help_text="Incremented on every grant; never reused.")
    expires_at = models.DateTimeField(help_text="End of the lease (database clock).")
    granted_at = models.DateTimeField(help_text="When the current (or last) holder was granted the lease.")

    class Meta:
        indexes = [
            models.Index(fields=["airline", "holder"], name="entitylock_holder_idx"),
            models.Index(
                fields=["expires_at"], name="entitylock_held_expiry_idx", condition=models.Q(holder__isnull=False)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.entity_urn} → {self.holder or 'free'} (token {self.fencing_token})"


class OperatorSession(models.Model):
    """One live Socket.IO connection of an operator (presence). Deleted when the socket closes, or by
    the stale-session sweep when its server process stopped sending heartbeats."""

    session_id = models.CharField(max_length=64, primary_key=True, help_text="The Socket.IO session id.")
    operator_urn = models.CharField(max_length=255)
    airline = models.CharField(max_length=3, help_text="IATA airline code (the tenant).")
    role = models.CharField(max_length=20, choices=[(role.value, role.value) for role in Role])
    server_instance = models.CharField(max_length=255, help_text="host:pid of the ASGI process holding the socket.")
    connected_at = models.DateTimeField(db_default=Now())
    last_seen_at = models.DateTimeField(db_default=Now())

    class Meta:
        indexes = [
            models.Index(fields=["airline", "operator_urn"], name="opsession_operator_idx"),
            models.Index(fields=["last_seen_at"], name="opsession_last_seen_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.operator_urn} on {self.server_instance} ({self.session_id})"
