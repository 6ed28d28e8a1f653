"""Pictures the hub shows in WeCom by address, uploaded to WeCom as media it can send.

WeCom sends an image (a 微信客服 picture, a welcome's image or mini-program cover) by a
`media_id` from `media/upload`, good for 3 days; a moments post's pictures come from
`media/upload_attachment` (attachment_type 1, moments) instead. The picture's address is an operator's or a
campaign's: it is checked like every outbound address (`channels.destinations`), fetched
without following redirects, must be a JPEG or PNG within WeCom's 2 MB, and each (corp,
address) is uploaded once per lifetime of its media id.
"""

from __future__ import annotations

import time

import httpx

from channels.destinations import UnsafeDestination, check_url
from channels.tencent_client import AppKey, TencentApiClient
from crm_core.ports import PermanentFailure, TemporaryFailure

IMAGE_TYPES = {"image/jpeg": ".jpg", "image/png": ".png"}  # what media/upload takes as an image
MAX_IMAGE_BYTES = 2 * 2**20  # WeCom's limit for an image upload
MEDIA_LIFETIME = 3 * 86400 - 3600  # an uploaded medium is usable for 3 days
IMAGE_TIMEOUT = 10.0


class Pictures:
    def __init__(self, client: TencentApiClient, *, allow_private: bool = False) -> None:
        self.client = client
        self.allow_private = allow_private
        self._media: dict[tuple[str, str, bool], tuple[str, float]] = {}  # (corp, URL, moment) -> media_id, until
        self._http = httpx.AsyncClient(timeout=IMAGE_TIMEOUT, follow_redirects=False)

    async def media_id(self, app: AppKey, url: str, *, moment: bool = False) -> str:
        """The media id of the picture at `url` (media/upload; for a moments post
        media/upload_attachment). PermanentFailure for an address that is refused or is not a
        picture WeCom takes; TemporaryFailure when it cannot be fetched."""
        cached = self._media.get((app.app_id, url, moment))
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        try:
            await check_url(url, allow_private=self.allow_private, what="picture address")
        except UnsafeDestination as exc:
            raise PermanentFailure(f"the picture was not fetched: {exc}") from None
        try:
            async with self._http.stream("GET", url) as response:
                kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
                if response.status_code != 200 or kind not in IMAGE_TYPES:
                    raise PermanentFailure(f"the picture at {url[:200]} is not a JPEG or PNG image (HTTP "
                                           f"{response.status_code}, {kind or 'no type'}): fix the address")
                data = b""
                async for chunk in response.aiter_bytes():
                    data += chunk
                    if len(data) > MAX_IMAGE_BYTES:
                        raise PermanentFailure(f"the picture at {url[:200]} is over WeCom's "
                                               f"{MAX_IMAGE_BYTES // 2**20} MB for images")
        except httpx.HTTPError as exc:
            raise TemporaryFailure(f"the picture at {url[:200]} could not be fetched: {type(exc).__name__}") from None
        path, params = ("/cgi-bin/media/upload_attachment", {"media_type": "image", "attachment_type": "1"}) \
            if moment else ("/cgi-bin/media/upload", {"type": "image"})
        body = await self.client.call(app, path, params=params,
                                      files={"media": ("picture" + IMAGE_TYPES[kind], data, kind)})
        media_id = str(body["media_id"])
        self._media[(app.app_id, url, moment)] = (media_id, time.monotonic() + MEDIA_LIFETIME)
        return media_id

    async def close(self) -> None:
        await self._http.aclose()
