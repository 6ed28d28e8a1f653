"""Files the hub hands a platform as bytes: a picture WeCom wants uploaded, a document sent to a
customer as a file (Telegram, 微信客服, an email attachment).

The address is a person's or a campaign's (most often the hub's own `/media/<name>`): it is
checked like every outbound address (`channels.destinations`), fetched without following
redirects and read up to the platform's size limit. A refused address or a file the platform
cannot take is a PermanentFailure that says what to fix; an address that does not answer is a
TemporaryFailure, so the send is retried.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import httpx

from channels.destinations import UnsafeDestination, check_url
from crm_core.ports import PermanentFailure, TemporaryFailure

TIMEOUT = 20.0


@dataclass(frozen=True)
class Fetched:
    data: bytes
    content_type: str   # as the server said it, without parameters
    name: str           # the last part of the address's path


class FileFetcher:
    def __init__(self, *, allow_private: bool = False) -> None:
        self.allow_private = allow_private
        self._http = httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False)

    async def fetch(self, url: str, *, what: str, max_bytes: int, limit_name: str,
                    types: Collection[str] = (), expected: str = "") -> Fetched:
        """The file at `url`, at most `max_bytes` (`limit_name` says whose limit it is) and, when
        `types` are given, of one of those content types (`expected` names them for people)."""
        try:
            await check_url(url, allow_private=self.allow_private, what=f"{what} address")
        except UnsafeDestination as exc:
            raise PermanentFailure(f"the {what} was not fetched: {exc}") from None
        shown = url[:200]
        try:
            async with self._http.stream("GET", url) as response:
                kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
                if response.status_code != 200:
                    raise PermanentFailure(f"the {what} at {shown} could not be fetched (HTTP "
                                           f"{response.status_code}): fix the address or upload it again")
                if types and kind not in types:
                    raise PermanentFailure(f"the {what} at {shown} is not {expected} ({kind or 'no type'}): "
                                           "fix the address")
                data = b""
                async for chunk in response.aiter_bytes():
                    data += chunk
                    if len(data) > max_bytes:
                        raise PermanentFailure(f"the {what} at {shown} is over {limit_name}'s "
                                               f"{max_bytes / 2**20:g} MB: send a smaller one")
        except httpx.HTTPError as exc:
            raise TemporaryFailure(f"the {what} at {shown} could not be fetched: {type(exc).__name__}") from None
        name = unquote(urlsplit(url).path.rsplit("/", 1)[-1]) or "file"
        return Fetched(data=data, content_type=kind or "application/octet-stream", name=name)

    async def close(self) -> None:
        await self._http.aclose()


def file_name(given: str | None, fetched: Fetched) -> str:
    """The name the customer sees: the one the sender gave, with the file's real extension
    when it lacks one."""
    name = " ".join((given or "").split())[:120] or fetched.name
    suffix = fetched.name.rsplit(".", 1)[-1] if "." in fetched.name else ""
    if suffix and not name.lower().endswith("." + suffix.lower()):
        name = f"{name}.{suffix}"
    return name
