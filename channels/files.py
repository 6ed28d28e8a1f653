"""Files the hub hands a platform as bytes: a picture WeCom wants uploaded, a document sent to a
customer as a file (Telegram, 微信客服, an email attachment).

The address is a person's or a campaign's: the hub's own uploads (`/media/<name>`) are read
from its disk when they are on this machine's; any other address is checked like every outbound address
(`channels.destinations`), fetched without following redirects and read up to the platform's
size limit. A refused address or a file the platform
cannot take is a PermanentFailure that says what to fix; an address that does not answer is a
TemporaryFailure, so the send is retried.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx

from channels.base import KEEPALIVE
from channels.destinations import UnsafeDestination, check_url
from crm_core.ports import PermanentFailure, TemporaryFailure

TIMEOUT = 20.0
OWN_NAME = re.compile(r"^[A-Za-z0-9_-]{24}\.[a-z]{3,4}$")  # as admin/api/media.py names an upload
_NOT_IN_NAMES = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]')  # what no file system or mail client takes in a name
# What the hub takes as an upload, by extension (admin/api/media.py reads the kind from the bytes).
MEDIA_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".gif": "image/gif", ".webp": "image/webp",
               ".pdf": "application/pdf",
               ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
               ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
               ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation"}


@dataclass(frozen=True)
class Fetched:
    data: bytes
    content_type: str   # as the server said it, without parameters
    name: str           # the last part of the address's path


@dataclass(frozen=True)
class OwnMedia:
    """The hub's own uploads (`admin/api/media.py`): their public address prefix and the folder
    they are kept in, read from disk instead of through the network (a hub on a private network
    reaches its own address no better than any other there)."""

    prefix: str     # https://hub.example.cn/media/
    folder: Path


class FileFetcher:
    def __init__(self, *, allow_private: bool = False, own_media: OwnMedia | None = None) -> None:
        self.allow_private = allow_private
        self.own_media = own_media
        self._http = httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False, limits=KEEPALIVE)

    async def fetch(self, url: str, *, what: str, max_bytes: int, limit_name: str,
                    types: Collection[str] = (), expected: str = "") -> Fetched:
        """The file at `url`, at most `max_bytes` (`limit_name` says whose limit it is) and, when
        `types` are given, of one of those content types (`expected` names them for people)."""
        own = self._own(url, what=what, max_bytes=max_bytes, limit_name=limit_name, types=types, expected=expected)
        if own is not None:
            return own
        try:
            await check_url(url, allow_private=self.allow_private, what=f"{what} address")
        except UnsafeDestination as exc:
            raise PermanentFailure(f"the {what} was not fetched: {exc}") from None
        shown = url[:200]
        try:
            async with self._http.stream("GET", url) as response:
                kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
                if response.status_code == 429 or response.status_code >= 500:
                    raise TemporaryFailure(f"the {what} at {shown} could not be fetched now (HTTP "
                                           f"{response.status_code}); it is tried again")
                if response.status_code != 200:
                    raise PermanentFailure(f"the {what} at {shown} could not be fetched (HTTP "
                                           f"{response.status_code}): fix the address or upload it again")
                if types and kind not in types:
                    raise PermanentFailure(f"the {what} at {shown} is not {expected} ({kind or 'no type'}): "
                                           "fix the address")
                data = bytearray()
                async for chunk in response.aiter_bytes():
                    data += chunk
                    if len(data) > max_bytes:
                        raise PermanentFailure(f"the {what} at {shown} is over {limit_name}'s "
                                               f"{max_bytes / 2**20:g} MB: send a smaller one")
        except httpx.HTTPError as exc:
            raise TemporaryFailure(f"the {what} at {shown} could not be fetched: {type(exc).__name__}") from None
        name = unquote(urlsplit(url).path.rsplit("/", 1)[-1]) or "file"
        return Fetched(data=bytes(data), content_type=kind or "application/octet-stream", name=name)

    def _own(self, url: str, *, what: str, max_bytes: int, limit_name: str, types: Collection[str],
             expected: str) -> Fetched | None:
        """One of the hub's uploads from this machine's disk; None for any other address, or an
        upload kept on another machine (a worker on its own host fetches it like any address)."""
        if self.own_media is None or not url.startswith(self.own_media.prefix):
            return None
        name = url[len(self.own_media.prefix):]
        path = self.own_media.folder / name
        if not OWN_NAME.match(name) or not path.is_file():
            return None
        kind = MEDIA_TYPES.get(name[name.rindex("."):], "application/octet-stream")
        if types and kind not in types:
            raise PermanentFailure(f"the {what} at {url[:200]} is not {expected} ({kind}): fix the address")
        if path.stat().st_size > max_bytes:
            raise PermanentFailure(f"the {what} at {url[:200]} is over {limit_name}'s {max_bytes / 2**20:g} MB: "
                                   "send a smaller one")
        return Fetched(data=path.read_bytes(), content_type=kind, name=name)

    async def close(self) -> None:
        await self._http.aclose()


def file_name(given: str | None, fetched: Fetched) -> str:
    """The name the customer sees: the one the sender gave (without path separators or control
    characters), with the file's real extension when it lacks one."""
    name = " ".join(_NOT_IN_NAMES.sub(" ", given or "").split())[:120] or fetched.name
    suffix = fetched.name.rsplit(".", 1)[-1] if "." in fetched.name else ""
    if suffix and not name.lower().endswith("." + suffix.lower()):
        name = f"{name}.{suffix}"
    return name
