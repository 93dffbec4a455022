"""Idempotency-Key handling for every POST (ARCHITECTURE §3.6). See IdempotencyMixin."""


class IdempotencyMixin:
    """Placeholder until the idempotency contract lands; views inherit it through NexaAPIView."""
