"""The simulator server base (shared with notifications' simulators, so it lives in ``nexa.platform``)."""

from nexa.platform.simulator import (
    DROP,
    Simulator,
    SimulatorError,
    iso,
    make_server,
    money,
    new_id,
    parse_amount,
    parse_time,
    require,
    route,
    serve_main,
    utcnow,
)

__all__ = [
    "DROP",
    "Simulator",
    "SimulatorError",
    "iso",
    "make_server",
    "money",
    "new_id",
    "parse_amount",
    "parse_time",
    "require",
    "route",
    "serve_main",
    "utcnow",
]
