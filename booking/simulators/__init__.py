"""Simulators of booking's external providers: the PSP and ground transport (docs/providers.md).

python -m booking.simulators psp --port 8710
python -m booking.simulators transport --port 8711
"""
