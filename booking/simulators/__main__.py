import sys

from booking.simulators.common import serve_main
from booking.simulators.hotels import HotelVendorsSimulator
from booking.simulators.psp import PspSimulator
from booking.simulators.transport import TransportSimulator

if __name__ == "__main__":
    sys.exit(
        serve_main(
            "booking.simulators",
            {"psp": PspSimulator, "transport": TransportSimulator, "hotels": HotelVendorsSimulator},
        )
    )
