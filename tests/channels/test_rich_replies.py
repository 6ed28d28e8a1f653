"""A picture card (title, text, picture, link, options) on every channel: shown where the
platform can, as addresses and numbered options where it cannot; a document attached to a mail."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

from channels.base import shortened
from channels.dingtalk.adapter import DingTalkAdapter
from channels.email.adapter import EmailAdapter
from channels.simulators.dingtalk import DingTalkSimulator
from channels.simulators.telegram import TelegramSimulator
from channels.simulators.wechat import WeChatSimulator
from channels.telegram.adapter import TelegramAdapter
from channels.wechat.adapter import WeChatAdapter
from channels.wecom.adapter import _as_text
from crm_core.db import utcnow
from crm_core.ports import AccountRef, Button, OutboundMessage, PermanentFailure, RecipientActivity
from hub.serving import running
from tests.fakes.mail import smtp_server

PICTURE = "https://cdn.example.cn/x200/front.jpg"
PAGE = "https://shop.example.cn/x200"


def card(recipient: str, text: str = "X200 售价 3999 元，分期免息。") -> OutboundMessage:
    return OutboundMessage(recipient, text, (Button("了解分期", "faq:1"), Button("转人工", "handoff")),
                           title="X200 多少钱？", image_url=PICTURE, link_url=PAGE)


async def test_telegram_sends_a_photo_with_its_caption_options_and_link_button():
    sim = TelegramSimulator()
    async with running(sim.app) as server:
        bot = sim.create_bot()
        user = sim.user(501, "Wang")
        sim.user_writes(bot, user, "/start")
        account = AccountRef(id=1, kind="telegram", api_base=f"http://127.0.0.1:{server.port}",
                             credentials={"bot_token": bot.token}, settings={})
        adapter = TelegramAdapter()
        try:
            await adapter.send(account, card("501"))
            # A caption may hold 1,024 characters: a longer text goes as a message whose preview is the picture.
            await adapter.send(account, card("501", "长" * 1100))
        finally:
            await adapter.close()
    photo, long = bot.sent
    assert photo["photo"][0]["url"] == PICTURE and photo["caption"].startswith("X200 售价")
    rows = photo["reply_markup"]["inline_keyboard"]
    assert [b.get("callback_data") for row in rows for b in row] == ["faq:1", "handoff", None]
    assert rows[-1] == [{"text": "X200 多少钱？", "url": PAGE}]
    assert "photo" not in long and long["text"].endswith(PICTURE)


async def test_wechat_sends_one_article_card_with_numbered_options():
    sim = WeChatSimulator()
    async with running(sim.app) as server:
        oa = sim.create_account(mode="plain")
        sim.follow(oa, "oFan1")
        sim.write(oa, "oFan1", "多少钱")
        account = AccountRef(id=3, kind="wechat", api_base=f"http://127.0.0.1:{server.port}", settings={},
                             credentials={"app_id": oa.app_id, "app_secret": oa.app_secret, "token": oa.token})
        adapter = WeChatAdapter()
        now = utcnow()
        try:
            await adapter.send(account, OutboundMessage.from_payload(
                "oFan1", card("oFan1").to_payload(), recipient_activity=RecipientActivity(now, None, 0, 0)))
        finally:
            await adapter.close()
    [sent] = oa.sent
    assert sent["msgtype"] == "news"
    article = sent["article"]
    assert (article["title"], article["picurl"], article["url"]) == ("X200 多少钱？", PICTURE, PAGE)
    assert article["description"].splitlines()[-2:] == ["1. 了解分期", "2. 转人工"]
    assert PICTURE not in article["description"]  # the card shows it; no address in the text


async def test_dingtalk_shows_the_picture_and_link_in_markdown():
    sim = DingTalkSimulator()
    async with running(sim.app) as server:
        sim.base_url = f"http://127.0.0.1:{server.port}"
        robot = sim.create_robot()
        sim.add_staff(robot, "li01")
        account = AccountRef(id=1, kind="dingtalk", api_base=sim.base_url, settings={}, credentials={
            "app_key": robot.app_key, "app_secret": robot.app_secret, "robot_code": robot.robot_code})
        adapter = DingTalkAdapter()
        try:
            message = card("li01")
            await adapter.send(account, OutboundMessage("li01", message.text, title=message.title,
                                                        image_url=PICTURE, link_url=PAGE))
            await adapter.send(account, message)  # with buttons: an interactive card
        finally:
            await adapter.close()
    markdown, interactive = robot.sent
    assert markdown["msgKey"] == "sampleMarkdown"
    assert f"![]({PICTURE})" in markdown["text"] and f"]({PAGE})" in markdown["text"]
    assert interactive["via"] == "interactiveCard" and f"![]({PICTURE})" in interactive["text"]


def test_email_has_an_html_part_with_the_picture_and_a_plain_part_with_the_addresses():
    adapter = EmailAdapter()
    account = AccountRef(id=4, kind="email", api_base=None, settings={}, credentials={
        "address": "sales@example.cn", "imap_host": "127.0.0.1", "smtp_host": "127.0.0.1",
        "username": "sales", "password": "x"})
    mail = adapter.compose(account, card("wang@example.com"))
    plain = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    assert f"🖼 {PICTURE}" in plain and f"🔗 {PAGE}" in plain and "1. 了解分期" in plain
    assert f'<img src="{PICTURE}"' in html and f'href="{PAGE}"' in html and "<h3>X200 多少钱？</h3>" in html


async def test_email_attaches_a_document_and_keeps_its_address_out_of_the_words():
    pdf = b"%PDF-1.4\n%%EOF\n"
    files = Starlette(routes=[Route("/files/q.pdf", lambda _: Response(pdf, media_type="application/pdf"))])
    adapter = EmailAdapter(allow_private=True)
    async with running(files) as server:
        with smtp_server() as smtp:
            account = AccountRef(id=4, kind="email", api_base=None, settings={}, credentials={
                "address": smtp.user, "imap_host": "127.0.0.1", "smtp_host": smtp.host, "smtp_port": smtp.port,
                "smtp_security": "none", "username": smtp.user, "password": smtp.password})
            url = f"http://127.0.0.1:{server.port}/files/q.pdf"
            await adapter.send(account, OutboundMessage("wang@example.com", "报价单见附件。", file_url=url,
                                                        file_name="报价单 2027"))
            [mail] = smtp.received
            [attached] = list(mail.iter_attachments())
            assert attached.get_filename() == "报价单 2027.pdf" and attached.get_content_type() == "application/pdf"
            assert attached.get_content() == pdf
            assert mail.get_body(("plain",)).get_content().strip() == "报价单见附件。"
            # Where private networks may not be reached, the address is refused before any mail goes.
            strict = EmailAdapter()
            with pytest.raises(PermanentFailure, match="file was not fetched"):
                await strict.send(account, OutboundMessage("wang@example.com", "again", file_url=url))
            await strict.close()
            assert len(smtp.received) == 1
    await adapter.close()


def test_wecom_external_contacts_get_text_with_addresses_and_numbered_options():
    text = _as_text(card("wmExternal"))
    assert text.splitlines() == ["X200 多少钱？", "X200 售价 3999 元，分期免息。", f"🖼 {PICTURE}", f"🔗 {PAGE}", "",
                                 "1. 了解分期", "2. 转人工"]


@pytest.mark.parametrize("payload", [
    {"text": "hi"},
    {"text": "hi", "image_url": PICTURE, "link_url": PAGE, "title": "T", "buttons": [{"label": "a", "data": "b"}]},
    {"text": "", "file_url": "https://hub.example.cn/media/abc.pdf", "file_name": "价格表.pdf"},
])
def test_a_queued_payload_keeps_every_part(payload):
    message = OutboundMessage.from_payload("r", payload)
    assert OutboundMessage.from_payload("r", message.to_payload()) == message


@pytest.mark.parametrize("options", [None, {}, {"sender": "zhangsan"}])
def test_a_text_payload_is_what_the_message_of_that_text_gives(options):
    """A campaign's step sends queue their payloads without making each message first."""
    payload = OutboundMessage.text_payload("您好 Alice", options)
    assert payload == OutboundMessage("r", "您好 Alice", options=options or {}).to_payload()
    assert OutboundMessage.from_payload("r", payload) == OutboundMessage("r", "您好 Alice", options=options or {})


@pytest.mark.parametrize(("text", "limit", "expected"), [
    ("Hand over", 10, "Hand over"),
    ("Talk to a person", 10, "Talk to a…"),
    ("New lead L12 for you: Emma Wilson", 26, "New lead L12 for you…"),
    ("新线索 L12 分配给您：王芳（#3）", 12, "新线索 L12 分配给…"),
    ("Handover:   many   spaces", 40, "Handover: many spaces"),
])
def test_titles_and_buttons_are_cut_between_words_never_inside_one(text, limit, expected):
    assert shortened(text, limit) == expected
    assert len(shortened(text, limit)) <= limit
