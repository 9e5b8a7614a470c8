"""Verifying gpumesh webhook deliveries (docs/push.md: HMAC-SHA256 of "<timestamp>.<raw body>")."""

import hashlib
import hmac
import time
from typing import Mapping, Optional, Union


def sign_webhook(secret: str, timestamp: Union[int, str], raw_body: bytes) -> str:
    """The ``x-gpumesh-signature`` value the coordinator sends for this body and timestamp."""
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + raw_body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_webhook(
    secret: str,
    raw_body: bytes,
    headers: Mapping[str, str],
    tolerance_seconds: int = 300,
    now: Optional[float] = None,
) -> bool:
    """Whether a delivery is genuine and fresh.

    ``raw_body`` is the bytes received (before any JSON parsing); ``headers`` are looked up by
    their lower-case names (``x-gpumesh-timestamp``, ``x-gpumesh-signature``). Timestamps more
    than ``tolerance_seconds`` from ``now`` are refused, so a captured delivery cannot be replayed.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    timestamp = lowered.get("x-gpumesh-timestamp") or ""
    signature = lowered.get("x-gpumesh-signature") or ""
    if not (timestamp.isascii() and timestamp.isdigit()):
        return False
    clock = time.time() if now is None else now
    if abs(clock - int(timestamp)) > tolerance_seconds:
        return False
    expected = sign_webhook(secret, timestamp, raw_body)
    return hmac.compare_digest(expected.encode(), signature.encode())
