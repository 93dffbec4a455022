"""Simulators of booking's external providers: the PSP, ground transport and the hotel vendors (docs/providers.md).

python -m booking.simulators psp --port 8710
python -m booking.simulators transport --port 8711
python -m booking.simulators hotels --port 8713
"""
