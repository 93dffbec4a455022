"""Masked contact details: what the log API, events and audit rows show instead of an address.

``+34600123456`` → ``+34******456``; ``maria@example.com`` → ``m***@example.com``.
"""

import re

_NOT_DIGIT = re.compile(r"\D")


def mask_phone(phone: str) -> str:
    """Keep a leading ``+``, the first two digits (country code) and the last three; star the rest."""
    digits = _NOT_DIGIT.sub("", phone or "")
    if not digits:
        return ""
    prefix = "+" if phone.strip().startswith("+") else ""
    if len(digits) <= 6:
        # Too short to show both ends without revealing most of it.
        return prefix + "*" * (len(digits) - 2) + digits[-2:] if len(digits) > 2 else prefix + "*" * len(digits)
    return prefix + digits[:2] + "*" * (len(digits) - 5) + digits[-3:]


def mask_email(email: str) -> str:
    """The local part's first character, ``***``, and the domain."""
    email = (email or "").strip()
    if not email:
        return ""
    local, at, domain = email.rpartition("@")
    if not at or not local:
        return "***"
    return f"{local[0]}***@{domain}"


def mask_recipient(channel: str, recipient: str) -> str:
    return mask_email(recipient) if channel == "EMAIL" else mask_phone(recipient)
