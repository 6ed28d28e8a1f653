"""The customer bot, as the customer and the reps live it: transcripts played through
the Telegram, WeChat official account and email simulators, with the reps in WeCom
and DingTalk (see tests/fakes/transcript.py for the notation)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from sqlalchemy import select

from crm_core import consent
from crm_core.models import BotSession, ConsentRequest, CsatSurvey, Lead, MessagePurpose
from tests.fakes.stack import Stack, WorkspaceStack, workspace_stack
from tests.fakes.transcript import RepChat, Transcript

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
     "synonyms": []},
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
        profile = {k: v for k, v in (("first_name", self.first_name), ("language_code", self.language_code)) if v}
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


@pytest.fixture
async def ws(database_url, tmp_path, sentiment_model_path):
    async with workspace_stack(database_url, tmp_path, marketing_quiet_hours="",
                               sentiment_model=str(sentiment_model_path)) as ws:
        for entry in FAQ:
            resp = await ws.tg.client.post(f"{ws.tg.hub_base}/api/v1/faq", json=entry, headers=ws.tg.api())
            assert resp.status_code == 201, resp.text
        yield ws


# The form (the most database work: a lead, the ledger, a JSON form state) runs on both
# backends; the other transcripts on SQLite, to keep the suite inside its time.
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def transcript(ws: WorkspaceStack, chat) -> Transcript:
    return Transcript(ws.tg.hub, chat, reps={"li": wecom_rep(ws, "li"), "boss": wecom_rep(ws, "boss")})


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
        # A person has it now: the bot keeps out.
        > 在吗？
        < (silence)
        @li > /claim {conversation}
        @li < is yours
        @li > /r {conversation} 王先生您好，火箭发动机我们不卖的。
        < 火箭发动机我们不卖
        > 机器人
        < 我回来了
        > 可以开发票吗？
        < 可以开增值税发票
    """)


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
        # No buttons on WeChat: the options come numbered, and a number answers them.
        > 你们在火星有分公司吗？
        < 抱歉，我没有完全理解 | 1. 转人工
        > 1
        < 已为您转接人工客服
        @li < 转人工 | 要求转人工 | 星辰科技有限公司
    """)
    assert "最后一个问题" not in "".join(talk.chat.bot_lines())  # no consent question after an opt-out
    async with ws.tg.hub.sessions() as session:
        lead = await session.scalar(select(Lead))
        decision = await consent.decide(lead.contact_id, purpose=MessagePurpose.MARKETING, channel="wechat",
                                        db_session=session)
        assert await session.scalar(select(ConsentRequest)) is None
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
        survey = await session.scalar(select(CsatSurvey))
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
