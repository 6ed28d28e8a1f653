"""Pictures the hub shows in WeCom by address, uploaded to WeCom as media it can send.

WeCom sends an image (a 微信客服 picture, a welcome's image or mini-program cover) by a
`media_id` from `media/upload`, good for 3 days; a moments post's pictures come from
`media/upload_attachment` (attachment_type 1, moments) instead. The picture's address is an operator's or a
campaign's: it is checked like every outbound address (`channels.destinations`), fetched
without following redirects, must be a JPEG or PNG within WeCom's 2 MB, and each (corp,
address) is uploaded once per lifetime of its media id. A document sent to a 微信客服 customer as a file
is uploaded the same way (`type=file`, at most 20 MB).
"""

from __future__ import annotations

import time

from channels.files import FileFetcher, OwnMedia, file_name
from channels.tencent_client import AppKey, TencentApiClient
from crm_core.ports import PermanentFailure

IMAGE_TYPES = {"image/jpeg": ".jpg", "image/png": ".png"}  # what media/upload takes as an image
MAX_IMAGE_BYTES = 2 * 2**20  # WeCom's limit for an image upload
MAX_FILE_BYTES = 20 * 2**20  # and for a file
MEDIA_LIFETIME = 3 * 86400 - 3600  # an uploaded medium is usable for 3 days


class Pictures:
    def __init__(self, client: TencentApiClient, *, allow_private: bool = False,
                 own_media: OwnMedia | None = None) -> None:
        self.client = client
        self.files = FileFetcher(allow_private=allow_private, own_media=own_media)
        self._media: dict[tuple[str, str, str], tuple[str, float]] = {}  # (corp, URL, use) -> media_id, until

    async def media_id(self, app: AppKey, url: str, *, moment: bool = False) -> str:
        """The media id of the picture at `url` (media/upload; for a moments post
        media/upload_attachment). PermanentFailure for an address that is refused or is not a
        picture WeCom takes; TemporaryFailure when it cannot be fetched."""
        use = "moment" if moment else "image"
        if (cached := self._cached(app, url, use)) is not None:
            return cached
        fetched = await self.files.fetch(url, what="picture", max_bytes=MAX_IMAGE_BYTES, limit_name="WeCom",
                                         types=IMAGE_TYPES, expected="a JPEG or PNG image")
        path, params = ("/cgi-bin/media/upload_attachment", {"media_type": "image", "attachment_type": "1"}) \
            if moment else ("/cgi-bin/media/upload", {"type": "image"})
        body = await self.client.call(app, path, params=params, files={
            "media": ("picture" + IMAGE_TYPES[fetched.content_type], fetched.data, fetched.content_type)})
        return self._keep(app, url, use, str(body["media_id"]))

    async def file_media_id(self, app: AppKey, url: str, name: str | None) -> str:
        """The media id of the document at `url`, uploaded as a file named `name`."""
        use = f"file:{name or ''}"  # the name is the upload's: another name, another upload
        if (cached := self._cached(app, url, use)) is not None:
            return cached
        fetched = await self.files.fetch(url, what="file", max_bytes=MAX_FILE_BYTES, limit_name="WeCom")
        if len(fetched.data) <= 5:  # WeCom refuses a file of 5 bytes or fewer
            raise PermanentFailure(f"the file at {url[:200]} is empty: upload it again")
        body = await self.client.call(app, "/cgi-bin/media/upload", params={"type": "file"}, files={
            "media": (file_name(name, fetched), fetched.data, fetched.content_type)})
        return self._keep(app, url, use, str(body["media_id"]))

    def _cached(self, app: AppKey, url: str, use: str) -> str | None:
        """The media id uploaded for (corp, address, use), while WeCom still keeps it."""
        cached = self._media.get((app.app_id, url, use))
        return cached[0] if cached is not None and cached[1] > time.monotonic() else None

    def _keep(self, app: AppKey, url: str, use: str, media_id: str) -> str:
        self._media[(app.app_id, url, use)] = (media_id, time.monotonic() + MEDIA_LIFETIME)
        return media_id

    async def close(self) -> None:
        await self.files.close()
