"""Each rep's morning digest in WeCom: what they own and who has waited for them how
long; once a day whichever worker sends it, nothing for a rep who owns nothing."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from crm_core.db import utcnow
from crm_core.models import Conversation
from tests.fakes.stack import eventually, workspace_stack


async def test_the_morning_digest_lists_waiting_customers_once_a_day(database_url, tmp_path):
    async with workspace_stack(database_url, tmp_path) as ws:
        tg, digest = ws.tg, ws.tg.hub.digest
        await tg.customer_writes(7001, "请问发货时间", first_name="Chen")
        await tg.customer_writes(7002, "hello", first_name="Dan")
        await eventually(tg.delivered)

        async def two_conversations():
            async with tg.hub.sessions() as session:
                rows = (await session.scalars(select(Conversation).order_by(Conversation.id))).all()
            return rows if len(rows) == 2 else None
        chen, dan = await eventually(two_conversations)
        async with tg.hub.sessions() as session, session.begin():
            for conversation in (chen, dan):
                (await session.get(Conversation, conversation.id)).assignee_user_id = ws.reps["li"]
        morning = utcnow() + dt.timedelta(hours=3)
        assert await digest.run_once(morning) == 1      # Li only: Wang owns nothing
        assert await digest.run_once(morning) == 0      # the same day again: nothing new
        card = await ws.rep_receives("li", "今日概览")
        text = str(card)
        assert "2 个进行中的会话" in text and "2 位客户在等您回复，最久已等 3 小时" in text
        assert f"#{chen.id}" in text and f"#{dan.id}" in text
        assert not any("今日概览" in str(e) for e in ws.rep_inbox("wang"))
        assert await digest.run_once(morning + dt.timedelta(days=1)) == 1  # the next morning
