"""The session archive (会话存档) in the WeCom simulator. What a customer writes to a rep in a 1:1
chat is never posted to the app's callback: WeCom archives it, and the hub reads it with Tencent's
finance SDK. The simulator archives it the same way: each message encrypted with a random key,
the key RSA-encrypted with the company's public key of the current version (rotated by `rotate`),
served by `finance_sdk.c`, a stand-in with the SDK's C functions that `build_sdk` compiles with gcc.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

SOURCE = Path(__file__).with_name("finance_sdk.c")


def build_sdk(directory: Path) -> Path:
    """The stand-in SDK compiled into `directory` (once per version of its source)."""
    digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:12]
    library = directory / f"libWeWorkFinanceSdk_C-{digest}.so"
    if library.exists():
        return library
    compiler = shutil.which("gcc") or shutil.which("cc")
    if compiler is None:
        raise RuntimeError("the WeCom simulator's session archive needs a C compiler (gcc) to build its "
                           "stand-in for Tencent's finance SDK")
    directory.mkdir(parents=True, exist_ok=True)
    partial = library.with_suffix(".tmp")
    subprocess.run([compiler, "-shared", "-fPIC", "-O2", "-o", str(partial), str(SOURCE)], check=True)
    partial.replace(library)
    return library


@dataclass
class Archive:
    """One corp's archive, in the files the stand-in SDK reads (`FAKE_FINANCE_DIR`)."""

    directory: Path
    corp_id: str
    secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    keys: dict[int, rsa.RSAPrivateKey] = field(default_factory=dict)
    seq: int = 0

    def __post_init__(self) -> None:
        """An archive kept in `directory` before (the demo across runs) is taken up where it was."""
        self.directory.mkdir(parents=True, exist_ok=True)
        os.environ["FAKE_FINANCE_DIR"] = str(self.directory)  # the stand-in's only setting
        secret_file, self._keys_file = (self.directory / f"{self.corp_id}.{ext}" for ext in ("secret", "keys.json"))
        if secret_file.exists() and self._keys_file.exists():
            self.secret = secret_file.read_text().strip()
            self.keys = {int(v): serialization.load_pem_private_key(pem.encode(), password=None)
                         for v, pem in json.loads(self._keys_file.read_text()).items()}
        secret_file.write_text(self.secret + "\n")
        self._data = self.directory / f"{self.corp_id}.jsonl"
        self._data.touch()
        self.seq = sum(1 for _ in self._data.open(encoding="utf-8"))
        if not self.keys:
            self.rotate()

    def rotate(self) -> int:
        """A new key pair, as when the company sets a new public key in WeCom's console."""
        version = max(self.keys, default=0) + 1
        self.keys[version] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._keys_file.write_text(json.dumps(self.private_keys_pem()))
        return version

    def private_keys_pem(self) -> dict[str, str]:
        """What the company keeps and gives the hub: the private key of every version."""
        return {str(version): key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption()).decode()
                for version, key in self.keys.items()}

    def append(self, message: dict[str, Any]) -> int:
        """Archive one message (its `msgid`, `action`, `from`, `tolist`...); its seq."""
        self.seq += 1
        version = max(self.keys)
        random_key = secrets.token_urlsafe(24)
        plain = json.dumps(message, ensure_ascii=False).encode()
        cipher = bytes(b ^ random_key.encode()[i % len(random_key)] for i, b in enumerate(plain)).hex()
        wrapped = self.keys[version].public_key().encrypt(random_key.encode(), padding.PKCS1v15())
        entry = {"seq": self.seq, "msgid": message["msgid"], "publickey_ver": version,
                 "encrypt_random_key": base64.b64encode(wrapped).decode(), "encrypt_chat_msg": cipher}
        with self._data.open("a", encoding="utf-8") as out:
            out.write(json.dumps(entry) + "\n")
        return self.seq
