"""A rep does their whole job from WeCom: cards, claim, reply, notes, stages, hand over.

Everything goes over HTTP on 127.0.0.1: the Telegram simulator posts the
customer's updates to the hub, the WeCom simulator posts the rep's encrypted
callbacks, and the hub's sends land in the simulators.
"""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

from sqlalchemy import select

from crm_core.models import AuditLog, Contact, Conversation, Note, OutboxMessage, OutboxStatus, User
from tests.fakes.stack import eventually, workspace_stack

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def conversation_id_of(card: dict) -> int:
    keys = [b["key"] for b in card["card"]["button_list"]]
    return int(re.search(r":(\d+)$", keys[0]).group(1))


async def test_telegram_customer_to_wecom_rep_and_back(database_url, tmp_path):
    async with workspace_stack(database_url, tmp_path) as ws:
        tg = ws.tg
        await tg.customer_writes(1001, "Hi, I need a quote for 50 seats", first_name="Alice")

        # Every rep gets a claimable new-lead card with the customer's words.
        card = await ws.rep_receives("li", "新线索")
        assert "Hi, I need a quote for 50 seats" in card["text"]
        assert [b["key"].split(":")[0] for b in card["card"]["button_list"]] == ["claim", "reply", "snooze"]
        # The card in Li's language, all of it; where the lead came from, as a person says it, in the panel's list.
        assert "阶段：新线索 · 负责人：-" in card["text"] and "stage" not in card["text"]
        today = dt.datetime.now(dt.UTC)
        [lead] = (await tg.client.get(f"{tg.hub_base}/api/v1/leads", headers=tg.api())).json()
        assert lead["source_label"] == {"en": f"Telegram, message of {today.day} {MONTHS[today.month - 1]}",
                                        "zh": f"Telegram {today.month}月{today.day}日的消息"}
        assert lead["contact_name"] == "Alice"
        await ws.rep_receives("wang", "新线索")
        conv = conversation_id_of(card)

        # Li claims first; Wang is told it is too late.
        before = len(ws.rep_inbox("li"))
        await ws.rep_clicks("li", f"claim:{conv}")
        await ws.rep_receives("li", f"会话 #{conv}（Alice）已由您认领", after=before)
        await ws.rep_clicks("wang", f"claim:{conv}")
        await ws.rep_receives("wang", "晚了一步")

        # Li replies with /r; the customer gets it on Telegram.
        await ws.rep_writes("li", f"/r {conv} Sure, 50 seats cost 5,000 CNY a year.")
        await customer_gets(tg, 1001, "Sure, 50 seats cost 5,000 CNY a year.")
        await ws.rep_receives("li", f"Sent to Alice (#{conv})")

        # The customer's answer comes back to Li's WeCom as a card.
        await tg.customer_writes(1001, "Great, please send the contract")
        answer = await ws.rep_receives("li", "Alice", after=before + 2)
        assert "Great, please send the contract" in answer["text"]

        # Notes and stages, with clear errors for mistakes.
        mark = len(ws.rep_inbox("li"))
        await ws.rep_writes("li", f"/note {conv} promised a 10% discount for a 2-year deal")
        await ws.rep_receives("li", f"Note added to #{conv}", after=mark)
        await ws.rep_writes("li", f"/stage {conv} qualified")
        await ws.rep_receives("li", f"#{conv} moved from new to qualified", after=mark)
        await ws.rep_writes("li", f"/stage {conv} maybe")
        await ws.rep_receives("li", "Unknown stage maybe. Stages: new, contacted, qualified, proposal, won, lost",
                              after=mark)
        await ws.rep_writes("li", "/claim 99999")
        await ws.rep_receives("li", "There is no conversation #99999", after=mark)
        await ws.rep_writes("li", "/frobnicate")
        await ws.rep_receives("li", "Unknown command /frobnicate", after=mark)
        await ws.rep_writes("li", "/mine")
        await ws.rep_receives("li", f"#{conv} Alice · qualified", after=mark)

        # Wang may not act on Li's conversation.
        mark_w = len(ws.rep_inbox("wang"))
        await ws.rep_writes("wang", f"/r {conv} I can do it cheaper!")
        await ws.rep_receives("wang", f"#{conv} belongs to another rep", after=mark_w)
        assert "I can do it cheaper!" not in tg.bot_lines(1001)

        # The manager sees everything Li promised: the reply in the history with its author, the note.
        resp = await tg.client.get(f"{tg.hub_base}/api/v1/conversations/{conv}/messages", headers=tg.api())
        history = resp.json()
        li_id = ws.reps["li"]
        assert any(m["text"] == "Sure, 50 seats cost 5,000 CNY a year." and m["author_user_id"] == li_id
                   and m["direction"] == "out" for m in history)
        async with tg.hub.sessions() as session:
            notes = (await session.scalars(select(Note.text).where(Note.conversation_id == conv))).all()
            assert notes == ["promised a 10% discount for a 2-year deal"]
            contact = await session.scalar(select(Contact).join(Conversation).where(Conversation.id == conv))
            assert contact.stage == "qualified"
            actions = (await session.scalars(select(AuditLog.action).where(AuditLog.actor_user_id == li_id))).all()
            assert {"conversation.claim", "conversation.send", "contact.stage"} <= set(actions)


async def test_reply_button_then_plain_text_and_chinese_commands(database_url, tmp_path):
    async with workspace_stack(database_url, tmp_path) as ws:
        tg = ws.tg
        await tg.customer_writes(2002, "请问有试用吗？", first_name="王小明", language_code="zh-hans")
        card = await ws.rep_receives("wang", "新线索")
        conv = conversation_id_of(card)

        # "Reply" on a card claims the conversation and makes plain text go to the customer.
        await ws.rep_clicks("wang", f"reply:{conv}")
        await ws.rep_receives("wang", "请直接输入回复")
        await ws.rep_writes("wang", "有的，可以免费试用14天。")
        await customer_gets(tg, 2002, "有的，可以免费试用14天。")
        await ws.rep_receives("wang", f"已发送给 王小明（#{conv}）")

        await ws.rep_writes("wang", f"/阶段 {conv} 已联系")
        await ws.rep_receives("wang", f"#{conv} 阶段已由 new 改为 contacted")
        await ws.rep_writes("wang", "/帮助")
        await ws.rep_receives("wang", "/认领 N")

        # Hand over to Li by name: Li gets a card, Wang's plain text no longer goes to the customer.
        await ws.rep_writes("wang", f"/转交 {conv} @li")
        await ws.rep_receives("wang", f"#{conv} 已转交给 Li Lei")
        await ws.rep_receives("li", f"Wang Fang 将 #{conv}（王小明）转交给您")
        await ws.rep_writes("wang", "还有别的问题吗？")
        await ws.rep_receives("wang", "未发送")
        assert "还有别的问题吗？" not in tg.bot_lines(2002)


async def test_a_stranger_in_the_wecom_app_is_told_to_ask_an_admin(database_url, tmp_path):
    async with workspace_stack(database_url, tmp_path) as ws:
        ws.wecom.add_member(ws.wecom_app, "intern", "Intern")
        await ws.rep_writes("intern", "/mine")
        await ws.rep_receives("intern", "not registered as a rep")
        async with ws.tg.hub.sessions() as session:
            staff = (await session.scalars(select(Contact).where(Contact.is_staff.is_(True)))).all()
            assert [c.origin.split(":")[1] for c in staff] == ["intern"]
        # Colleagues are not customers: the contacts API does not list them.
        resp = await ws.tg.client.get(f"{ws.tg.hub_base}/api/v1/contacts", headers=ws.tg.api())
        assert resp.json() == []


async def test_departed_rep_conversations_go_to_a_colleague_with_history(database_url, tmp_path):
    async with workspace_stack(database_url, tmp_path) as ws:
        tg = ws.tg
        conv = await claimed_by(ws, "li", 3003, "Need 10 licences", "Carol")
        await ws.rep_writes("li", f"/r {conv} I will send the offer on Monday.")
        await customer_gets(tg, 3003, "I will send the offer on Monday.")

        boss_token = await _token(tg, "boss")
        resp = await tg.client.post(f"{tg.hub_base}/api/v1/users/{ws.reps['li']}/handover",
                                    json={"to_user_id": ws.reps["wang"], "deactivate": False},
                                    headers=tg.api(boss_token))  # a manager hands over; an admin switches off
        assert resp.status_code == 200, resp.text
        assert resp.json() == {"reassigned": 1, "deactivated": False, "wecom_transfers": 0}  # a Telegram customer
        await ws.rep_receives("wang", "Li Lei 的 1 个会话已转交给您")

        # Wang now owns it and sees what Li promised.
        await ws.rep_writes("wang", f"/card {conv}")
        card = await ws.rep_receives("wang", "I will send the offer on Monday.")
        assert "owner: Wang Fang" in card["text"]  # in the language of the command
        rep_token = await _token(tg, "wang")
        resp = await tg.client.post(f"{tg.hub_base}/api/v1/users/{ws.reps['wang']}/handover",
                                    json={"to_user_id": ws.reps["li"]}, headers=tg.api(rep_token))
        assert resp.status_code == 403
        async with tg.hub.sessions() as session:
            li = await session.get(User, ws.reps["li"])
            assert li.is_active is True  # handed over, still on: only an admin switches a user off


async def test_a_rep_snoozes_a_conversation_until_a_time_they_name(database_url, tmp_path):
    async with workspace_stack(database_url, tmp_path) as ws:
        tg = ws.tg
        conv = await claimed_by(ws, "li", 4004, "Call me back later about the price", "Dora")

        mark = len(ws.rep_inbox("li"))
        asked = dt.datetime.now(dt.UTC)
        await ws.rep_writes("li", f"/snooze {conv} 2h")
        zone = ZoneInfo(tg.hub.settings.default_timezone)
        due = (asked + dt.timedelta(hours=2)).astimezone(zone)
        said = await ws.rep_receives("li", f"I will remind you about #{conv} at", after=mark)
        shown = re.search(r"at (\d\d-\d\d \d\d:\d\d)", said["text"]).group(1)
        assert shown in {(due + dt.timedelta(minutes=m)).strftime("%m-%d %H:%M") for m in (0, 1)}
        # The card comes back then, not now: it waits in the outbox for its time.
        async with tg.hub.sessions() as session:
            [reminder] = (await session.scalars(
                select(OutboxMessage).where(OutboxMessage.idempotency_key.like("snooze:%")))).all()
            waits_until = reminder.next_attempt_at.replace(tzinfo=dt.UTC)
            assert abs(waits_until - (asked + dt.timedelta(hours=2))) < dt.timedelta(minutes=1)
            assert reminder.status == OutboxStatus.PENDING

        # In Chinese, a day and a time; words that name no time, or a time gone, are refused with examples.
        await ws.rep_writes("li", f"/稍后 {conv} 明天10点")
        tomorrow = (dt.datetime.now(zone) + dt.timedelta(days=1)).strftime("%m-%d")
        await ws.rep_receives("li", f"{tomorrow} 10:00 提醒您跟进 #{conv}", after=mark)
        await ws.rep_writes("li", f"/稍后 {conv} 等一会儿")
        await ws.rep_receives("li", "没能把“等一会儿”看作时间", after=mark)
        await ws.rep_writes("li", f"/snooze {conv} 2020-01-01 10:00")
        await ws.rep_receives("li", "01-01 10:00", after=mark)
        await ws.rep_writes("li", f"/snooze {conv}")
        await ws.rep_receives("li", "/snooze N 2h", after=mark)
        # Only one's own conversations: Wang may not snooze Li's.
        await ws.rep_writes("wang", f"/snooze {conv} 1h")
        await ws.rep_receives("wang", f"#{conv} belongs to another rep")
        async with tg.hub.sessions() as session:
            keys = (await session.scalars(select(OutboxMessage.idempotency_key)
                                          .where(OutboxMessage.idempotency_key.like("snooze:%")))).all()
            assert len(keys) == 2


async def claimed_by(ws, rep: str, user_id: int, text: str, first_name: str) -> int:
    """A Telegram customer writes; `rep` claims the conversation from the new-lead card."""
    mark = len(ws.rep_inbox(rep))
    await ws.tg.customer_writes(user_id, text, first_name=first_name)
    conv = conversation_id_of(await ws.rep_receives(rep, text, after=mark))
    await ws.rep_writes(rep, f"/claim {conv}")
    await ws.rep_receives(rep, "is yours", after=mark)
    return conv


async def _token(tg, username: str) -> str:
    from crm_core.people import users

    async with tg.hub.sessions() as session, session.begin():
        user = await session.scalar(select(User).where(User.username == username))
        return await users.create_token(user, name="test", db_session=session)


async def customer_gets(tg, user_id: int, text: str) -> None:
    async def check() -> bool:
        return text in tg.bot_lines(user_id)
    await eventually(check)
