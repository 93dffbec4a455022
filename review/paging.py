"""Signing of on-call pages (the SLA sweep's webhook), shared by the sender and by receivers' checks.

A page is ``POST <alert_webhook_url>`` with a JSON body and two headers:

* ``X-Nexa-Timestamp`` — Unix seconds when the attempt was signed;
* ``X-Nexa-Signature`` — ``sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>``.

A receiver recomputes the HMAC over the timestamp it received and the raw body, compares in constant time,
and refuses a timestamp too far from its clock (replays). Each retry is signed afresh.
"""

import hashlib
import hmac

TIMESTAMP_HEADER = "X-Nexa-Timestamp"
SIGNATURE_HEADER = "X-Nexa-Signature"
SCHEME = "sha256="


def sign(*, secret: str, timestamp: int, body: bytes) -> str:
    message = str(int(timestamp)).encode("ascii") + b"." + body
    return SCHEME + hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def verify(*, secret: str, timestamp: str, body: bytes, signature: str, now: int, tolerance: int = 300) -> bool:
    """What a receiver checks: a well-formed recent timestamp and the signature over it and the body."""
    if not timestamp.isascii() or not timestamp.isdigit() or abs(now - int(timestamp)) > tolerance:
        return False
    return hmac.compare_digest(sign(secret=secret, timestamp=int(timestamp), body=body), signature)
