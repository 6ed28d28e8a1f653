"""A WeChat follower and a WeCom rep, over HTTP: the reply window is honoured, and a
send the window forbids is held back with its reason, never dropped."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from crm_core.models import Contact, Identity, Message, OutboxMessage, OutboxStatus
from tests.bots.test_rep_workspace import conversation_id_of
from tests.fakes.stack import eventually, workspace_stack

# The same ingest, worker and dispatcher run on PostgreSQL in tests/crm_core, the admin
# API tests, the multi-process tests and the customer bot's reply-time test; these
# end-to-end runs use SQLite to keep the suite inside its 15 minutes.
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


async def test_wechat_follower_and_wecom_rep(database_url, tmp_path):
    async with workspace_stack(database_url, tmp_path) as ws:
        oa = ws.wechat_account
        await ws.follower("oAlice", "follow", scene="expo-2026")
        await ws.follower("oAlice", "messages", text="你好，想了解一下报价")

        card = await ws.rep_receives("li", "新线索")
        assert "你好，想了解一下报价" in card["text"] and "微信公众号" in card["text"]  # the channel, in the rep's language
        conv = conversation_id_of(card)
        await ws.rep_clicks("li", f"claim:{conv}")
        await ws.rep_receives("li", "已由您认领")
        await ws.rep_writes("li", f"/回复 {conv} 您好，标准版每年 5000 元。")

        async def got(text):
            async def check():
                return text in oa.transcript("oAlice")
            await eventually(check)
        await got("您好，标准版每年 5000 元。")

        await ws.follower("oAlice", "messages", text="可以开发票吗？")
        await ws.rep_receives("li", "可以开发票吗？")
        async with ws.tg.hub.sessions() as session:
            contact = await session.scalar(select(Contact).where(Contact.source == "expo-2026"))
            assert contact is not None and not contact.is_staff


async def test_sends_outside_the_window_are_held_with_the_reason_and_released_by_the_next_message(
        database_url, tmp_path):
    async with workspace_stack(database_url, tmp_path) as ws:
        oa, hub = ws.wechat_account, ws.tg.hub
        await ws.follower("oBob", "follow")
        await ws.follower("oBob", "messages", text="hello")
        conv = conversation_id_of(await ws.rep_receives("wang", "新线索"))
        await ws.rep_writes("wang", f"/claim {conv}")
        await ws.rep_receives("wang", "is yours")

        # The greeting used one of the five sends WeChat allows after a message; four more go out.
        async def delivered(n):
            async def check():
                return len(oa.transcript("oBob")) >= n
            await eventually(check)
        await delivered(1)
        for n in range(1, 6):
            await ws.rep_writes("wang", f"/r {conv} update {n}")
        await delivered(5)

        async def held():
            async with hub.sessions() as session:
                return (await session.scalars(select(OutboxMessage).where(
                    OutboxMessage.status == OutboxStatus.HELD))).all()
        [row] = await eventually(held)
        assert row.payload["text"] == "update 5" and "5 messages after" in row.last_error
        assert oa.transcript("oBob")[-1] == "update 4" and "update 5" not in oa.transcript("oBob")
        assert ("message/custom/send", 45047) not in oa.calls  # held by the hub's own count, not refused

        # The follower writes again: the held send goes out.
        await ws.follower("oBob", "messages", text="any news?")
        await delivered(6)
        assert oa.transcript("oBob")[-1] == "update 5"

        # 49 hours later (in the simulator and in the hub's records) a reply is held: outside the window.
        await ws.follower("oBob", "age", seconds=49 * 3600)
        async with hub.sessions() as session, session.begin():
            identity_id = await session.scalar(select(Identity.id).where(Identity.external_id == "oBob"))
            for message in (await session.scalars(select(Message).where(Message.identity_id == identity_id))).all():
                message.created_at -= dt.timedelta(hours=49)
        await ws.rep_writes("wang", f"/r {conv} are you still there?")

        async def held_outside():
            rows = await held()
            return [r for r in rows if r.payload["text"] == "are you still there?"]
        [row] = await eventually(held_outside)
        assert "48-hour reply window" in row.last_error

        # WeChat's own 45015 is handled the same way (say, the hub's records were behind).
        await ws.follower("oBob", "messages", text="yes, here")
        await delivered(7)
        assert oa.transcript("oBob")[-1] == "are you still there?"
        oa.faults.append({"path": "message/custom/send", "errcode": 45015, "errmsg": "response out of time limit", "remaining": 1})
        await ws.rep_writes("wang", f"/r {conv} one more thing")

        async def refused():
            rows = await held()
            return [r for r in rows if r.payload["text"] == "one more thing"]
        [row] = await eventually(refused)
        assert "45015" in row.last_error


async def test_unfollow_makes_the_follower_unreachable(database_url, tmp_path):
    async with workspace_stack(database_url, tmp_path, wechat_mode="plain") as ws:
        await ws.follower("oCarol", "follow")
        await ws.follower("oCarol", "messages", text="hi")

        async def answered():
            # The greeting has gone before she unfollows; sent after, it would fail with 43004
            # and mark her unreachable for that reason first.
            async with ws.tg.hub.sessions() as session:
                return await session.scalar(select(OutboxMessage.id).where(
                    OutboxMessage.status == OutboxStatus.SENT, OutboxMessage.recipient == "oCarol"))
        await eventually(answered)
        await ws.follower("oCarol", "unfollow")

        async def unreachable():
            async with ws.tg.hub.sessions() as session:
                identity = await session.scalar(select(Identity).where(Identity.external_id == "oCarol"))
                return identity is not None and not identity.reachable and identity
        identity = await eventually(unreachable)
        assert identity.unreachable_reason == "unfollowed the account"
