"""Encryption of channel credentials at rest, keyed by the hub's secret key."""

from __future__ import annotations

import base64
import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class CredentialsUnreadable(Exception):
    pass


class CredentialCipher:
    """Fernet (AES-128-CBC + HMAC) with a key derived from SCRM_SECRET_KEY."""

    def __init__(self, secret_key: str) -> None:
        if len(secret_key) < 16:
            raise ValueError("SCRM_SECRET_KEY must be at least 16 characters; generate one with `scrm secret`")
        raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"scrm-hub", info=b"channel-credentials").derive(
            secret_key.encode()
        )
        self._fernet = Fernet(base64.urlsafe_b64encode(raw))

    def encrypt(self, credentials: dict[str, Any]) -> str:
        return self._fernet.encrypt(json.dumps(credentials, sort_keys=True).encode()).decode()

    def decrypt(self, token: str) -> dict[str, Any]:
        try:
            return json.loads(self._fernet.decrypt(token.encode()))
        except InvalidToken as exc:
            raise CredentialsUnreadable(
                "channel credentials cannot be decrypted: SCRM_SECRET_KEY differs from the key they were "
                "saved with; restore the old key or re-enter the credentials"
            ) from exc
