"""Pictures and documents a person sends a customer: uploaded (the type read from the bytes,
at most 10 MB), served at an unguessable address, sent as a picture where the channel shows
one and a document as a file where the channel takes one (Telegram here; 微信客服 and email in
`tests/hub/test_wecom_kf_end_to_end.py` and `tests/channels/test_rich_replies.py`), as a link
otherwise; an address that is not the hub's own is checked first."""

from __future__ import annotations

import pytest

from crm_core.models import Role
from tests.admin.test_api import a_conversation
from tests.fakes.panel import signed_in
from tests.fakes.stack import eventually, telegram_stack
from tests.hub.test_wecom_contact_ways import PNG

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


async def test_uploads_are_checked_served_and_sent_as_a_picture_or_a_link(database_url, tmp_path):
    async with telegram_stack(database_url, tmp_path) as tg:
        api = f"{tg.hub_base}/api/v1"
        conversation = await a_conversation(tg, 811, "Can you send a photo of the X200?")
        for name, data, status, words in (("virus.exe", b"MZ\x90\x00" * 10, 415, "not a picture"),
                                          ("notes.txt", b"hello", 415, "not a picture"),
                                          ("big.png", PNG + b"\0" * (10 * 1024 * 1024), 413, "larger than 10 MB"),
                                          ("fake.docx", b"not a zip at all", 415, "not a picture")):
            resp = await tg.client.post(f"{api}/media", headers=tg.api(), files={"file": (name, data)})
            assert resp.status_code == status and words in resp.text, (name, resp.text)
        picture = (await tg.client.post(f"{api}/media", headers=tg.api(),
                                        files={"file": ("x200.png", PNG, "application/octet-stream")})).json()
        assert picture["kind"] == "image" and picture["url"].startswith(f"{tg.hub.settings.base_url}/media/")
        served = await tg.client.get(tg.hub_base + "/media/" + picture["url"].rsplit("/", 1)[1])
        assert served.content == PNG and served.headers["content-type"] == "image/png"
        assert served.headers["x-content-type-options"] == "nosniff"
        for bad in ("../hub.db", "x.png", picture["url"].rsplit("/", 1)[1].replace(".png", ".pdf")):
            assert (await tg.client.get(f"{tg.hub_base}/media/{bad}")).status_code == 404, bad

        resp = await tg.client.post(f"{api}/conversations/{conversation}/messages", headers=tg.api(),
                                    json={"text": "Here it is", "image_url": picture["url"]})
        assert resp.status_code == 202, resp.text

        async def photo():
            return [m for m in tg.chat(811) if m["from"] == "bot" and m["raw"].get("photo")]
        [sent] = await eventually(photo, timeout=15)
        assert sent["raw"]["photo"][-1]["url"] == picture["url"] and sent["raw"]["caption"] == "Here it is"

        document = (await tg.client.post(f"{api}/media", headers=tg.api(), files={"file": ("价格表.pdf", PDF)})).json()
        assert document["kind"] == "file"
        resp = await tg.client.post(f"{api}/conversations/{conversation}/messages", headers=tg.api(),
                                    json={"file_url": document["url"], "file_name": "价格表.pdf"})
        assert resp.status_code == 202

        async def documents():
            return [m for m in tg.chat(811) if m["from"] == "bot" and m["raw"].get("document")]
        [sent] = await eventually(documents, timeout=15)  # uploaded: the customer gets the file itself
        assert sent["text"] == "[file] 价格表.pdf" and "caption" not in sent["raw"]
        assert {k: sent["raw"]["document"][k] for k in ("file_name", "file_size")} == {
            "file_name": "价格表.pdf", "file_size": len(PDF)}

        # Words with a file: the caption; a name without the extension gets the file's.
        resp = await tg.client.post(f"{api}/conversations/{conversation}/messages", headers=tg.api(),
                                    json={"text": "The prices for 2027", "file_url": document["url"],
                                          "file_name": "prices"})
        assert resp.status_code == 202
        [_, sent] = await eventually(lambda: _at_least(documents, 2), timeout=15)
        assert sent["raw"]["caption"] == "The prices for 2027" and sent["raw"]["document"]["file_name"] == \
            "prices.pdf"
        thread = (await tg.client.get(f"{api}/inbox/{conversation}", headers=tg.api())).json()
        assert thread["messages"][-1]["media"] == [{"kind": "file", "name": "prices", "url": document["url"]}]
        served = await tg.client.get(tg.hub_base + "/media/" + document["url"].rsplit("/", 1)[1])
        assert served.headers["content-type"] == "application/pdf" and "attachment" in \
            served.headers["content-disposition"]

        for body, words in (({"image_url": "http://127.0.0.1:9/internal.png"}, "image_url"),
                            ({"text": " "}, "attach a picture or a file"),
                            ({"image_url": "file:///etc/passwd"}, "string should match")):
            resp = await tg.client.post(f"{api}/conversations/{conversation}/messages", headers=tg.api(), json=body)
            assert resp.status_code == 422 and words in resp.text.lower(), resp.text


async def _at_least(find, n):
    found = await find()
    return found if len(found) >= n else []


async def test_in_the_inbox_a_picture_is_attached_and_sent(database_url, tmp_path, browser):
    async with telegram_stack(database_url, tmp_path) as tg:
        await tg.customer_writes(812, "Do you have it in blue?", first_name="Rosa")
        async with signed_in(browser, tg.hub, tg.hub_base, "olga", Role.OPERATOR, locale="en-GB") as page:
            await page.click("#nav a[data-page=inbox]")
            item = await page.wait_for_selector(".inbox-item:has-text('Rosa')", timeout=15_000)
            await item.click()
            await page.wait_for_selector("#reply-form")
            await page.set_input_files("#reply-attach", files=[{"name": "blue.png", "mimeType": "image/png",
                                                                 "buffer": PNG}])
            await page.fill("#reply-form textarea", "In blue, yes")
            await page.click("#send-reply")

            async def photo():
                return [m for m in tg.chat(812) if m["from"] == "bot" and m["raw"].get("photo")]
            [sent] = await eventually(photo, timeout=15)
            assert sent["raw"]["caption"] == "In blue, yes" and "/media/" in sent["raw"]["photo"][-1]["url"]
            assert await page.input_value("#reply-attach") == ""
            # A document: the customer gets the file; the thread shows it with its name, as a link.
            await page.set_input_files("#reply-attach", files=[{"name": "色卡.pdf", "mimeType": "application/pdf",
                                                                 "buffer": PDF}])
            await page.fill("#reply-form textarea", "All the colours")
            await page.click("#send-reply")

            async def document():
                return [m for m in tg.chat(812) if m["from"] == "bot" and m["raw"].get("document")]
            [sent] = await eventually(document, timeout=15)
            assert sent["raw"]["document"]["file_name"] == "色卡.pdf" and sent["raw"]["caption"] == "All the colours"
            link = page.locator("#messages .media-part a", has_text="色卡.pdf")
            await link.wait_for(timeout=15_000)
            assert "/media/" in await link.get_attribute("href")
            assert await page.locator("#messages .media-part", has_text="🖼").count() == 1  # the picture before
            assert page.script_errors == []
