"""Events of the contracts part of the booking domain.

* ``contract:changed`` ``{contractUrn, version, change, hotelUrn, airport, validFrom, validTo}``: internal, to no
  room (not one of spec 000's client events; no Socket.IO client receives it). ``change`` is ``created`` or
  ``updated``. Consumers (the hotel search's caches, allocation) register with
  ``nexa.platform.outbox.register_consumer(CONTRACT_CHANGED, …)`` and are idempotent by event id.
"""

from typing import Any, Literal

from nexa.platform import events as registry
from nexa.platform.events import Annotated, Audience, TypedDict, Urn
from nexa.platform.outbox import publish

CONTRACT_CHANGED = "contract:changed"


class ContractChanged(TypedDict):
    contractUrn: Annotated[str, Urn("contract")]
    version: int
    change: Literal["created", "updated"]
    hotelUrn: Annotated[str, Urn("hotel")]
    airport: str
    validFrom: str
    validTo: str


registry.declare(
    CONTRACT_CHANGED,
    payload=ContractChanged,
    audience=Audience.INTERNAL,
    description="A direct contract was created or got a new version",
)


def contract_changed_payload(*, contract, change: str) -> dict[str, Any]:
    return {
        "contractUrn": contract.urn,
        "version": contract.version,
        "change": change,
        "hotelUrn": contract.hotel_urn,
        "airport": contract.airport,
        "validFrom": contract.valid_from.isoformat(),
        "validTo": contract.valid_to.isoformat(),
    }


def publish_contract_changed(*, contract, change: str) -> None:
    """Call inside the transaction that wrote the version (the outbox delivers after commit)."""
    publish(CONTRACT_CHANGED, contract_changed_payload(contract=contract, change=change), [], airline=contract.airline)
