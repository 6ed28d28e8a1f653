"""Email end to end against real servers on 127.0.0.1 (Dovecot IMAP, aiosmtpd):
a customer emails, the rep works it from DingTalk, the customer gets a threaded
reply, answers, and the answer lands in the same conversation."""

from __future__ import annotations

import asyncio
import contextlib
from email.message import EmailMessage
from email.utils import make_msgid

import httpx
import pytest
from sqlalchemy import func, select

from channels.email.imap import ImapPoller
from crm_core import accounts
from crm_core.consent import service as consent
from crm_core.models import (
    ConsentEvent,
    Conversation,
    Direction,
    Identity,
    Message,
    MessagePurpose,
    OutboxMessage,
)
from tests.fakes.mail import dovecot_server, poller_account, smtp_server
from tests.fakes.stack import dingtalk_stack, eventually

# The mail path stores through the same ingest as every channel, which runs on both
# backends in tests/crm_core and the other end-to-end tests; here SQLite keeps the suite
# inside its time (each test starts Dovecot and SMTP).
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
from tests.hub.test_dingtalk_end_to_end import card_conversation

CUSTOMER = "chen@customer.example"


def customer_mail(text: str, *, subject: str = "询价：50 个账号", in_reply_to: str | None = None,
                  references: str | None = None, **headers: str) -> tuple[bytes, str]:
    mail = EmailMessage()
    mail["From"] = f"陈先生 <{CUSTOMER}>"
    mail["To"] = "sales@hub.example"
    mail["Subject"] = subject
    message_id = make_msgid(domain="customer.example")
    mail["Message-ID"] = message_id
    if in_reply_to:
        mail["In-Reply-To"] = in_reply_to
    if references:
        mail["References"] = references
    for name, value in headers.items():
        mail[name.replace("_", "-")] = value
    mail.set_content(text)
    return mail.as_bytes(), message_id


@contextlib.asynccontextmanager
async def email_stack(database_url, tmp_path):
    with dovecot_server() as imap, smtp_server() as smtp:
        async with dingtalk_stack(database_url, tmp_path) as dt:
            hub = dt.tg.hub
            adapter = hub.channels.get("email")
            creds = adapter.credentials_model.model_validate({
                "address": "sales@hub.example", "display_name": "ACME 销售", "imap_host": imap.host,
                "imap_port": imap.port, "imap_security": "none", "smtp_host": smtp.host, "smtp_port": smtp.port,
                "smtp_security": "none", "username": imap.user, "password": imap.password}).model_dump()
            async with hub.sessions() as session, session.begin():
                account = await accounts.create(
                    kind="email", name="Sales mailbox", platform_account_id="sales@hub.example", credentials=creds,
                    api_base=None, settings=adapter.settings_model.model_validate({"poll_seconds": 1}).model_dump(),
                    cipher=hub.cipher, actor=None, db_session=session)
            hub.accounts_changed.set()
            yield dt, imap, smtp, account.id


async def _count(hub, model, *where) -> int:
    async with hub.sessions() as session:
        return await session.scalar(select(func.count()).select_from(model).where(*where))


async def test_email_customer_dingtalk_rep_threaded_reply_and_answer(database_url, tmp_path):
    async with email_stack(database_url, tmp_path) as (dt, imap, smtp, account_id):
        hub = dt.tg.hub
        raw, first_id = customer_mail("您好，\n我们想买 50 个账号，请报价。\n\n-- \n陈伟 · 客户公司")
        imap.deliver(raw)

        card = await dt.receives("li01", "新线索", timeout=20)
        assert "我们想买 50 个账号，请报价。" in card["text"] and "陈伟" not in card["text"]
        conv = card_conversation(card)
        await dt.rep_clicks("li01", f"claim:{conv}")
        await dt.receives("li01", "已由您认领")
        await dt.rep_writes("li01", f"/回复 {conv} 陈先生您好，50 个账号每年 5 万元。")

        def rep_mail():
            return _async([m for m in smtp.received if "5 万元" in m.get_content()])
        [reply] = await eventually(rep_mail, timeout=15)
        # The bot's acknowledgement went first, marked as automatic so that no auto-responder answers it.
        greeting = smtp.received[0]
        assert greeting["Auto-Submitted"] == "auto-replied" and greeting["In-Reply-To"] == first_id
        assert reply["Auto-Submitted"] is None
        assert reply["To"] == CUSTOMER and reply["Subject"] == "Re: 询价：50 个账号"
        assert reply["In-Reply-To"] == first_id and reply["References"] == first_id
        assert reply["From"].addresses[0].addr_spec == "sales@hub.example"
        assert smtp.envelopes[-1] == ("sales@hub.example", [CUSTOMER])

        # The customer's client keeps only In-Reply-To: still the same conversation.
        answer, _ = customer_mail("好的，请发合同。\n\n在 2026年11月23日，ACME 销售 写道：\n> 50 个账号每年 5 万元",
                                  subject="Re: 询价：50 个账号", in_reply_to=reply["Message-ID"])
        imap.deliver(answer)
        reply_card = await dt.receives("li01", "好的，请发合同。", timeout=20)
        assert "5 万元" not in reply_card["text"]  # the quote was cut
        # A fresh mail with no headers but the same subject joins it too.
        again, _ = customer_mail("还有一个问题：能开发票吗？", subject="RE: 询价：50 个账号")
        imap.deliver(again)
        await dt.receives("li01", "能开发票吗", timeout=20)
        async with hub.sessions() as session:
            conversations = (await session.scalars(select(Conversation).where(
                Conversation.channel_account_id == account_id))).all()
        assert [c.id for c in conversations] == [conv]
        assert await _count(hub, Message, Message.conversation_id == conv, Message.direction == Direction.INBOUND) == 3

        # Processed mail is flagged \Seen; a new poller (a restart) finds nothing new.
        flags = imap.flags()
        assert len(flags) == 3 and all("\\Seen" in f for f in flags.values())
        stored = []

        async def sink(account_id, events, cursor):
            stored.extend(events)
            await hub.ingest(account_id, events, cursor)

        async def load_cursor(name):
            async with hub.sessions() as session:
                return await accounts.get_cursor(account_id, name, db_session=session)
        found = await hub.account(account_id)
        poller = ImapPoller(hub.channels.get("email"), found[1], sink, load_cursor)
        from channels.email.imap import open_mailbox
        client, validity = await open_mailbox(poller.creds, "INBOX")
        try:
            assert await poller.fetch_new(client, validity) == 0
        finally:
            await client.logout()
        assert stored == []

        # The same person on Telegram, giving their address: one contact (audited).
        await dt.tg.customer_writes(9002, "This is Chen, my email is chen@customer.example", first_name="Chen")

        async def linked():
            async with hub.sessions() as session:
                rows = dict((await session.execute(select(Identity.external_id, Identity.contact_id))).all())
            return rows if rows.get("9002") == rows.get(CUSTOMER) else None
        await eventually(linked)


async def test_auto_replies_bounces_and_lists_never_become_customer_messages(database_url, tmp_path):
    async with email_stack(database_url, tmp_path) as (dt, imap, smtp, account_id):
        hub = dt.tg.hub
        auto, _ = customer_mail("I am out of the office.", subject="Automatic reply: 询价",
                                Auto_Submitted="auto-replied")
        vacation, _ = customer_mail("休假中，下周回复", subject="自动回复：询价")
        listmail, _ = customer_mail("Newsletter", subject="News", List_Id="<news.customer.example>")
        for raw in (auto, vacation, listmail):
            imap.deliver(raw)
        real, _ = customer_mail("A real question after the noise")
        imap.deliver(real)
        await dt.receives("li01", "A real question after the noise", timeout=20)
        assert await _count(hub, Message, Message.channel_account_id == account_id,
                            Message.direction == Direction.INBOUND) == 1
        # An auto-responder on the other side cannot start a loop: the hub answered only the
        # real question (the bot's acknowledgement, itself marked Auto-Submitted).
        assert await _count(hub, OutboxMessage, OutboxMessage.channel_account_id == account_id) == 1
        [ack] = await eventually(lambda: _async(smtp.received[:1]), timeout=15)
        assert ack["Auto-Submitted"] == "auto-replied"
        assert all("\\Seen" in f for f in imap.flags().values())


async def test_marketing_mail_has_one_click_unsubscribe_that_records_the_opt_out(database_url, tmp_path):
    from crm_core.ports import OutboundMessage

    async with email_stack(database_url, tmp_path) as (dt, imap, smtp, account_id):
        hub = dt.tg.hub
        found = await hub.account(account_id)
        adapter = hub.channels.get("email")
        await adapter.send(found[1], OutboundMessage(CUSTOMER, "新品发布会邀请", title="新品发布会 · Launch",
                                                     options={"marketing": True}))
        mail = smtp.received[-1]
        assert mail["Subject"] == "新品发布会 · Launch"
        assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        link = mail["List-Unsubscribe"].strip("<>")
        assert link.startswith(f"{hub.settings.base_url}/hooks/email/{account_id}?")
        local = link.replace(hub.settings.base_url, dt.tg.hub_base)
        async with httpx.AsyncClient() as client:
            page = await client.get(local)
            assert page.status_code == 200 and "退订" in page.text and "text/html" in page.headers["content-type"]
            forged = await client.post(local.replace("t=", "t=0"), content=b"List-Unsubscribe=One-Click")
            assert forged.status_code == 403
            done = await client.post(local, content=b"List-Unsubscribe=One-Click",
                                     headers={"content-type": "application/x-www-form-urlencoded"})
            assert done.status_code == 200
        async with hub.sessions() as session:
            opt_out = await session.scalar(select(Message).where(Message.channel_account_id == account_id))
        assert opt_out.attachments == [{"type": "opt_out", "purpose": "marketing", "channel": "email",
                                        "source": "list-unsubscribe-post"}]

        # The worker writes it into the consent ledger: marketing to this contact stops, with the proof kept.
        async def withdrawn():
            async with hub.sessions() as session:
                return await session.scalar(select(ConsentEvent).where(ConsentEvent.granted.is_(False)))
        event = await eventually(withdrawn)
        assert event.source == "list-unsubscribe-post" and event.evidence["channel"] == "email"
        async with hub.sessions() as session:
            contact_id = await session.scalar(select(Identity.contact_id).where(Identity.external_id == CUSTOMER))
            decision = await consent.decide(contact_id, purpose=MessagePurpose.MARKETING, channel="email",
                                            db_session=session)
        assert event.contact_id == contact_id and not decision.allowed
        # Service mail carries no unsubscribe header.
        await adapter.send(found[1], OutboundMessage(CUSTOMER, "您的发票已开具"))
        assert smtp.received[-1]["List-Unsubscribe"] is None
        # A refused recipient is unreachable, not retried.
        from crm_core.ports import RecipientUnreachable
        smtp.refuse.add("gone@customer.example")
        try:
            await adapter.send(found[1], OutboundMessage("gone@customer.example", "hello"))
        except RecipientUnreachable as exc:
            assert "No such user" in str(exc)
        else:
            raise AssertionError("a 550 recipient must be unreachable")


async def _async(value):
    await asyncio.sleep(0)
    return value


async def test_a_25_mb_attachment_and_broken_mime_are_stored_safely(database_url, tmp_path):
    async with email_stack(database_url, tmp_path) as (dt, imap, smtp, account_id):
        hub = dt.tg.hub
        big = EmailMessage()
        big["From"], big["To"], big["Subject"] = f"陈先生 <{CUSTOMER}>", "sales@hub.example", "图纸"
        big["Message-ID"] = make_msgid(domain="customer.example")
        big.set_content("图纸见附件，请报价。")
        big.add_attachment(bytes(range(256)) * (25 * 4096), maintype="application", subtype="octet-stream",
                           filename="drawing.dwg")
        imap.deliver(big.as_bytes())
        broken = (b"From: li@customer.example\r\nSubject: =?gb2312?B?broken?=\r\nMessage-ID: <broken1@customer>\r\n"
                  b"Content-Type: multipart/mixed; boundary=\"B\"\r\n\r\n--B\r\n"
                  b"Content-Type: text/plain; charset=gb2312\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                  b"1eLKx9bQzsQ=!!\r\n--B\r\nContent-Type: text/plain; charset=no-such-charset\r\n\r\n\xff\xfe\r\n")
        imap.deliver(broken)

        async def both():
            async with hub.sessions() as session:
                rows = (await session.scalars(select(Message).where(
                    Message.channel_account_id == account_id, Message.direction == Direction.INBOUND)
                    .order_by(Message.id))).all()
            return rows if len(rows) == 2 else None
        first, second = await eventually(both, timeout=60)
        assert first.text == "图纸见附件，请报价。"
        assert {"type": "file", "name": "drawing.dwg", "content_type": "application/octet-stream",
                "size": 25 * 1024 * 1024} in first.attachments
        assert first.raw["size"] > 25 * 1024 * 1024 and len(str(first.raw)) < 20_000
        assert second.text.startswith("这是中文") and second.raw["defects"]

        async def all_seen():  # flagged on the server after the messages are committed, not before
            return all("\\Seen" in f for f in imap.flags().values())
        await eventually(all_seen, timeout=30)


async def test_a_mail_that_lands_between_the_search_and_idle_is_read_at_once(database_url):
    """Dovecot announces a mail delivered while the poller runs a command with an untagged EXISTS
    in that command's answer; aioimaplib drops it (it belongs to no command it waits for). The poller notices it and
    looks again, instead of idling over the mail for IDLE_SECONDS (5 minutes). Seen in CI: an
    email conversation's first message never arrived."""
    with dovecot_server() as imap:
        adapter, account = poller_account(imap.host, imap.port, imap.user, imap.password)
        stored: list[str] = []
        cursor: dict[str, str] = {}

        async def sink(_account_id, events, position) -> None:
            stored.extend(event.text for event in events)
            cursor[position[0]] = position[1]

        async def load_cursor(name: str) -> str | None:
            return cursor.get(name)

        poller = ImapPoller(adapter, account, sink, load_cursor)
        searched = poller.fetch_new

        async def then_a_mail_arrives(client, validity) -> int:
            found = await searched(client, validity)
            if not stored:  # once: right after the first search, before IDLE is asked for
                raw, _ = customer_mail("Between the search and IDLE")
                await asyncio.to_thread(imap.deliver, raw)
                # The next command's answer carries Dovecot's "* 1 EXISTS", as the poller's own
                # SEARCH or STORE does when a mail lands meanwhile; aioimaplib drops it.
                await client.uid("fetch", "1:*", "(UID)")
            return found

        poller.fetch_new = then_a_mail_arrives
        stop = asyncio.Event()
        task = asyncio.create_task(poller.run(stop))
        try:
            await eventually(lambda: _async(stored), timeout=15)
        finally:
            stop.set()
            await asyncio.wait_for(task, 15)
        assert stored == ["Between the search and IDLE"]
