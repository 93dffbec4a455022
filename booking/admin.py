"""Django admin of the booking domain (each part registers its own models)."""

from booking.contracts import admin as contracts_admin  # noqa: F401
