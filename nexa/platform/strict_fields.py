"""JSON types as the schema states them (issue 9 §6).

DRF is lenient for form input: a ``CharField`` takes ``42`` as ``"42"``, an ``IntegerField`` takes
``"42"``, a ``FloatField`` takes ``"1.5"``. The API reads JSON only (``NexaJSONParser``) and its OpenAPI
schema says ``string``/``integer``/``number``, so a body the schema forbids was accepted. :func:`install`
makes these fields refuse another JSON type with their ``invalid`` error (a 400 problem naming the field).
Installed once, from the platform app's ``ready()``.
"""

from rest_framework import fields, serializers

_installed = False


def _strict(field_class, accepts):
    lenient = field_class.to_internal_value

    def to_internal_value(self, data):
        if not accepts(data):
            self.fail("invalid")
        return lenient(self, data)

    to_internal_value.__wrapped__ = lenient
    field_class.to_internal_value = to_internal_value


def _is_number(data) -> bool:
    return isinstance(data, int | float) and not isinstance(data, bool)


def install() -> None:
    global _installed
    if _installed:
        return
    _installed = True
    _strict(fields.CharField, lambda data: isinstance(data, str))
    _strict(
        fields.IntegerField,
        lambda data: (
            (isinstance(data, int) and not isinstance(data, bool)) or (isinstance(data, float) and data.is_integer())
        ),
    )
    _strict(fields.FloatField, _is_number)


class ClosedSerializer(serializers.Serializer):
    """A request body that refuses members it does not know (400 naming each, at most 20), as its schema says
    (additionalProperties: false, through ``nexa.platform.openapi.CLOSED_REQUEST_COMPONENTS`` or an inline
    schema)."""

    def to_internal_value(self, data):
        unknown = sorted(set(data) - set(self.fields)) if isinstance(data, dict) else []
        if unknown:
            raise serializers.ValidationError({name: "Unknown member." for name in unknown[:20]})
        return super().to_internal_value(data)
