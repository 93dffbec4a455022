"""OpenAPI (drf-spectacular): bearer auth, problem responses and the Idempotency-Key header on
every operation, so generated SDKs know the platform contracts."""

import copy

from django.conf import settings
from drf_spectacular.drainage import get_override, set_override
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers
from rest_framework.fields import empty

from nexa.platform.urns import OPAQUE_URN_MAX_LENGTH
from nexa.platform.urns import OPAQUE_URN_PATTERN as _OPAQUE_URN_PATTERN


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


def with_schema[F: serializers.Field](field: F, schema: dict) -> F:
    """``field`` documented with ``schema`` (what the service that validates it really accepts).

    DRF deep-copies declared fields by re-instantiating their class, so the schema lives on a subclass."""
    base = type(field)
    stated = type(base.__name__, (base,), {"__module__": base.__module__, "_nexa_stated_schema": True})
    field.__class__ = set_override(stated, "field", schema)
    return field


def problem(description: str) -> OpenApiResponse:
    return OpenApiResponse(response=ProblemSerializer, description=description)


# --- what the server really enforces, stated once -------------------------------------------------

# nexa.platform.urns: urn:nexa:<kind>:<UUID, lower-case hex, canonical form>.
URN_ID_PATTERN = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
EXAMPLE_ID = "019371a8-5e2c-7c3d-9a4b-2f6e8d1c0b7a"


def urn_pattern(kind: str) -> str:
    return f"^urn:nexa:{kind}:{URN_ID_PATTERN}$"


def urn_schema(kind: str) -> dict:
    return {"type": "string", "pattern": urn_pattern(kind), "example": f"urn:nexa:{kind}:{EXAMPLE_ID}"}


# Any URN the server accepts where the kind is open (an operator URN comes from the token claim verbatim,
# an audited entity may be of any kind): "urn:", no control character, at most 255 characters.
OPAQUE_URN_PATTERN = _OPAQUE_URN_PATTERN.removesuffix("\\Z") + "$"

# Path parameters by name → URN kind (None: an opaque URN, see above).
PATH_URN_KINDS: dict[str, str | None] = {
    "case_urn": "case",
    "sub_case_urn": "subcase",
    "saga_urn": "saga",
    "policy_urn": "policy",
    "entity_urn": None,
    "operator_urn": None,
}

# nexa.platform.idempotency.parse_idempotency_key: a bare key of 1-255 visible ASCII characters (not
# starting with a quote), or an RFC 8941 string of 1-255 printable ASCII characters where '"' and '\\'
# are escaped.
IDEMPOTENCY_KEY_SCHEMA = {
    "type": "string",
    "minLength": 1,
    "maxLength": 2 + 2 * 255,
    "pattern": '^(?:[!#-~][!-~]{0,254}|"(?:[ !#-\\[\\]-~]|\\\\["\\\\]){1,255}")$',
    "example": "4f1c2b8e-6a7d-4e2f-9b3c-1d5e7f9a0b2c",
}

PROBLEM_SCHEMA = {
    "type": "object",
    "description": (
        "RFC 9457 problem details (nexa.platform.problems). Extension members: errors (400/422), lockedBy and "
        "expiresInSeconds (lock 409), version (OCC 409), failedDomain (503, with Retry-After: 30); a route may "
        "add its own (e.g. existingCaseUrn)."
    ),
    "properties": {
        "type": {"type": "string", "format": "uri", "example": "https://api.nexa/problems/validation-error"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "instance": {
            "type": "string",
            "description": "The request's correlation URN (also in X-Correlation-Id).",
            "example": f"urn:nexa:correlation:{EXAMPLE_ID}",
        },
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
                "required": ["field", "message"],
            },
        },
        "lockedBy": {"type": "string", "nullable": True, "description": "Operator URN holding the lock."},
        "expiresInSeconds": {"type": "integer", "minimum": 0},
        "version": {"type": "integer", "description": "The current version (optimistic concurrency)."},
        "failedDomain": {"type": "string", "description": "The dependency whose circuit is open."},
    },
    "required": ["type", "title", "status", "detail", "instance"],
    "additionalProperties": True,
}

# cases.manifest.normalise_flight_number: whitespace removed, upper-cased, then an IATA/ICAO flight number.
FLIGHT_NUMBER_SCHEMA = {
    "type": "string",
    "pattern": r"^[\s\x1c-\x1f]*(?:[A-Za-z0-9]{2}|[A-Za-z]{3})[\s\x1c-\x1f]*[0-9]{1,4}[A-Za-z]?[\s\x1c-\x1f]*$",
    "example": "IB3166",
}
# A string the service strips (str.strip / str.split) before requiring it: at least one character that is
# not whitespace to Python, whose whitespace also counts U+001C..U+001F (Unicode's White_Space does not).
NON_BLANK = r"[^\s\x1c-\x1f]"

# Request bodies whose validator refuses unknown members (cases.manifest rows).
CLOSED_REQUEST_COMPONENTS = (
    "PassengerRowRequest",
    "ContractWriteRequest",
    "ContractRateRequest",
    "AllocateRequestRequest",
    "BookRoomsRequestRequest",
    "ManualReservationRequestRequest",
    "ManualReservationRateRequest",
    "ReviewRebookRequest",
    "ReviewOverrideRequest",
    "ReviewRelaxRequest",
    "ReviewSplitRequest",
)

# A query parameter the server reads as absent when it is sent empty (``?status=``): allowEmptyValue.
EMPTY_IS_ABSENT = {"x-nexa-empty-is-absent": True}
DATE_OR_DATE_TIME_SCHEMA = {"type": "string", "anyOf": [{"format": "date"}, {"format": "date-time"}]}

PROBLEM_MEDIA_TYPE = "application/problem+json"
_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}

_PROBLEMS_EVERYWHERE = {
    "400": "Invalid input: errors lists each field ({field, message}).",
    "401": "Missing, invalid, expired or revoked bearer token.",
    "403": "Your role is below the route's minimum.",
    "429": "Rate limited; honour Retry-After.",
    "500": "Unexpected error; quote the instance URN (never expected: the fuzzer fails on any 5xx).",
}
_PROBLEMS_POST = {
    "409": "Conflict: the Idempotency-Key is in flight, a lock is held (lockedBy, expiresInSeconds), "
    "the version is stale (version) …",
    "413": "Request body too large.",
    "415": "Send application/json.",
    "422": "Same Idempotency-Key with a different body, or a request that cannot be processed.",
    "503": "A downstream service's circuit is open (failedDomain); retry after Retry-After seconds.",
}
_PROBLEM_404 = "Not found (another airline's object is a 404 too)."
IDEMPOTENCY_KEY = OpenApiParameter(
    name="Idempotency-Key",
    location=OpenApiParameter.HEADER,
    required=False,
    type=IDEMPOTENCY_KEY_SCHEMA,
    description=(
        "Makes the POST safe to retry for 24 h: a replay returns the first response with "
        "Idempotent-Replayed: true. 1 to 255 visible ASCII characters (UUID v4 recommended), bare or as an "
        "RFC 8941 quoted string."
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

    def _insert_field_validators(self, field, schema):
        if getattr(type(field), "_nexa_stated_schema", False):
            return  # with_schema(): stated in full
        super()._insert_field_validators(field, schema)

    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        stated = get_override(field, "field")
        if isinstance(stated, dict) and getattr(type(field), "_nexa_stated_schema", False):
            # with_schema(): the schema is stated in full; drf-spectacular must not widen it (allow_blank …).
            schema = copy.deepcopy(stated)
            if field.help_text and "description" not in schema:
                schema["description"] = str(field.help_text)
            if field.default is not empty and field.default is not None and not callable(field.default):
                schema.setdefault("default", field.default)
            return schema
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        if (
            direction == "request"
            and isinstance(field, serializers.ListField)
            and not field.allow_empty
            and schema.get("type") == "array"
        ):
            schema.setdefault("minItems", 1)
        if (
            direction == "request"
            and isinstance(field, serializers.CharField)
            and not isinstance(field, serializers.ChoiceField)
            and getattr(field, "trim_whitespace", False)
            and not getattr(field, "allow_blank", True)
            and schema.get("type") == "string"
            and "pattern" not in schema
            and "format" not in schema
            and "enum" not in schema
        ):
            # DRF strips surrounding whitespace before its blank check: "   " is refused like "".
            schema["pattern"] = NON_BLANK
        return schema


def _problem_response(description: str) -> dict:
    return {"description": description, "content": {PROBLEM_MEDIA_TYPE: {"schema": dict(_PROBLEM_REF)}}}


def _is_problem_schema(schema: dict | None) -> bool:
    return bool(schema) and schema.get("$ref") == _PROBLEM_REF["$ref"]


def _exact_parameter(parameter: dict) -> None:
    schema = parameter.setdefault("schema", {"type": "string"})
    name, location = parameter["name"], parameter["in"]
    if parameter.pop("x-nexa-empty-is-absent", False) and location == "query":
        parameter["allowEmptyValue"] = True
    if location == "path" and name in PATH_URN_KINDS:
        kind = PATH_URN_KINDS[name]
        if kind is None:
            schema.update(
                {
                    "type": "string",
                    "pattern": OPAQUE_URN_PATTERN,
                    "minLength": len("urn:"),
                    "maxLength": OPAQUE_URN_MAX_LENGTH,
                }
            )
        else:
            schema.update(urn_schema(kind))
    elif location == "query" and name == "limit" and schema.get("type") == "integer":
        schema.setdefault("minimum", 1)
        schema.setdefault("maximum", settings.NEXA_PAGE_SIZE_MAX)


def postprocess_exact_schema(result, generator, request, public):
    """drf-spectacular postprocessing hook: every operation states what the server really enforces —
    URN patterns on path parameters, bounds on limit — and documents every problem it can answer
    (``application/problem+json``, the Problem schema) by status: 400/401/403/429/500 everywhere, 404 with a
    path parameter, 409/413/415/422/503 on POST."""
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            for parameter in operation.get("parameters", []):
                _exact_parameter(parameter)
            body = operation.get("requestBody") or {}
            inline = ((body.get("content") or {}).get("application/json") or {}).get("schema") or {}
            # An inline body schema with required members, or that needs at least one (e.g. "exactly one of
            # reviewUrn and caseUrn"): the body is required (no body is a 400).
            if inline.get("required") or inline.get("minProperties"):
                body["required"] = True
            responses = operation.setdefault("responses", {})
            for status, response in list(responses.items()):
                if not str(status).startswith(("4", "5")):
                    continue
                content = response.get("content") or {}
                json_content = content.pop("application/json", None)
                if json_content is not None or not content:
                    content[PROBLEM_MEDIA_TYPE] = {"schema": dict(_PROBLEM_REF)}
                elif PROBLEM_MEDIA_TYPE in content and not _is_problem_schema(
                    content[PROBLEM_MEDIA_TYPE].get("schema")
                ):
                    content[PROBLEM_MEDIA_TYPE]["schema"] = dict(_PROBLEM_REF)
                response["content"] = content
            wanted = dict(_PROBLEMS_EVERYWHERE)
            if "{" in path:
                wanted["404"] = _PROBLEM_404
            if method == "post":
                wanted.update(_PROBLEMS_POST)
            for status, description in wanted.items():
                responses.setdefault(status, _problem_response(description))
            operation["responses"] = dict(sorted(responses.items()))
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    for name in CLOSED_REQUEST_COMPONENTS:
        if name in schemas:
            schemas[name]["additionalProperties"] = False
    return result


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
