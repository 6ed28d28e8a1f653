"""Files the hub hands a platform: its own uploads read from its disk (a hub on a private
network reaches its own address no better than any other there), anything else checked and
fetched, each within the platform's limit."""

from __future__ import annotations

import pytest

from channels.files import FileFetcher, OwnMedia, file_name
from crm_core.ports import PermanentFailure

PDF = b"%PDF-1.4\n%%EOF\n"
NAME = "AbCdEfGhIjKlMnOpQrStUv_-.pdf"


async def test_the_hubs_own_uploads_come_from_its_disk_and_nothing_else_does(tmp_path):
    (tmp_path / NAME).write_bytes(PDF)
    (tmp_path / "secret.txt").write_text("not an upload")
    files = FileFetcher(own_media=OwnMedia("http://10.9.8.7/media/", tmp_path))  # private networks refused
    try:
        fetched = await files.fetch(f"http://10.9.8.7/media/{NAME}", what="file", max_bytes=2**20,
                                    limit_name="Telegram's bots")
        assert (fetched.data, fetched.content_type, fetched.name) == (PDF, "application/pdf", NAME)
        assert file_name("报价单", fetched) == "报价单.pdf" and file_name(None, fetched) == NAME
        assert file_name("../etc/pass\nwd", fetched) == ".. etc pass wd.pdf"
        # Anything else is an address like any other: checked (and here refused) before it is fetched.
        for url in (f"http://10.9.8.7/media/../{NAME}", "http://10.9.8.7/media/secret.txt",
                    "http://127.0.0.1:9/media/" + NAME):
            with pytest.raises(PermanentFailure, match="not fetched"):
                await files.fetch(url, what="file", max_bytes=2**20, limit_name="Telegram's bots")
        # An upload this machine does not keep (a worker on another host): fetched from the hub's address.
        refused = FileFetcher(own_media=OwnMedia("http://127.0.0.1:9/media/", tmp_path))
        with pytest.raises(PermanentFailure, match="not fetched"):
            await refused.fetch("http://127.0.0.1:9/media/XbCdEfGhIjKlMnOpQrStUv_-.pdf", what="file",
                                max_bytes=2**20, limit_name="Telegram's bots")
        await refused.close()
        with pytest.raises(PermanentFailure, match="over WeCom's 0.5 MB"):
            (tmp_path / NAME).write_bytes(PDF + b"\0" * 2**20)
            await files.fetch(f"http://10.9.8.7/media/{NAME}", what="file", max_bytes=2**19,
                              limit_name="WeCom")
        with pytest.raises(PermanentFailure, match="not a JPEG or PNG image"):
            await files.fetch(f"http://10.9.8.7/media/{NAME}", what="picture", max_bytes=2**21,
                              limit_name="WeCom", types={"image/png", "image/jpeg"}, expected="a JPEG or PNG image")
    finally:
        await files.close()
