"""会话存档 (WeCom's session archive): what reps and customers say to each other, read with
Tencent's finance SDK, a C library (`libWeWorkFinanceSdk_C.so`) that no package registry carries.
The operator downloads it from WeCom's console and gives its path; it is loaded with ctypes.

GetChatData returns entries from a `seq` on; each carries the message encrypted with a random key,
and that key encrypted (RSA, PKCS #1 v1.5) with the company's public key of version
`publickey_ver`. The hub decrypts the key with the matching private key (keys rotate: several may be
configured) and hands it to DecryptData for the message. Pictures, voice and files are read with
GetMediaData by their `sdkfileid`, piece by piece. The calls block, so they run in a thread.
"""

from __future__ import annotations

import base64
import ctypes
import json
import threading
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

# The SDK's own error codes (WeWorkFinanceSdk_C.h).
SDK_ERRORS = {
    10000: "bad parameters (corp id, Secret, seq or limit)", 10001: "network error reaching WeCom",
    10002: "WeCom's data could not be parsed", 10003: "system error", 10004: "key error",
    10005: "bad fileid", 10006: "decryption failed", 10007: "no private key for the message's key version",
    10008: "encrypt_key could not be parsed", 10009: "this server's IP is not allowed (set it in WeCom's console)",
    10010: "the data has expired", 10011: "certificate error",
}


class ArchiveUnavailable(Exception):
    """The SDK cannot be used: not configured, not loadable, or refused; the message says which."""


class _Slice(ctypes.Structure):
    _fields_ = [("buf", ctypes.c_char_p), ("len", ctypes.c_int)]


class _MediaData(ctypes.Structure):
    _fields_ = [("outindexbuf", ctypes.c_char_p), ("out_len", ctypes.c_int), ("data", ctypes.c_void_p),
                ("data_len", ctypes.c_int), ("is_finish", ctypes.c_int)]


MAX_MEDIA_BYTES = 100 * 2**20  # an archived file larger than this is not read into memory


class FinanceSdk:
    """One initialized SDK instance; thread-safe for the hub's use (calls are serialized)."""

    def __init__(self, library_path: str, corp_id: str, secret: str) -> None:
        try:
            lib = ctypes.CDLL(library_path)
        except OSError as exc:
            raise ArchiveUnavailable(f"cannot load WeCom's finance SDK from {library_path!r} ({exc}): download "
                                     "libWeWorkFinanceSdk_C.so from WeCom's console (管理工具 → 会话内容存档) "
                                     "and set its path on the channel's page") from None
        lib.NewSdk.restype = ctypes.c_void_p
        lib.Init.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p]
        lib.Init.restype = ctypes.c_int
        lib.GetChatData.argtypes = [ctypes.c_void_p, ctypes.c_ulonglong, ctypes.c_uint, ctypes.c_char_p,
                                    ctypes.c_char_p, ctypes.c_int, ctypes.POINTER(_Slice)]
        lib.GetChatData.restype = ctypes.c_int
        lib.DecryptData.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(_Slice)]
        lib.DecryptData.restype = ctypes.c_int
        lib.NewSlice.restype = ctypes.POINTER(_Slice)
        lib.FreeSlice.argtypes = [ctypes.POINTER(_Slice)]
        lib.FreeSlice.restype = None
        lib.GetContentFromSlice.argtypes = [ctypes.POINTER(_Slice)]
        lib.GetContentFromSlice.restype = ctypes.c_void_p
        lib.GetSliceLen.argtypes = [ctypes.POINTER(_Slice)]
        lib.GetSliceLen.restype = ctypes.c_int
        lib.DestroySdk.argtypes = [ctypes.c_void_p]
        lib.DestroySdk.restype = None
        media = ctypes.POINTER(_MediaData)
        lib.NewMediaData.restype = media
        lib.FreeMediaData.argtypes = [media]
        lib.FreeMediaData.restype = None
        lib.GetMediaData.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p,
                                     ctypes.c_char_p, ctypes.c_int, media]
        lib.GetMediaData.restype = ctypes.c_int
        for name, restype in (("GetOutIndexBuf", ctypes.c_void_p), ("GetData", ctypes.c_void_p),
                              ("GetIndexLen", ctypes.c_int), ("GetDataLen", ctypes.c_int),
                              ("IsMediaDataFinish", ctypes.c_int)):
            getattr(lib, name).argtypes = [media]
            getattr(lib, name).restype = restype
        self._lib = lib
        self._lock = threading.Lock()
        self._sdk = lib.NewSdk()
        code = lib.Init(self._sdk, corp_id.encode(), secret.encode())
        if code != 0:
            lib.DestroySdk(self._sdk)
            self._sdk = None
            raise ArchiveUnavailable(f"WeCom's finance SDK refused to start ({code}: "
                                     f"{SDK_ERRORS.get(code, 'unknown')}): check the corp id and the 会话内容存档 "
                                     "Secret")

    def _call_with_slice(self, call: Any) -> bytes:
        piece = self._lib.NewSlice()
        try:
            code = call(piece)
            if code != 0:
                raise ArchiveUnavailable(f"WeCom's finance SDK error {code}: {SDK_ERRORS.get(code, 'unknown')}")
            size = self._lib.GetSliceLen(piece)
            return ctypes.string_at(self._lib.GetContentFromSlice(piece), size)
        finally:
            self._lib.FreeSlice(piece)

    def chat_data(self, seq: int, limit: int = 1000, timeout: int = 10) -> list[dict[str, Any]]:
        """Entries after `seq` (at most `limit`, WeCom's maximum being 1000)."""
        with self._lock:
            raw = self._call_with_slice(lambda piece: self._lib.GetChatData(
                self._sdk, seq, limit, None, None, timeout, piece))
        body = json.loads(raw or b"{}")
        if body.get("errcode"):
            raise ArchiveUnavailable(f"WeCom refused the archive pull ({body.get('errcode')} {body.get('errmsg')})")
        return list(body.get("chatdata") or [])

    def decrypt(self, random_key: str, encrypted: str) -> dict[str, Any]:
        with self._lock:
            raw = self._call_with_slice(lambda piece: self._lib.DecryptData(
                random_key.encode(), encrypted.encode(), piece))
        return json.loads(raw)

    def media(self, sdk_file_id: str, timeout: int = 30) -> bytes:
        """An archived picture, voice or file (its `sdkfileid`), read piece by piece: each call of
        GetMediaData continues from the index buffer the one before returned."""
        out, index = bytearray(), b""
        with self._lock:
            piece = self._lib.NewMediaData()
            try:
                while True:
                    code = self._lib.GetMediaData(self._sdk, index, sdk_file_id.encode(), None, None, timeout,
                                                  piece)
                    if code != 0:
                        raise ArchiveUnavailable(f"WeCom's finance SDK error {code} reading {sdk_file_id[:60]}: "
                                                 f"{SDK_ERRORS.get(code, 'unknown')}")
                    out += ctypes.string_at(self._lib.GetData(piece), self._lib.GetDataLen(piece))
                    if len(out) > MAX_MEDIA_BYTES:
                        raise ArchiveUnavailable(f"archived file {sdk_file_id[:60]} is over "
                                                 f"{MAX_MEDIA_BYTES // 2**20} MB")
                    if self._lib.IsMediaDataFinish(piece):
                        return bytes(out)
                    index = ctypes.string_at(self._lib.GetOutIndexBuf(piece), self._lib.GetIndexLen(piece))
            finally:
                self._lib.FreeMediaData(piece)

    def close(self) -> None:
        with self._lock:
            if self._sdk is not None:
                self._lib.DestroySdk(self._sdk)
                self._sdk = None


@dataclass(frozen=True)
class ArchivedMessage:
    seq: int
    message: dict[str, Any]  # msgid, action (send / recall / switch), from, tolist, roomid, msgtime, msgtype...


class ArchiveReader:
    """Decrypts archive entries with the company's private keys, by key version."""

    def __init__(self, sdk: FinanceSdk, private_keys: dict[str, str]) -> None:
        self.sdk = sdk
        self.keys: dict[int, rsa.RSAPrivateKey] = {}
        for version, pem in private_keys.items():
            key = serialization.load_pem_private_key(pem.encode(), password=None)
            if not isinstance(key, rsa.RSAPrivateKey):
                raise ArchiveUnavailable(f"the archive key of version {version} is not an RSA private key")
            self.keys[int(version)] = key

    def read(self, seq: int, limit: int = 1000) -> list[ArchivedMessage]:
        out = []
        for entry in self.sdk.chat_data(seq, limit):
            version = int(entry.get("publickey_ver") or 0)
            key = self.keys.get(version)
            if key is None:
                raise ArchiveUnavailable(f"no private key of version {version} for archive entry {entry.get('seq')}: "
                                         "add the key WeCom's console shows for that version on the channel's page")
            random_key = key.decrypt(base64.b64decode(entry["encrypt_random_key"]), padding.PKCS1v15()).decode()
            out.append(ArchivedMessage(int(entry["seq"]), self.sdk.decrypt(random_key, entry["encrypt_chat_msg"])))
        return out
