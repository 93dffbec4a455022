"""The rooms events are published to (ARCHITECTURE §3.10): the names the outbox carries and the
Socket.IO / SSE fan-out delivers by. Every app publishes to them, so they are named here, below all.

* ``case:<case urn>`` — operators watching one case (``subscribe {caseUrn}``, the case's SSE stream);
* ``airline:<IATA>`` — every socket of the airline (dashboards, case lists).
"""


def case_room(case_urn: str) -> str:
    """Operators watching one case (``subscribe {caseUrn}``)."""
    return f"case:{case_urn}"


def airline_room(airline: str) -> str:
    """Every socket of the airline joins this room (dashboards, case lists)."""
    return f"airline:{airline}"


def case_rooms(*, case_urn: str, airline: str) -> list[str]:
    """A case's event: to the operators watching it and to the airline's room."""
    return [case_room(case_urn), airline_room(airline)]
