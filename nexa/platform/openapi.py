"""OpenAPI (drf-spectacular): bearer auth, problem responses and the Idempotency-Key header on
every operation, so generated SDKs know the platform contracts."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers


class ProblemErrorSerializer(serializers.Serializer):
    field = serializers.CharField()
    message = serializers.CharField()


class ProblemSerializer(serializers.Serializer):
    """RFC 9457 problem details. Extension members appear where the route documents them."""

    type = serializers.URLField()
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField()
    instance = serializers.CharField(help_text="The request's correlation URN (also in X-Correlation-Id).")
    errors = ProblemErrorSerializer(many=True, required=False)
    lockedBy = serializers.CharField(required=False, allow_null=True)  # noqa: N815 - wire name
    expiresInSeconds = serializers.IntegerField(required=False)  # noqa: N815
    version = serializers.IntegerField(required=False)
    failedDomain = serializers.CharField(required=False)  # noqa: N815

    class Meta:
        ref_name = "Problem"


def problem(description: str) -> OpenApiResponse:
    return OpenApiResponse(response=ProblemSerializer, description=description)


_COMMON_PROBLEMS = {
    "400": "Invalid input (errors lists each field).",
    "401": "Missing, invalid, expired or revoked bearer token.",
    "403": "Your role is below the route's minimum.",
    "429": "Rate limited; honour Retry-After.",
    "500": "Unexpected error; quote the instance URN.",
}
_POST_PROBLEMS = {
    "409": "Conflict (idempotency key in flight, lock held, stale version …).",
    "413": "Request body too large.",
    "415": "Send application/json.",
    "422": "Same Idempotency-Key with a different body, or a request that cannot be processed.",
}

IDEMPOTENCY_KEY = OpenApiParameter(
    name="Idempotency-Key",
    location=OpenApiParameter.HEADER,
    required=False,
    type=str,
    description=(
        "Makes the POST safe to retry for 24 h: a replay returns the first response with "
        "Idempotent-Replayed: true. UUID v4 recommended; may be an RFC 8941 quoted string."
    ),
)
CORRELATION_ID = OpenApiParameter(
    name="X-Correlation-Id",
    location=OpenApiParameter.HEADER,
    required=False,
    type=str,
    description="Your correlation id (urn:nexa:correlation:<uuid> or a UUID); W3C traceparent is honoured too.",
)


class NexaAutoSchema(AutoSchema):
    def get_override_parameters(self):
        parameters = list(super().get_override_parameters())
        parameters.append(CORRELATION_ID)
        if self.method == "POST":
            parameters.append(IDEMPOTENCY_KEY)
        return parameters

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        extra = dict(_COMMON_PROBLEMS)
        if self.method == "POST":
            extra.update(_POST_PROBLEMS)
        if "{" in self.path:
            extra["404"] = "Not found (another airline's object is a 404 too)."
        for status, description in extra.items():
            if status not in responses:
                responses[status] = self._get_response_for_code(
                    problem(description), status, media_types=["application/problem+json"], direction=direction
                )
        return responses


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "nexa.platform.auth.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": (
                "OIDC access token (audience https://api.nexa/v1) with https://nexa/airline, "
                "https://nexa/role and https://nexa/operator_urn claims."
            ),
        }
