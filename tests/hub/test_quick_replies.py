"""Quick replies (话术库): kept through the API (shared, a team's, a rep's own, each seen only by
who may use it), refused with what to fix, and sent by a rep from WeCom with `/q N shortcut`,
filled for the customer; `/q words` finds them."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from crm_core.models import AuditLog, Contact, Conversation, Identity, Role
from tests.admin.test_api import token_for
from tests.bots.test_rep_workspace import claimed_by
from tests.fakes.panel import signed_in
from tests.fakes.stack import eventually, telegram_stack, workspace_stack

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
QUOTE = {"title": "报价单", "shortcut": "quote", "link_url": "https://shop.example.cn/quote",
         "texts": {"zh": "{name}您好，我是{rep}，报价单在这里：{link}",
                   "en": "Hi {name}, {rep} here. The quote: {link}"}}


async def test_quick_replies_are_kept_refused_with_reasons_and_seen_only_by_who_may_use_them(database_url,
                                                                                           tmp_path):
    async with workspace_stack(database_url, tmp_path) as ws:
        tg, base = ws.tg, f"{ws.tg.hub_base}/api/v1/quick-replies"
        li_token, _ = await token_for(tg, Role.REP, "li")
        wang_token, _ = await token_for(tg, Role.REP, "wang")
        made = await tg.client.post(base, headers=tg.api(), json=QUOTE)
        assert made.status_code == 201, made.text
        for change, words in (({"texts": {"zh": "价格是{price}"}}, "unknown variable {price}"),
                              ({"link_url": None}, "give the reply its link"),
                              ({"texts": {"zh": " ", "en": ""}}, "write the reply"),
                              ({"texts": {"zh": "{name"}}, "unmatched brace"),
                              ({"shortcut": "a b"}, "shortcut 'a b'"),
                              ({}, "shortcut 'quote' is quick reply")):
            resp = await tg.client.post(base, headers=tg.api(), json={**QUOTE, **change})
            assert resp.status_code == 422 and words in resp.text, (change, resp.text)

        # Li keeps one of his own; he may not make shared ones; Wang neither sees nor changes Li's.
        own = await tg.client.post(base, headers=tg.api(li_token), json={
            "title": "周末", "shortcut": "wk", "scope": "mine", "texts": {"zh": "周末我们照常营业。"}})
        assert own.status_code == 201, own.text
        refused = await tg.client.post(base, headers=tg.api(li_token), json={**QUOTE, "shortcut": "q2"})
        assert refused.status_code == 403 and "your own" in refused.text
        assert [r["shortcut"] for r in (await tg.client.get(base, headers=tg.api(li_token))).json()] == ["quote", "wk"]
        assert [r["shortcut"] for r in (await tg.client.get(base, headers=tg.api(wang_token))).json()] == ["quote"]
        resp = await tg.client.put(f"{base}/{own.json()['id']}", headers=tg.api(wang_token),
                                   json={"title": "x", "texts": {"zh": "x"}, "scope": "mine"})
        assert resp.status_code == 404
        resp = await tg.client.delete(f"{base}/{made.json()['id']}", headers=tg.api(wang_token))
        assert resp.status_code == 403 and "not delete it" in resp.text
        found = await tg.client.get(base, headers=tg.api(li_token), params={"q": "营业"})
        assert [r["shortcut"] for r in found.json()] == ["wk"]
        async with tg.hub.sessions() as session:
            actions = (await session.scalars(select(AuditLog.action).where(
                AuditLog.entity_type == "quick_reply"))).all()
        assert actions == ["quick_reply.create", "quick_reply.create"]


async def test_a_rep_sends_a_quick_reply_from_wecom_filled_for_the_customer(database_url, tmp_path):
    async with workspace_stack(database_url, tmp_path) as ws:
        tg, app = ws.tg, ws.wecom_app
        assert (await tg.client.post(f"{tg.hub_base}/api/v1/quick-replies", headers=tg.api(),
                                     json=QUOTE)).status_code == 201
        ws.wecom.customer_adds(app, "wmQuick0001", "li", name="陈女士")
        await ws.rep_receives("li", "添加了您为联系人")

        async def conversation():
            async with tg.hub.sessions() as session:
                return await session.scalar(select(Conversation.id).join(
                    Identity, Identity.id == Conversation.identity_id).where(Identity.external_id == "wmQuick0001"))
        conversation_id = await eventually(conversation, timeout=15)
        async with tg.hub.sessions() as session:
            contact = await session.scalar(select(Contact).join(Identity, Identity.contact_id == Contact.id)
                                           .where(Identity.external_id == "wmQuick0001"))
            assert contact.display_name == "陈女士"

        # Li looks for it by a word, then sends it by its shortcut: filled, in the customer's Chinese.
        await ws.rep_writes("li", "/话术 报价")
        listed = await ws.rep_receives("li", "匹配的话术")
        assert "[quote] 报价单" in listed["text"]
        await ws.rep_writes("li", f"/q {conversation_id} quote")

        async def received():
            return [m for m in app.transcript("wmQuick0001") if "报价单在这里" in m["text"]]
        [sent] = await eventually(received, timeout=15)
        assert sent["text"] == "陈女士您好，我是Li Lei，报价单在这里：https://shop.example.cn/quote"
        await ws.rep_receives("li", f"#{conversation_id}")  # the usual "sent to" confirmation
        await ws.rep_writes("li", f"/q {conversation_id} 没有这个")
        await ws.rep_receives("li", "没有与“没有这个”匹配的话术")


async def test_an_operator_writes_a_quick_reply_in_the_panel_and_a_rep_sends_it(database_url, tmp_path, browser):
    async with workspace_stack(database_url, tmp_path) as ws:
        tg, app = ws.tg, ws.wecom_app
        async with signed_in(browser, tg.hub, tg.hub_base, "olga", Role.OPERATOR) as page:
            await page.click("#nav a[data-page=quick-replies]")
            form = page.locator("#quick-reply-form")
            await form.locator("input[name=title]").fill("到店指引")
            await form.locator("input[name=shortcut]").fill("到店")
            await form.locator("textarea[name=zh]").fill("{name}您好，门店地址：南京西路 1266 号，{rep}在门口等您。")
            await page.set_input_files("#qr-file", files=[{"name": "门店地图.pdf", "mimeType": "application/pdf",
                                                           "buffer": PDF}])
            await form.locator("button[type=submit]").click()
            await page.wait_for_selector("#quick-reply-rows tr[data-reply]")
            row = await page.inner_text("#quick-reply-rows tr[data-reply]")
            assert "到店指引" in row and "所有人" in row and "📎 门店地图.pdf" in row
            # A variable it does not know is refused, with the ones it does.
            await page.click("#quick-reply-rows button[data-edit]")
            await form.locator("textarea[name=zh]").fill("{price} 元起")
            await form.locator("button[type=submit]").click()
            await page.wait_for_selector(".toast.bad:has-text('unknown variable {price}')")
            assert page.script_errors == []
        ws.wecom.customer_adds(app, "wmQuick0002", "li", name="周先生")
        await ws.rep_receives("li", "添加了您为联系人")

        async def conversation():
            async with tg.hub.sessions() as session:
                return await session.scalar(select(Conversation.id).join(
                    Identity, Identity.id == Conversation.identity_id).where(Identity.external_id == "wmQuick0002"))
        await ws.rep_writes("li", f"/话术 {await eventually(conversation, timeout=15)} 到店")

        async def received():
            return [m["text"] for m in app.transcript("wmQuick0002") if "门店地址" in m["text"]]
        [reply] = (await tg.client.get(f"{tg.hub_base}/api/v1/quick-replies", headers=tg.api())).json()
        # WeCom's external contacts take no file from the hub: the document goes as its address.
        assert await eventually(received, timeout=15) == [
            f"周先生您好，门店地址：南京西路 1266 号，Li Lei在门口等您。\n📎 门店地图.pdf: {reply['file_url']}"]


async def test_in_the_inbox_a_slash_offers_quick_replies_filled_for_the_customer(database_url, tmp_path, browser):
    async with telegram_stack(database_url, tmp_path) as tg:
        assert (await tg.client.post(f"{tg.hub_base}/api/v1/quick-replies", headers=tg.api(),
                                     json=QUOTE)).status_code == 201
        await tg.customer_writes(931, "你好，想要一份报价", first_name="李娜", language_code="zh-hans")
        async with signed_in(browser, tg.hub, tg.hub_base, "olga", Role.OPERATOR) as page:
            await page.click("#nav a[data-page=inbox]")
            item = await page.wait_for_selector(".inbox-item:has-text('李娜')", timeout=15_000)
            await item.click()
            await page.wait_for_selector("#reply-form")
            await page.fill("#reply-form textarea", "/报价")
            await page.click("#quick-picker button:has-text('报价单')")
            async def filled():
                value = await page.input_value("#reply-form textarea")
                return value if "报价单在这里" in value else None
            assert await eventually(filled) == "李娜您好，我是Olga，报价单在这里：https://shop.example.cn/quote"
            assert await page.is_hidden("#quick-picker")
            await page.click("#send-reply")

            async def delivered():
                return any(m["from"] == "bot" and "报价单在这里" in (m.get("text") or "") for m in tg.chat(931))
            await eventually(delivered, timeout=15)
            assert page.script_errors == []


async def test_a_quick_reply_with_a_picture_goes_as_a_picture(database_url, tmp_path):
    async with workspace_stack(database_url, tmp_path) as ws:
        tg = ws.tg
        picture = "https://cdn.example.cn/x200-blue.png"
        made = await tg.client.post(f"{tg.hub_base}/api/v1/quick-replies", headers=tg.api(), json={
            "title": "蓝色款", "shortcut": "blue", "image_url": picture, "texts": {"en": "The blue one, {name}"}})
        assert made.status_code == 201 and made.json()["image_url"] == picture
        conv = await claimed_by(ws, "li", 4444, "Which colours are there?", "Ada")
        filled = (await tg.client.get(f"{tg.hub_base}/api/v1/quick-replies/{made.json()['id']}/filled",
                                      headers=tg.api(), params={"conversation_id": conv})).json()
        assert filled == {"text": "The blue one, Ada", "missing": [], "image_url": picture, "file_url": None,
                          "file_name": None}
        await ws.rep_writes("li", f"/q {conv} blue")

        async def photo():
            return [m["raw"] for m in tg.chat(4444) if m["from"] == "bot" and m["raw"].get("photo")]
        [sent] = await eventually(photo, timeout=15)
        assert sent["caption"] == "The blue one, Ada" and sent["photo"][-1]["url"] == picture
        bad = await tg.client.post(f"{tg.hub_base}/api/v1/quick-replies", headers=tg.api(), json={
            "title": "x", "image_url": "ftp://x/y.png", "texts": {"en": "x"}})
        assert bad.status_code == 422


async def test_a_quick_reply_with_a_document_goes_as_a_file(database_url, tmp_path):
    async with workspace_stack(database_url, tmp_path) as ws:
        tg = ws.tg
        uploaded = (await tg.client.post(f"{tg.hub_base}/api/v1/media", headers=tg.api(),
                                         files={"file": ("prices.pdf", PDF)})).json()
        made = await tg.client.post(f"{tg.hub_base}/api/v1/quick-replies", headers=tg.api(), json={
            "title": "价格表", "shortcut": "prices", "file_url": uploaded["url"], "file_name": "Prices 2027",
            "texts": {"en": "Our prices, {name}"}})
        assert made.status_code == 201 and made.json()["file_name"] == "Prices 2027"
        conv = await claimed_by(ws, "li", 4445, "What do they cost?", "Ada")
        await ws.rep_writes("li", f"/q {conv} prices")

        async def document():
            return [m["raw"] for m in tg.chat(4445) if m["from"] == "bot" and m["raw"].get("document")]
        [sent] = await eventually(document, timeout=15)
        assert sent["caption"] == "Our prices, Ada"
        assert sent["document"]["file_name"] == "Prices 2027.pdf" and sent["document"]["file_size"] == len(PDF)
