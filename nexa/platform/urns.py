"""Public identifiers: ``urn:nexa:<kind>:<time-ordered id>`` (ARCHITECTURE §3.4).

The id is a UUIDv7, so URNs sort by creation time and keyset pagination over them is stable.
"""

import re
import uuid
from dataclasses import dataclass

import uuid6

KINDS = frozenset(
    {
        "case",
        "subcase",
        "group",
        "demand",
        "allocation",
        "room-night",
        "hotel",
        "reservation",
        "policy",
        "contract",
        "review",
        "agent-action",
        "transfer",
        "notification",
        "step",
        "saga",
        "search",
        "correlation",
        "event",
        "audit",
    }
)

_URN_PATTERN = re.compile(
    r"^urn:nexa:(?P<kind>[a-z][a-z-]*):"
    r"(?P<id>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\Z"
)
# A URN whose kind is open (an operator URN from a token claim, an audited entity of any kind): "urn:",
# no control character, at most OPAQUE_URN_MAX_LENGTH characters. The OpenAPI schema states the same.
OPAQUE_URN_MAX_LENGTH = 255
OPAQUE_URN_PATTERN = r"^urn:[^\x00-\x1f\x7f]*\Z"
_OPAQUE_URN = re.compile(OPAQUE_URN_PATTERN)


def is_opaque_urn(value: object) -> bool:
    return isinstance(value, str) and len(value) <= OPAQUE_URN_MAX_LENGTH and _OPAQUE_URN.match(value) is not None


class InvalidUrn(ValueError):
    """A URN that is malformed or of the wrong kind; the API answers 400."""

    def __init__(self, value: str, expected_kind: str | None, message: str):
        super().__init__(message)
        self.value = value
        self.expected_kind = expected_kind
        self.message = message


@dataclass(frozen=True, slots=True)
class Urn:
    kind: str
    id: uuid.UUID

    def __str__(self) -> str:
        return f"urn:nexa:{self.kind}:{self.id}"


def new_id() -> uuid.UUID:
    """A time-ordered UUID (v7) for primary keys."""
    return uuid.UUID(int=uuid6.uuid7().int)


def new_urn(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"unknown URN kind {kind!r}")
    return f"urn:nexa:{kind}:{new_id()}"


def format_urn(kind: str, id_: uuid.UUID) -> str:
    if kind not in KINDS:
        raise ValueError(f"unknown URN kind {kind!r}")
    return f"urn:nexa:{kind}:{id_}"


def parse_urn(value: object, kind: str | None = None) -> Urn:
    """Parse ``value``; with ``kind``, also require that kind. Raises :class:`InvalidUrn`."""
    if not isinstance(value, str):
        raise InvalidUrn(str(value), kind, "a URN must be a string")
    match = _URN_PATTERN.match(value)
    if match is None:
        raise InvalidUrn(value, kind, f"{value[:80]!r} is not a URN of the form urn:nexa:<kind>:<uuid>")
    found_kind = match.group("kind")
    if found_kind not in KINDS:
        raise InvalidUrn(value, kind, f"unknown URN kind {found_kind!r}")
    if kind is not None and found_kind != kind:
        raise InvalidUrn(value, kind, f"expected a urn:nexa:{kind}:… URN, got a {found_kind} URN")
    return Urn(kind=found_kind, id=uuid.UUID(match.group("id")))
