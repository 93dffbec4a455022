"""The base class every API view derives from, so each route honours the platform contracts."""

from rest_framework.views import APIView

from nexa.platform.idempotency import IdempotencyMixin


class NexaAPIView(IdempotencyMixin, APIView):
    """Authentication, roles, problems, throttling come from settings; idempotency from the mixin."""
