"""The customer bot, as the customer and the reps live it: transcripts played through
Telegram and the WeChat official account simulators and a real mail server (Dovecot,
aiosmtpd), with the reps in WeCom and DingTalk (tests/fakes/transcript.py: the notation)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from sqlalchemy import func, select

from crm_core.consent import service as consent
from crm_core.models import BotSession, ConsentRequest, CsatSurvey, Identity, Lead, MessagePurpose
from tests.fakes.stack import Stack, WorkspaceStack, eventually, workspace_stack
from tests.fakes.transcript import RepChat, Transcript
from tests.hub.test_email_end_to_end import CUSTOMER, customer_mail, email_stack

FAQ = [
    {"questions": {"zh": ["退货流程是什么", "怎么退货"], "en": ["How do I return an item?"]},
     "answers": {"zh": "退货请在订单页点击“申请退货”，7 天内寄回即可。", "en": "Open the order and press Return; "
                                                                   "send it back within 7 days."},
     "synonyms": [["退货", "退换货", "退款", "return", "refund"]]},
    {"questions": {"zh": ["发货要多久", "几天发货"], "en": ["How long does shipping take?"]},
     "answers": {"zh": "订单 2 个工作日内发货。", "en": "Orders ship within 2 working days."},
     "synonyms": [["发货", "配送", "寄出", "shipping", "delivery", "ship"]]},
    {"questions": {"zh": ["发票怎么开", "可以开发票吗"], "en": ["Can I get an invoice?"]},
     "answers": {"zh": "可以开增值税发票，请在订单页填写开票信息。", "en": "Yes: fill in the invoice details on the order page."},
     "synonyms": [], "image_url": "https://cdn.example.cn/help/invoice.png", "link_url": "https://help.example.cn/invoice"},
]


@dataclass
class TelegramCustomer:
    stack: Stack
    user_id: int
    first_name: str | None = None
    language_code: str | None = None

    @property
    def external_id(self) -> str:
        return str(self.user_id)

    @property
    def account_id(self) -> int:
        return self.stack.account_id

    async def writes(self, text: str) -> None:
        profile = {k: v for k, v in (("first_name", self.first_name), ("language_code", self.language_code))
                   if v is not None}
        await self.stack.customer_writes(self.user_id, text, **profile)

    async def presses(self, label: str) -> None:
        message = next(m for m in reversed(self.stack.chat(self.user_id))
                       if m["from"] == "bot" and any(label in b["text"] for b in m["buttons"]))
        button = next(b for b in message["buttons"] if label in b["text"])
        resp = await self.stack.client.post(
            f"{self.stack.sim_base}/_sim/bots/{self.stack.bot.id}/users/{self.user_id}/press",
            json={"message_id": message["raw"]["message_id"], "data": button["callback_data"]})
        resp.raise_for_status()

    def bot_lines(self) -> list[str]:
        return self.stack.bot_lines(self.user_id)


@dataclass
class WeChatFollower:
    """A follower of the official account: no buttons there, options come numbered."""

    ws: WorkspaceStack
    openid: str

    @property
    def external_id(self) -> str:
        return self.openid

    @property
    def account_id(self) -> int:
        return self.ws.wechat_account_id

    async def writes(self, text: str) -> None:
        await self.ws.follower(self.openid, "messages", text=text)

    async def presses(self, label: str) -> None:
        last = self.bot_lines()[-1]
        number = next(line.split(".")[0] for line in last.splitlines() if line.endswith(f". {label}")
                      or line.split(". ", 1)[-1] == label)
        await self.writes(number)

    def bot_lines(self) -> list[str]:
        return self.ws.wechat_account.transcript(self.openid)


def wecom_rep(ws: WorkspaceStack, userid: str) -> RepChat:
    async def writes(text: str) -> None:
        await ws.rep_writes(userid, text)
    return RepChat(writes, lambda: [json.dumps(m, ensure_ascii=False) for m in ws.rep_inbox(userid)])


async def _stack(database_url: str, data_dir, sentiment_model_path):
    async with workspace_stack(database_url, data_dir, marketing_quiet_hours="",
                               sentiment_model=str(sentiment_model_path)) as ws:
        for entry in FAQ:
            resp = await ws.tg.client.post(f"{ws.tg.hub_base}/api/v1/faq", json=entry, headers=ws.tg.api())
            assert resp.status_code == 201, resp.text
        yield ws


@pytest.fixture
async def ws(database_url, tmp_path, sentiment_model_path):
    async for stack in _stack(database_url, tmp_path, sentiment_model_path):
        yield stack


sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def transcript(ws: WorkspaceStack, chat) -> Transcript:
    reps = {"li": wecom_rep(ws, "li"), "boss": wecom_rep(ws, "boss")}
    return Transcript(ws.tg.hub, chat, reps=reps, rep_seen={name: len(r.inbox()) for name, r in reps.items()})


@sqlite_only
async def test_faq_answers_then_a_person_takes_over_with_the_whole_story(ws):
    talk = transcript(ws, TelegramCustomer(ws.tg, 701, "王伟", "zh-hans"))
    await talk.play("""
        > 你好，我想退换货，流程是怎样的？
        < 您好，王伟！ | 退货请在订单页点击“申请退货”
        # Language follows the customer.
        > How long does delivery take?
        < Orders ship within 2 working days.
        > 你们卖火箭发动机吗？
        < 抱歉，我没有完全理解
        > 那区块链呢？
        < 已为您转接人工客服
        @li < 转人工 | 机器人连续两次无法回答 | 客户说 | 我想退换货 | 机器人答 | Orders ship within 2 working days
        # Nobody has it yet: the bot answers what it can, and says a person is coming.
        > 发货要多久？
        < 订单 2 个工作日内发货。 | 人工客服会尽快在这里回复您
        > 在吗？
        < 人工客服会尽快在这里回复您
        @li > /claim {conversation}
        @li < is yours
        # A person has it now: the bot keeps out.
        > 发票怎么开？
        < (silence)
        @li > /r {conversation} 王先生您好，火箭发动机我们不卖的。
        < 火箭发动机我们不卖
        > 机器人
        < 我回来了
        > 可以开发票吗？
        < 可以开增值税发票
    """)
    # An answer with a picture: a photo with its caption and a button to the page.
    last = ws.tg.bot.sent[-1]
    assert last["photo"][-1]["url"] == FAQ[2]["image_url"] and last["caption"].startswith("可以开增值税发票")
    assert last["reply_markup"]["inline_keyboard"][-1][0]["url"] == FAQ[2]["link_url"]


@sqlite_only
async def test_a_lead_form_with_a_correction_resumed_a_day_later_ends_in_a_lead_and_a_consent_answer(ws):
    talk = transcript(ws, TelegramCustomer(ws.tg, 702, "Alice", "en"))
    await talk.play("""
        > Hi, how much is the Pro plan?
        < Hello, Alice! | A few quick questions | Which company are you with?
        @li < 新线索
        > Acme Trading Ltd
        < What phone number or email
        > call me maybe
        < does not look like a phone number or email | What phone number or email
        > +86 138 0013 8000
        < What do you need
        ~ 1 day later
        > We need 50 seats for our sales team
        < Welcome back! | Roughly what budget
        > sorry, my number is 139 0013 9000
        < Updated: phone or email is now +8613900139000 | Roughly what budget
        > about 50k
        < When would you like to start?
        > next month
        < Thank you, Alice! | Acme Trading Ltd | +8613900139000 | 50 seats | about 50k | next month | here on Telegram
        # Nobody has claimed the lead yet: every rep gets the answers.
        @li < 客户已填写线索表单 | Acme Trading Ltd | +8613900139000 | about 50k
        > yes
        < you are subscribed
    """)
    async with ws.tg.hub.sessions() as session:
        lead = await session.scalar(select(Lead))
        state = await session.scalar(select(BotSession))
        ledger = await consent.ledger(lead.contact_id, db_session=session)
        request = await session.scalar(select(ConsentRequest))
    assert lead.company == "Acme Trading Ltd"
    assert lead.details == {"need": "50 seats for our sales team", "budget": "about 50k", "timeframe": "next month",
                            "contact": "+8613900139000"}
    assert state.form["status"] == "done"
    # The proof: the question in the bot's words on this channel, and the customer's own answer.
    [grant] = ledger["events"]
    assert grant["granted"] and grant["channel"] == "telegram" and grant["evidence"]["words"] == "yes"
    assert "here on Telegram" in grant["evidence"]["request"]["question"]
    assert request.status == "confirmed"

    # Another customer says no: a refusal in the ledger, with the same proof, and no marketing.
    talk = transcript(ws, TelegramCustomer(ws.tg, 712, "Bruno", "en"))
    await talk.play("""
        > Hi, I'd like a quote for the Pro plan
        < Which company are you with?
        > Bruno Design
        < What phone number or email
        > bruno@design.example
        < What do you need
        > A CRM for 5 people
        < Roughly what budget
        > 10k
        < When would you like to start?
        > this quarter
        < Thank you, Bruno! | here on Telegram
        > no
        < we will not send you marketing messages
    """)
    async with ws.tg.hub.sessions() as session:
        contact_id = await session.scalar(select(Identity.contact_id).where(Identity.external_id == "712"))
        [refusal] = (await consent.ledger(contact_id, db_session=session))["events"]
        request = await session.scalar(select(ConsentRequest).where(ConsentRequest.contact_id == contact_id))
        decision = await consent.decide(contact_id, purpose=MessagePurpose.MARKETING, channel="telegram",
                                        db_session=session)
    assert not refusal["granted"] and refusal["evidence"]["words"] == "no"
    assert "here on Telegram" in refusal["evidence"]["request"]["question"]
    assert request.status == "declined" and request.confirmed_event_id == refusal["id"]
    assert not decision.allowed


@sqlite_only
async def test_the_customers_words_choose_the_language_and_traditional_readers_get_traditional(ws):
    # Traditional characters in, Traditional characters out: the FAQ entry is written in Simplified.
    taiwan = transcript(ws, TelegramCustomer(ws.tg, 704, "陳小姐", "zh-TW"))
    await taiwan.play("""
        > 請問可以開發票嗎？
        < 您好，陳小姐！ | 可以開增值稅發票，請在訂單頁填寫開票信息
        # A word anyone types says nothing of the language: a Chinese speaker's STOP is answered in Chinese.
        > STOP
        < 已為您退訂
    """)
    # An app set to Simplified Chinese, and STOP as the first words: Chinese, Simplified.
    mainland = transcript(ws, TelegramCustomer(ws.tg, 705, "刘先生", "zh-hans"))
    await mainland.play("""
        > STOP
        < 已为您退订
    """)
    # English words are English, whatever the app says.
    english = transcript(ws, TelegramCustomer(ws.tg, 706, "Ming", "zh-CN"))
    await english.play("""
        > How long does shipping take?
        < Hello, Ming! | Orders ship within 2 working days.
    """)


@sqlite_only
async def test_a_complaint_in_the_middle_of_the_form_pauses_it_and_a_person_takes_over(ws):
    talk = transcript(ws, TelegramCustomer(ws.tg, 702, "Lucy", "en"))
    await talk.play("""
        > Hi, I'd like a quote for 20 seats
        < I can have a sales colleague | Which company are you with?
        > the last order arrived broken and nobody answered me
        < I am passing you to a colleague
        @li < 转人工 | arrived broken
        # The form waits; the complaint is not the company's name.
        > hello?
        < A colleague will reply here soon
    """)
    async with ws.tg.hub.sessions() as session:
        contact_id = await session.scalar(select(Identity.contact_id).where(Identity.external_id == "702"))
        state = await session.scalar(select(BotSession).where(BotSession.contact_id == contact_id))
        assert state.form["status"] == "left" and "company" not in state.form["fields"]
        # The buying signal's lead, if one was opened, has no company taken from the complaint.
        assert await session.scalar(select(Lead.company).where(Lead.contact_id == contact_id)) is None


@sqlite_only
async def test_an_opt_out_in_the_middle_of_the_form_is_honoured_and_the_form_goes_on(ws):
    await ws.follower("oZhang", "follow")
    talk = transcript(ws, WeChatFollower(ws, "oZhang"))
    await talk.play("""
        > 你好，想了解一下报价
        < 我可以请销售同事为您详细解答 | 请问怎么称呼您？
        > 张三
        < 请问您的公司名称是？
        > 退订
        < 已为您退订
        > 星辰科技有限公司
        < 请留下您的手机号或邮箱
        > zhang@xingchen.cn
        < 请简单描述一下您的需求
        > 需要一套 CRM 系统
        < 您的大致预算是多少
        > 不确定
        < 您计划什么时候开始
        > 三个月内
        < 谢谢，张三！ | 星辰科技有限公司 | zhang@xingchen.cn | 不确定
        # An answer with a picture is an article card on WeChat.
        > 可以开发票吗？
        < 可以开发票吗 | 可以开增值税发票 | [picture]
        # No buttons on WeChat: the options come numbered, and a number answers them.
        > 你们在火星有分公司吗？
        < 抱歉，我没有完全理解 | 1. 转人工
        > 1
        < 已为您转接人工客服
        @li < 转人工 | 要求转人工 | 星辰科技有限公司
    """)
    assert "最后一个问题" not in "".join(talk.chat.bot_lines())  # no consent question after an opt-out
    [card] = [m for m in ws.wechat_account.sent if m["msgtype"] == "news"]
    assert (card["article"]["picurl"], card["article"]["url"]) == (FAQ[2]["image_url"], FAQ[2]["link_url"])
    async with ws.tg.hub.sessions() as session:
        contact_id = await session.scalar(select(Identity.contact_id).where(Identity.external_id == "oZhang"))
        decision = await consent.decide(contact_id, purpose=MessagePurpose.MARKETING, channel="wechat",
                                        db_session=session)
        assert await session.scalar(select(Lead.company).where(Lead.contact_id == contact_id)) == "星辰科技有限公司"
        assert await session.scalar(select(ConsentRequest).where(ConsentRequest.contact_id == contact_id)) is None
    assert not decision.allowed and "withdrawn" in decision.reason


@sqlite_only
async def test_a_resolved_conversation_gets_a_satisfaction_question_and_a_low_score_reaches_the_manager(ws):
    talk = transcript(ws, TelegramCustomer(ws.tg, 703, "Bob", "en"))
    await talk.play("""
        > I want to talk to a human please
        < passing you to a colleague
        @li < 转人工 | 要求转人工
        @li > /claim {conversation}
        @li > /r {conversation} Hi Bob, Li here. Your replacement is on its way.
        < Your replacement is on its way
        @li > /resolve {conversation}
        @li < marked resolved
        < How did we do? | 1 (poor) to 5 (excellent)
        [press] 2
        < sorry we fell short
        @boss < 满意度低 | 2/5
    """)
    async with ws.tg.hub.sessions() as session:
        survey = await session.scalar(select(CsatSurvey).where(CsatSurvey.conversation_id == await talk.conversation_id()))
    assert survey.score == 2 and survey.rep_user_id == ws.reps["li"]


@sqlite_only
async def test_a_strongly_negative_customer_goes_to_a_person_at_once(ws):
    talk = transcript(ws, TelegramCustomer(ws.tg, 704, "李娜", "zh-hans"))
    await talk.play("""
        > 你们的产品太差了，垃圾，我要投诉，马上退款！
        < 已为您转接人工客服
        @li < 转人工 | 客户情绪负面 | 垃圾
        @boss < 转人工 | 客户情绪负面
    """)


@sqlite_only
async def test_a_message_without_words_is_answered_in_the_accounts_default_language(ws):
    from crm_core.models import ChannelAccount

    async with ws.tg.hub.sessions() as session, session.begin():
        account = await session.get(ChannelAccount, ws.tg.account_id)
        account.settings = {**account.settings, "default_language": "zh"}
    talk = transcript(ws, TelegramCustomer(ws.tg, 706, language_code=""))  # no app language
    await talk.play("""
        > 👍
        < 您好，User 706！感谢您的联系
        > Hello, can I get an invoice?
        < Yes: fill in the invoice details
    """)


@dataclass
class EmailCustomer:
    """Mr Chen writing to the sales mailbox (Dovecot), the bot answering by SMTP."""

    imap: object
    smtp: object
    account_id: int
    subject: str = "Shipping question"
    external_id: str = CUSTOMER

    async def writes(self, text: str) -> None:
        answered = [m for m in self.smtp.received if m["To"] == CUSTOMER]
        raw, _ = customer_mail(text, subject=f"Re: {self.subject}" if answered else self.subject,
                               in_reply_to=answered[-1]["Message-ID"] if answered else None)
        self.imap.deliver(raw)

    async def presses(self, label: str) -> None:
        last = self.bot_lines()[-1]
        await self.writes(next(line.split(".")[0] for line in last.splitlines() if line.endswith(f". {label}")))

    def bot_lines(self) -> list[str]:
        return [m.get_content() for m in self.smtp.received if m["To"] == CUSTOMER]


@sqlite_only
async def test_email_questions_are_answered_by_mail_and_a_handoff_reaches_the_rep_in_dingtalk(database_url,
                                                                                                tmp_path):
    async with email_stack(database_url, tmp_path) as (dt, imap, smtp, account_id):
        for entry in FAQ:
            resp = await dt.tg.client.post(f"{dt.tg.hub_base}/api/v1/faq", json=entry, headers=dt.tg.api())
            assert resp.status_code == 201, resp.text

        def rep(staff_id: str) -> RepChat:
            async def writes(text: str) -> None:
                await dt.rep_writes(staff_id, text)
            return RepChat(writes, lambda: [json.dumps(m, ensure_ascii=False) for m in dt.inbox(staff_id)])

        talk = Transcript(dt.tg.hub, EmailCustomer(imap, smtp, account_id), reps={"li": rep("li01")})
        await talk.play("""
            > Hello, how long does shipping take to Shanghai?
            < Orders ship within 2 working days.
            > Thanks. Do you have an office on Mars?
            < Sorry, I am not sure I understood | 1. Talk to a person
            > 1
            < passing you to a colleague
            @li < 转人工 | 要求转人工 | how long does shipping take | Orders ship within 2 working days
        """)
    # Every answer went out marked automatic, so the customer's auto-responder stays quiet.
    assert all(m["Auto-Submitted"] == "auto-replied" for m in smtp.received if m["To"] == CUSTOMER)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_replies_go_out_within_two_seconds_of_arriving_under_normal_load(ws):
    """Ten new customers asking at the same moment: each answer leaves the hub within
    2 s of the question arriving (stored from the webhook, to the platform accepting the
    reply), though each new customer also sends a card to every rep. On PostgreSQL; on
    the embedded SQLite the tail is 1.9-2.2 s here, the worker's, the webhook's and the
    dispatcher's writes taking turns on its one write lock."""
    import asyncio

    from crm_core.models import Message, OutboxMessage

    customers = range(800, 810)
    questions = ["发货要多久？", "How long does shipping take?", "可以开发票吗？"]
    await asyncio.gather(*(ws.tg.customer_writes(user, questions[user % 3], first_name=f"C{user}")
                           for user in customers))

    async def delays() -> dict[int, float] | None:
        async with ws.tg.hub.sessions() as session:
            arrived = dict((await session.execute(
                select(Message.conversation_id, Message.created_at).where(Message.direction == "in"))).all())
            sent = dict((await session.execute(
                select(OutboxMessage.conversation_id, OutboxMessage.sent_at)
                .where(OutboxMessage.conversation_id.in_(arrived), OutboxMessage.sent_at.is_not(None)))).all())
        if len(arrived) < len(customers) or set(sent) != set(arrived):
            return None  # not all answered yet
        return {conversation: (sent[conversation] - at).total_seconds() for conversation, at in arrived.items()}

    delays = await eventually(delays, timeout=30)
    assert len(delays) == len(customers)
    assert max(delays.values()) < 2.0, sorted(round(d, 2) for d in delays.values())
    # Within Telegram's limits all along: a 429 would have held an answer back a second more.
    assert ws.tg.bot.flood_refusals == []


@sqlite_only
async def test_on_the_embedded_database_a_steady_stream_is_answered_within_two_seconds(ws):
    """The embedded SQLite under the load a small team's hub sees: new customers arriving
    two a second for ten seconds, each answered within 2 s of arriving (with a card to
    every rep for each). Ten at the same instant can take a little longer on SQLite (its
    one write lock); the test above holds that on PostgreSQL."""
    import asyncio

    from crm_core.models import Message, OutboxMessage

    customers = range(820, 840)
    questions = ["发货要多久？", "How long does shipping take?", "可以开发票吗？"]
    for user in customers:
        await ws.tg.customer_writes(user, questions[user % 3], first_name=f"C{user}")
        await asyncio.sleep(0.5)

    async def delays() -> dict[int, float] | None:
        async with ws.tg.hub.sessions() as session:
            arrived = dict((await session.execute(
                select(Message.conversation_id, Message.created_at).where(Message.direction == "in"))).all())
            sent = dict((await session.execute(
                select(OutboxMessage.conversation_id, func.min(OutboxMessage.sent_at))
                .where(OutboxMessage.conversation_id.in_(arrived), OutboxMessage.sent_at.is_not(None))
                .group_by(OutboxMessage.conversation_id))).all())
        if len(arrived) < len(customers) or set(sent) != set(arrived):
            return None
        return {conversation: (sent[conversation] - at).total_seconds() for conversation, at in arrived.items()}

    delays = await eventually(delays, timeout=30)
    assert max(delays.values()) < 2.0, sorted(round(d, 2) for d in delays.values())


@sqlite_only
async def test_event_registration_is_confirmed_answered_and_reminded_once(ws):
    import datetime as dt

    import time_machine

    starts = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(hours=30)
    for body in ({"names": {"zh": "X200 发布会", "en": "X200 launch"}, "starts_at": starts.isoformat(),
                  "location": "上海国际会展中心", "keywords": ["X200"], "remind_hours": [24, 1]},
                 {"names": {"zh": "CRM 入门网络研讨会", "en": "CRM basics webinar"},
                  "starts_at": (starts + dt.timedelta(days=7)).isoformat()}):
        resp = await ws.tg.client.post(f"{ws.tg.hub_base}/api/v1/events", json=body, headers=ws.tg.api())
        assert resp.status_code == 201, resp.text
    bad = await ws.tg.client.post(f"{ws.tg.hub_base}/api/v1/events", headers=ws.tg.api(),
                                  json={"names": {"zh": "无时区"}, "starts_at": "2026-12-01T14:00:00"})
    assert bad.status_code == 422 and "needs a time zone" in bad.text

    talk = transcript(ws, TelegramCustomer(ws.tg, 705, "周杰", "zh-hans"))
    await talk.play("""
        > 我想报名参加活动
        < 请问您要报名哪个活动？
        [press] X200 发布会
        < 报名成功！X200 发布会 | 上海国际会展中心 | 活动开始前我们会提醒您
        > 我报名了吗？
        < 您已报名 | X200 发布会
        > 我要报名X200发布会
        < 您已报名X200 发布会 | 无需重复报名
    """)
    hub = ws.tg.hub
    # Seven hours later the 24-hour reminder is due: sent once, however often the job runs.
    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(hours=7), tick=True):
        assert await hub.event_reminders() == 1
        assert await hub.event_reminders() == 0
        await talk.play("""
            < 提醒：X200 发布会将于 | 开始，地点：上海国际会展中心
        """)
    resp = await ws.tg.client.get(f"{ws.tg.hub_base}/api/v1/events", headers=ws.tg.api())
    counts = {e["names"]["en"]: e["registered"] for e in resp.json()}
    assert counts == {"X200 launch": 1, "CRM basics webinar": 0}
