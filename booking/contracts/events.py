"""Events of the contracts part of the booking domain.

* ``contract:changed`` ``{contractUrn, version, change, hotelUrn, airport, validFrom, validTo}``: internal, to no
  room (not one of spec 000's client events; no Socket.IO client receives it). ``change`` is ``created`` or
  ``updated``. Consumers (the hotel search's caches, allocation) register with
  ``nexa.platform.outbox.register_consumer(CONTRACT_CHANGED, …)`` and are idempotent by event id.
"""

from typing import Any

from nexa.platform.outbox import publish

CONTRACT_CHANGED = "contract:changed"


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
