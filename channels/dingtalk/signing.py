"""DingTalk's HMAC signatures: robot callbacks and custom group robot URLs.

Both sign `timestamp + "\\n" + secret` with HmacSHA256 keyed by the secret,
base64-encoded; the timestamp is in milliseconds. DingTalk refuses (and the
hub refuses) a timestamp more than an hour away from now.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import urllib.parse

MAX_SKEW_MS = 3600 * 1000


class SignatureRejected(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def sign(timestamp_ms: str | int, secret: str) -> str:
    to_sign = f"{timestamp_ms}\n{secret}".encode()
    return base64.b64encode(hmac.new(secret.encode(), to_sign, hashlib.sha256).digest()).decode()


def check(timestamp: str | None, given: str | None, secret: str, *, now_ms: int | None = None) -> None:
    """A robot callback's `timestamp` and `sign` headers, compared in constant time."""
    if not timestamp or not given:
        raise SignatureRejected(403, "missing the timestamp or sign header: not a DingTalk robot callback")
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 16):
        raise SignatureRejected(400, f"timestamp header {timestamp[:30]!r} is not milliseconds since 1970")
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    if abs(now_ms - int(timestamp)) > MAX_SKEW_MS:
        raise SignatureRejected(403, "timestamp more than an hour off: a replayed callback, or a clock that is wrong")
    if not hmac.compare_digest(sign(timestamp, secret).encode(), given.encode()):
        raise SignatureRejected(403, "sign does not match: check the AppSecret saved for this robot")


def signed_robot_url(webhook: str, secret: str | None, *, now_ms: int | None = None) -> str:
    """A custom group robot's webhook with the timestamp and sign its 加签 setting asks for."""
    if not secret:
        return webhook
    timestamp = int(time.time() * 1000) if now_ms is None else now_ms
    separator = "&" if "?" in webhook else "?"
    return f"{webhook}{separator}timestamp={timestamp}&sign={urllib.parse.quote_plus(sign(timestamp, secret))}"
