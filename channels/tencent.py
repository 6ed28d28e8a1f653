"""The callback envelope WeCom and WeChat Official Accounts share.

Signatures are SHA-1 over the sorted parts (token, timestamp, nonce and, in
encrypted mode, the ciphertext), compared in constant time. Message bodies are
AES-256-CBC with Tencent's framing (random 16 bytes, length, XML, receive id);
the AES part is wechatpy's, which passes Tencent's published sample vectors.
XML is parsed with defusedxml: DTDs and entity declarations are refused, and
every parser failure becomes a `CallbackRejected` with a message, never a bare
ValueError or ExpatError.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import struct
import time
from typing import Any
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring
from wechatpy.crypto import BasePrpCrypto

from crm_core.models import MessageKind

AES_KEY_PATTERN = r"^[A-Za-z0-9+/]{43}$"
# The contact key for a WeChat unionid: one person across a company's Official
# Accounts and its WeCom external contacts (given when both are bound to one
# WeChat Open Platform account).
UNIONID_KEY = "wechat_unionid"


class CallbackRejected(Exception):
    """A callback that must not be processed; answered with `status` and this message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def signature(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def signature_matches(given: str, *parts: str) -> bool:
    return hmac.compare_digest(given.encode(), signature(*parts).encode())


def aes_key(encoding_aes_key: str) -> bytes:
    """The 32-byte key behind the 43-character EncodingAESKey the platform shows."""
    try:
        key = base64.b64decode(encoding_aes_key + "=", validate=True)
    except binascii.Error:
        key = b""
    if len(key) != 32:
        raise ValueError("EncodingAESKey must be the 43 letters and digits the platform generated")
    return key


class _Prp(BasePrpCrypto):
    def decrypt(self, text: str, receive_id: str) -> str:
        return self._decrypt(text, receive_id, _WrongReceiver)

    def encrypt(self, text: str, receive_id: str) -> str:
        return self._encrypt(text, receive_id).decode()


class _WrongReceiver(Exception):
    pass


class MessageCipher:
    """Encrypts and decrypts message bodies for one app (receive id: corpid or appid)."""

    def __init__(self, token: str, encoding_aes_key: str, receive_id: str) -> None:
        self.token = token
        self.receive_id = receive_id
        self._prp = _Prp(aes_key(encoding_aes_key))

    def decrypt(self, ciphertext: str, *, account_label: str) -> str:
        try:
            return self._prp.decrypt(ciphertext, self.receive_id)
        except _WrongReceiver:
            raise CallbackRejected(
                403, f"{account_label}: the message decrypts for another corp id / app id than "
                     f"{self.receive_id}: check the id in the admin panel's channel page (or the message was "
                     "altered in transit)") from None
        except (ValueError, struct.error, IndexError) as exc:
            # Truncated or altered ciphertext, or another EncodingAESKey.
            raise CallbackRejected(
                400, f"{account_label}: cannot decrypt the message ({type(exc).__name__}): it is truncated, "
                     "altered, or encrypted with another EncodingAESKey than the one saved for this account") from None

    def encrypt(self, plaintext: str) -> str:
        return self._prp.encrypt(plaintext, self.receive_id)

    def envelope(self, plaintext: str, *, timestamp: str | None = None, nonce: str | None = None) -> dict[str, str]:
        """An encrypted, signed body as the platform sends it (and expects replies)."""
        timestamp = timestamp or str(int(time.time()))
        nonce = nonce or str(secrets.randbelow(10**10))
        encrypt = self.encrypt(plaintext)
        return {"Encrypt": encrypt, "MsgSignature": signature(self.token, timestamp, nonce, encrypt),
                "TimeStamp": timestamp, "Nonce": nonce}


def parse_xml(body: bytes | str, *, what: str) -> dict[str, str]:
    """The fields of a platform XML document `<xml>...</xml>`, nested ones as "Parent.Child".

    Repeated elements (a card's selected options...) are joined with commas.
    """
    if not body:
        raise CallbackRejected(400, f"{what}: empty body where XML was expected")
    try:
        root = fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise CallbackRejected(400, f"{what}: XML with a DTD or entity declarations is refused ({exc})") from None
    except (ParseError, ValueError, UnicodeError) as exc:
        raise CallbackRejected(400, f"{what}: body is not well-formed XML ({exc})") from None
    if root.tag != "xml":
        raise CallbackRejected(400, f"{what}: expected an <xml> document, got <{root.tag}>")
    fields: dict[str, str] = {}
    _flatten(root, "", fields, what)
    return fields


# Tencent's documents are at most four levels deep (a card event's selected options).
MAX_XML_DEPTH = 8


def _flatten(element: Element, prefix: str, into: dict[str, str], what: str, depth: int = 1) -> None:
    if depth > MAX_XML_DEPTH:
        raise CallbackRejected(400, f"{what}: XML nested deeper than {MAX_XML_DEPTH} levels")
    for child in element:
        name = f"{prefix}{child.tag}"
        if len(child):
            _flatten(child, name + ".", into, what, depth + 1)
            continue
        value = (child.text or "").strip()
        into[name] = f"{into[name]},{value}" if name in into else value


_ENCRYPT = re.compile(rb"<Encrypt>\s*(?:<!\[CDATA\[)?([^<\]]{1,1048576})(?:\]\]>)?\s*</Encrypt>")


def encrypted_part(body: bytes, *, what: str) -> str:
    """The <Encrypt> text of an encrypted callback, found without parsing the document, so that
    the signature over it is checked before any parser sees a byte the platform did not sign."""
    found = _ENCRYPT.findall(body or b"")
    if len(found) != 1:
        raise CallbackRejected(400, f"{what}: callback without exactly one <Encrypt>: is the app in safe mode?")
    return found[0].decode("latin-1")


def seconds_off(stamp: str) -> float | None:
    """How far a callback's Unix `timestamp` is from now, or None unless it is one (digits only)."""
    if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12):
        return None
    return abs(time.time() - int(stamp))


def build_xml(fields: dict[str, str | int | float]) -> str:
    """`<xml>` with one element per field; strings in CDATA, as the platforms write them."""
    parts = ["<xml>"]
    for name, value in fields.items():
        if isinstance(value, str):
            safe = value.replace("]]>", "]]]]><![CDATA[>")
            parts.append(f"<{name}><![CDATA[{safe}]]></{name}>")
        else:
            parts.append(f"<{name}>{value}</{name}>")
    parts.append("</xml>")
    return "".join(parts)


def message_content(msg_type: str, f: dict[str, str]) -> tuple[MessageKind, str | None, list[dict[str, Any]]]:
    """Kind, text and attachments of a WeCom / WeChat message; both platforms use these fields."""
    if msg_type == "text":
        return MessageKind.TEXT, f.get("Content", ""), []
    if msg_type == "image":
        return MessageKind.IMAGE, None, [{"type": "image", "media_id": f.get("MediaId"), "url": f.get("PicUrl")}]
    if msg_type == "voice":
        # With speech recognition on, WeChat adds the transcript.
        return MessageKind.VOICE, f.get("Recognition") or None, [
            {"type": "voice", "media_id": f.get("MediaId"), "format": f.get("Format")}]
    if msg_type in ("file", "video", "shortvideo"):
        return MessageKind.FILE, f.get("FileName") or f.get("Title"), [{
            "type": msg_type, "media_id": f.get("MediaId"), "name": f.get("FileName"),
            "size": int(f["FileSize"]) if f.get("FileSize", "").isdigit() else None}]
    if msg_type == "location":
        return MessageKind.LOCATION, f.get("Label"), [{
            "type": "location", "latitude": _float(f.get("Location_X")), "longitude": _float(f.get("Location_Y")),
            "label": f.get("Label")}]
    if msg_type == "link":
        text = "\n".join(p for p in (f.get("Title"), f.get("Description"), f.get("Url")) if p)
        return MessageKind.LINK, text, [{"type": "link", "title": f.get("Title"), "url": f.get("Url")}]
    return MessageKind.TEXT, None, [{"type": msg_type or "unknown"}]


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None
