"""Signatures that do not cover the body, remembered so that one cannot carry another body.

DingTalk's robot callback signs only its timestamp, and a WeChat Official Account
in plain mode signs only the timestamp and nonce: a captured signature would
sign any body while its timestamp is accepted. Each signature seen is kept with
a digest of its body for as long as it stays valid. The same signature again
with the same body is the platform retrying (let through; the message id makes
it a no-op); with another body it is a forgery, refused. Per process; the
oldest go first beyond `capacity`.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict


class ReplayedSignature(Exception):
    """A signature seen before with another body."""


class ReplayGuard:
    def __init__(self, valid_for_seconds: float, capacity: int = 100_000) -> None:
        self.valid_for = valid_for_seconds
        self.capacity = capacity
        self._seen: OrderedDict[tuple[str, ...], tuple[float, str]] = OrderedDict()

    def check(self, signature: tuple[str, ...], body: bytes, *, now: float | None = None) -> None:
        """Remember `signature` (with what scopes it: the account) and `body`; raise
        ReplayedSignature if it came before with another body."""
        now = time.time() if now is None else now
        while self._seen:
            key, (at, _) = next(iter(self._seen.items()))
            if now - at <= self.valid_for and len(self._seen) < self.capacity:
                break
            del self._seen[key]
        digest = hashlib.sha256(body).hexdigest()
        earlier = self._seen.get(signature)
        if earlier is None:
            self._seen[signature] = (now, digest)
        elif earlier[1] != digest:
            raise ReplayedSignature("this signature came earlier with another body: a replayed signature, refused")
