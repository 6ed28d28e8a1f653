"""First-response SLA: a waiting customer reminds the reps, then escalates to
the manager, once per wait; a rep's answer ends the wait. The watcher's clock
is moved forward; everything else runs over HTTP through the simulators."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from crm_core.db import utcnow
from crm_core.models import Conversation
from tests.bots.test_rep_workspace import conversation_id_of
from tests.fakes.stack import eventually, workspace_stack


def minutes(n: float) -> dt.timedelta:
    return dt.timedelta(minutes=n)


def sla_cards(ws, userid: str) -> list[dict]:
    def title(entry: dict) -> str:
        return (entry.get("card") or {}).get("main_title", {}).get("title", "") or entry.get("text", "")
    return [e for e in ws.rep_inbox(userid) if "等待回复" in title(e) or "waited" in title(e)
            or "升级提醒" in title(e) or "Escalation" in title(e)]


async def test_reminder_then_escalation_once_per_wait(database_url, tmp_path):
    async with workspace_stack(database_url, tmp_path) as ws:
        tg, sla = ws.tg, ws.tg.hub.sla
        await tg.customer_writes(2001, "需要报价，50 个账号", first_name="Chen")
        card = await ws.rep_receives("li", "新线索")
        await ws.rep_receives("wang", "新线索")
        conv = conversation_id_of(card)
        start = utcnow()

        # Not yet due: nothing.
        assert await sla.run_once(now=start + minutes(29)) == 0
        # Unclaimed after 30 minutes: every rep is reminded, once.
        assert await sla.run_once(now=start + minutes(31)) == 2
        reminder = await ws.rep_receives("li", "已等待回复")
        assert "需要报价，50 个账号" in reminder["text"]
        assert [b["key"].split(":")[0] for b in reminder["card"]["button_list"]][0] == "claim"
        await ws.rep_receives("wang", "已等待回复")
        assert await sla.run_once(now=start + minutes(60)) == 0

        # Li claims but does not answer: after 2 hours the manager is told who owns it.
        await ws.rep_clicks("li", f"claim:{conv}")
        await ws.rep_receives("li", "已由您认领")
        assert await sla.run_once(now=start + minutes(125)) == 1
        escalation = await ws.rep_receives("boss", "升级提醒")
        assert "负责人：Li Lei" in escalation["text"] and "需要报价" in escalation["text"]
        assert await sla.run_once(now=start + minutes(300)) == 0
        assert len(sla_cards(ws, "wang")) == 1  # no escalation to colleagues

        # Li answers: the wait is over, however late it gets.
        await ws.rep_writes("li", f"/r {conv} 您好，报价单稍后发您。")
        await ws.rep_receives("li", "已发送给")
        async with tg.hub.sessions() as session:
            conversation = await session.get(Conversation, conv)
            answered_at = utcnow()
            assert conversation.sla_escalated_message_id is not None

        assert await sla.run_once(now=answered_at + minutes(500)) == 0

        # The customer writes again: a new wait; now only the owner is reminded.
        await tg.customer_writes(2001, "报价呢？")
        await ws.rep_receives("li", "报价呢？")
        again = utcnow()
        before_li, before_wang = len(sla_cards(ws, "li")), len(sla_cards(ws, "wang"))
        mark = len(ws.rep_inbox("li"))
        assert await sla.run_once(now=again + minutes(31)) == 1
        await ws.rep_receives("li", "已等待回复", after=mark)
        assert len(sla_cards(ws, "li")) == before_li + 1 and len(sla_cards(ws, "wang")) == before_wang


async def test_a_bot_reply_does_not_stop_the_clock_and_staff_never_wait(database_url, tmp_path):
    async with workspace_stack(database_url, tmp_path) as ws:
        tg, sla = ws.tg, ws.tg.hub.sla
        await tg.customer_writes(2002, "hello?", first_name="Dan")
        await ws.rep_receives("li", "新线索")
        async def greeted():  # the greeting bot answered: a reply, but not a person's
            return any("Hello" in line or "您好" in line for line in tg.bot_lines(2002))
        await eventually(greeted)
        # A rep chatting with the app is not a customer waiting for an answer.
        await ws.rep_writes("wang", "/我的")
        await ws.rep_receives("wang", "没有进行中的会话")
        assert await sla.run_once(now=utcnow() + minutes(31)) == 2  # li and wang, about Dan only
        async with tg.hub.sessions() as session:
            reminded = (await session.scalars(
                select(Conversation.id).where(Conversation.sla_reminded_message_id.is_not(None)))).all()
        assert len(reminded) == 1
