"""Simulators of notifications' external providers (docs/providers.md).

python -m notifications.simulators sms --port 8712     # SMS and WhatsApp on one process
"""
