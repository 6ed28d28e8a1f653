"""DingTalk over HTTP and over a stream connection: a customer in a group @s the
robot, reps work the lead from DingTalk with interactive cards and commands,
replies go through the sessionWebhook while it is valid and the OpenAPI after."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
from sqlalchemy import func, select

from channels.dingtalk.signing import sign
from crm_core.models import Conversation, Message
from tests.fakes.stack import dingtalk_stack, eventually

# The same ingest, worker and dispatcher run on PostgreSQL in tests/crm_core, the admin
# API tests, the multi-process tests and the customer bot's reply-time test; these
# end-to-end runs use SQLite to keep the suite inside its 15 minutes.
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

GROUP = "cidCustomerGroup01=="
CUSTOMER = "$:LWCP_v1:$customer0001"


def card_conversation(card: dict) -> int:
    return int(card["buttons"][0]["id"].rsplit(":", 1)[1])


async def _count(hub, model, *where) -> int:
    async with hub.sessions() as session:
        return await session.scalar(select(func.count()).select_from(model).where(*where))


async def test_group_customer_to_dingtalk_rep_and_back(database_url, tmp_path):
    async with dingtalk_stack(database_url, tmp_path) as dt:
        await dt.customer_writes(GROUP, CUSTOMER, "陈先生", "你们的系统支持多少坐席？")
        card = await dt.receives("li01", "新线索")
        assert card["via"] == "interactiveCard" and "你们的系统支持多少坐席？" in card["text"]
        assert [b["id"].split(":")[0] for b in card["buttons"]] == ["claim", "reply", "snooze"]
        await dt.receives("wang02", "新线索")
        conv = card_conversation(card)

        # Li claims with the card's button; Wang, too late, is told so.
        await dt.rep_clicks("li01", f"claim:{conv}")
        await dt.receives("li01", "已由您认领")
        await dt.rep_clicks("wang02", f"claim:{conv}")
        await dt.receives("wang02", "晚了一步")

        # Li answers with a command: it reaches the group through the message's sessionWebhook.
        await dt.rep_writes("li01", f"/回复 {conv} 您好，标准版支持 50 个坐席。")
        answer = await dt.receives(GROUP, "标准版支持 50 个坐席")
        assert answer["via"] == "sessionWebhook"
        await dt.receives("li01", "已发送给")

        # The customer answers; Li (the owner) gets the reply card.
        mark = len(dt.inbox("li01"))
        await dt.customer_writes(GROUP, CUSTOMER, "陈先生", "好的，请发报价")
        reply_card = await dt.receives("li01", "好的，请发报价", after=mark)
        assert reply_card["via"] == "interactiveCard"
        async with dt.tg.hub.sessions() as session:
            conversation = await session.get(Conversation, conv)
            assert conversation.assignee_user_id == dt.reps["li01"]
            texts = (await session.scalars(select(Message.text).where(Message.conversation_id == conv)
                                           .order_by(Message.id))).all()
        assert texts[0] == "你们的系统支持多少坐席？" and "您好，标准版支持 50 个坐席。" in texts

        # Messages in the group that do not @ the robot are not for it.
        before = await _count(dt.tg.hub, Message)
        await dt.customer_writes(GROUP, CUSTOMER, "陈先生", "（群里闲聊）", at=False)
        await eventually(lambda: _async(not dt.robot.queue))
        assert await _count(dt.tg.hub, Message) == before


async def test_after_the_session_webhook_expires_the_openapi_is_used(database_url, tmp_path):
    # Sessions shorter than the hub's one-minute margin are never used.
    async with dingtalk_stack(database_url, tmp_path, session_lifetime=30) as dt:
        await dt.customer_writes(GROUP, CUSTOMER, "陈先生", "hello?")
        card = await dt.receives("li01", "新线索")
        conv = card_conversation(card)
        await dt.rep_clicks("li01", f"claim:{conv}")
        await dt.rep_writes("li01", f"/r {conv} Hello from Li")
        answer = await dt.receives(GROUP, "Hello from Li")
        assert answer["via"] == "groupMessages"
        assert ("robot/groupMessages/send", "ok") in dt.robot.calls


async def test_bad_callbacks_are_refused_and_retries_are_stored_once(database_url, tmp_path):
    async with dingtalk_stack(database_url, tmp_path) as dt:
        url = dt.robot.callback_url
        body = dt.sim._message(dt.robot, thread=GROUP, group=True, sender_id=CUSTOMER, nick="陈", staff_id="",
                               corp="dingother", text="retry me", at=True)
        raw = json.dumps(body).encode()
        now = int(time.time() * 1000)
        secret = dt.robot.app_secret
        async with httpx.AsyncClient() as client:
            cases = [
                ({"timestamp": str(now), "sign": sign(now, "wrong-secret-0123456789")}, raw, 403),
                ({"timestamp": str(now - 2 * 3600 * 1000), "sign": sign(now - 2 * 3600 * 1000, secret)}, raw, 403),
                ({}, raw, 403),
                ({"timestamp": str(now), "sign": sign(now, secret)}, b'{"msgId": ', 400),
            ]
            for headers, content, status in cases:
                resp = await client.post(url, headers=headers, content=content)
                assert resp.status_code == status, resp.text
            assert await _count(dt.tg.hub, Message) == 0
            for _ in range(3):  # DingTalk retrying one message
                resp = await client.post(url, headers=dt.sim.signed_headers(dt.robot), content=raw)
                assert resp.status_code == 200
        assert await _count(dt.tg.hub, Message) == 1


async def test_stream_mode_reconnects_with_backoff_and_stores_before_it_acks(database_url, tmp_path):
    async with dingtalk_stack(database_url, tmp_path, mode="stream") as dt:
        robot, sim = dt.robot, dt.sim
        await eventually(lambda: _async(robot.socket is not None), timeout=15)

        await dt.customer_writes(GROUP, CUSTOMER, "陈先生", "stream hello")
        await dt.receives("li01", "新线索")
        acks = [d["ack"] for d in robot.deliveries if "ack" in d]
        assert acks and acks[-1]["code"] == 200
        assert await _count(dt.tg.hub, Message, Message.text == "stream hello") == 1

        # Pings are answered; a disconnect request and a dropped socket both reconnect.
        ping = await sim.send_system(robot, "ping")
        assert ping is not None and ping["code"] == 200 and json.loads(ping["data"])["opaque"]
        await sim.send_system(robot, "disconnect")
        await eventually(lambda: _async(robot.connections >= 2), timeout=15)
        robot.faults.append({"path": "gateway/connections/open", "status": 503, "code": "ServiceUnavailable",
                             "remaining": 2})
        await sim.drop(robot)
        await eventually(lambda: _async(robot.connections >= 3), timeout=20)
        refused = [c for c in robot.calls if c == ("gateway/connections/open", "ServiceUnavailable")]
        assert len(refused) == 2  # tried again after a pause each time, then connected

        # Messages sent while it was away are delivered once it is back.
        await dt.customer_writes(GROUP, CUSTOMER, "陈先生", "are you there?")
        await eventually(lambda: _count(dt.tg.hub, Message, Message.text == "are you there?"), timeout=15)


async def test_stream_client_stops_on_stop_and_on_cancel(database_url, tmp_path):
    from channels.dingtalk.stream import StreamPoller

    async with dingtalk_stack(database_url, tmp_path, mode="stream") as dt:
        await eventually(lambda: _async(dt.robot.socket is not None), timeout=15)
        found = await dt.tg.hub.account(dt.account_id)
        stored: list = []

        async def sink(account_id, events, cursor):
            stored.extend(events)

        poller = StreamPoller(dt.tg.hub.channels.get("dingtalk"), found[1], sink)
        stop = asyncio.Event()
        task = asyncio.create_task(poller.run(stop))
        await eventually(lambda: _async(poller.connections == 1))
        started = time.monotonic()
        stop.set()
        await asyncio.wait_for(task, 5)
        assert time.monotonic() - started < 2

        # While waiting to reconnect (the gateway refuses), a cancel ends it at once.
        dt.robot.faults.append({"path": "gateway/connections/open", "status": 503, "code": "Busy", "remaining": 50})
        task = asyncio.create_task(StreamPoller(dt.tg.hub.channels.get("dingtalk"), found[1], sink,
                                                first_backoff=5).run(asyncio.Event()))
        await eventually(lambda: _async(("gateway/connections/open", "Busy") in dt.robot.calls))
        task.cancel()
        started = time.monotonic()
        try:
            await asyncio.wait_for(task, 5)
        except asyncio.CancelledError:
            pass
        assert task.cancelled() and time.monotonic() - started < 1


async def _async(value):
    return value


async def test_a_dingtalk_and_a_telegram_customer_giving_one_phone_are_one_contact(database_url, tmp_path):
    from crm_core.models import AuditLog, Identity

    async with dingtalk_stack(database_url, tmp_path) as dt:
        hub = dt.tg.hub
        await dt.customer_writes(GROUP, CUSTOMER, "陈先生", "我的手机是 138 0013 8000，请联系我")
        await dt.receives("li01", "新线索")
        await dt.tg.customer_writes(9001, "Hi, my phone is +86 138-0013-8000", first_name="Chen")

        async def linked():
            async with hub.sessions() as session:
                rows = (await session.execute(select(Identity.external_id, Identity.contact_id))).all()
            contacts = {ext: contact for ext, contact in rows}
            return contacts if contacts.get("9001") == contacts.get(CUSTOMER) else None
        contacts = await eventually(linked)
        api = dt.tg.api()
        detail = (await dt.tg.client.get(f"{dt.tg.hub_base}/api/v1/contacts/{contacts[CUSTOMER]}",
                                         headers=api)).json()
        assert sorted(i["external_id"] for i in detail["identities"]) == sorted([CUSTOMER, "9001"])
        async with hub.sessions() as session:
            [entry] = (await session.scalars(select(AuditLog).where(AuditLog.action == "contact.linked"))).all()
        assert entry.details["keys"] == ["phone"] and entry.details["merged"] is True
