"""WeCom over HTTP: the simulator signs, encrypts and retries callbacks like the
platform; the hub answers within the deadline, stores each event once, and
sends welcome messages, cards and replies through the WeCom API."""

from __future__ import annotations

import datetime as dt
import time

import httpx
import pytest
from sqlalchemy import func, select, update

from channels.tencent import build_xml, signature
from crm_core.db import utcnow
from crm_core.models import (
    Contact,
    Conversation,
    Identity,
    MassSend,
    MassSendTask,
    Message,
    OutboxMessage,
    OutboxStatus,
)
from hub.serving import running
from tests.fakes.stack import eventually, workspace_stack

# The same ingest, worker and dispatcher run on PostgreSQL in tests/crm_core, the admin
# API tests, the multi-process tests and the customer bot's reply-time test; these
# end-to-end runs use SQLite to keep the suite inside its 15 minutes.
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


async def _count(hub, model) -> int:
    async with hub.sessions() as session:
        return await session.scalar(select(func.count()).select_from(model))


async def test_customer_adds_rep_gets_welcome_source_and_rep_card(database_url, tmp_path):
    async with workspace_stack(database_url, tmp_path) as ws:
        app = ws.wecom_app
        started = time.monotonic()
        await ws.wecom_post("customers/wmAlice0001/add", {"rep": "li", "name": "Alice", "state": "expo-2026"})

        async def welcomed():
            return [m for m in app.transcript("wmAlice0001") if m["msgtype"] == "welcome"]
        [welcome] = await eventually(welcomed)
        assert time.monotonic() - started < 20  # WeCom accepts the WelcomeCode for 20 s only
        assert welcome["text"] == "您好，很高兴为您服务！有任何问题请直接留言。" and welcome["from"] == "li"

        card = await ws.rep_receives("li", "添加了您为联系人")
        assert "来源：expo-2026" in card["text"]  # in Li's language, all of it
        assert "source" not in card["text"] and "stage" not in card["text"] and "owner" not in card["text"]
        async with ws.tg.hub.sessions() as session:
            contact = await session.scalar(select(Contact).where(Contact.source == "expo-2026"))
            conversation = await session.scalar(select(Conversation).where(Conversation.contact_id == contact.id))
            assert conversation.assignee_user_id == ws.reps["li"]

        # The customer writes; Li (the owner) gets the card, replies, and the customer
        # receives it as a message task sent as Li.
        await ws.wecom_post("customers/wmAlice0001/messages", {"text": "Do you ship to Hangzhou?"})
        await ws.rep_receives("li", "Do you ship to Hangzhou?")
        await ws.rep_writes("li", f"/r {conversation.id} Yes, next-day delivery to Hangzhou.")

        async def replied():
            return [m for m in app.transcript("wmAlice0001") if m["text"] == "Yes, next-day delivery to Hangzhou."]
        [reply] = await eventually(replied)
        assert reply["from"] == "li"
        assert app.tasks[-1]["sender"] == "li"
        # The inbox tells the two apart: the welcome is in the chat, the reply a 群发 task Li confirmed in
        # WeCom (the simulator confirms at once), delivered once WeCom's send result says so.
        async def settled():
            resp = await ws.tg.client.get(f"{ws.tg.hub_base}/api/v1/inbox/{conversation.id}", headers=ws.tg.api())
            out = [(m["text"], m["delivery"]["state"]) for m in resp.json()["messages"] if m["direction"] == "out"]
            return out if not any(state in ("queued", "sending") for _, state in out) else None
        [welcome_state, reply_state] = await eventually(settled)
        assert welcome_state == ("您好，很高兴为您服务！有任何问题请直接留言。", "delivered")
        assert reply_state[1] in ("awaiting_confirmation", "delivered")  # the scheduled check may have run
        await ws.tg.hub.confirmations.run_once()
        assert await settled() == [welcome_state, ("Yes, next-day delivery to Hangzhou.", "delivered")]

        # The customer deletes Li: Li and Li's manager get a churn alert; the identity is unreachable.
        await ws.wecom_post("customers/wmAlice0001/delete_rep", {"rep": "li"})
        # Li last wrote in English, so Li's cards are English; the manager's stay Chinese.
        churn = await ws.rep_receives("li", "Churn alert")
        assert f"#{conversation.id} Alice" in churn["text"]  # named by WeCom's externalcontact/get
        await ws.rep_receives("boss", "流失预警")
        assert not [m for m in ws.rep_inbox("wang") if "流失预警" in m.get("text", "")
                    or "流失预警" in (m.get("card") or {}).get("main_title", {}).get("title", "")]
        async with ws.tg.hub.sessions() as session:
            identity = await session.scalar(select(Identity).where(Identity.external_id == "wmAlice0001"))
            assert identity.reachable is False and "deleted li" in identity.unreachable_reason


async def test_unanswered_callbacks_are_retried_and_stored_once(database_url, tmp_path):
    async with workspace_stack(database_url, tmp_path) as ws:
        app = ws.wecom_app
        hub_url = app.callback_url
        # The hub is unreachable for the first attempts: a front that fails twice, then forwards.
        attempts = []

        async def flaky(scope, receive, send):
            if scope["type"] != "http":
                return
            body = b""
            while True:
                message = await receive()
                body += message.get("body", b"")
                if not message.get("more_body"):
                    break
            attempts.append(body)
            if len(attempts) <= 2:
                await send({"type": "http.response.start", "status": 502, "headers": []})
                await send({"type": "http.response.body", "body": b"bad gateway"})
                return
            async with httpx.AsyncClient() as client:
                resp = await client.post(hub_url, params=scope["query_string"].decode(), content=body,
                                         headers={"content-type": "text/xml"})
            await send({"type": "http.response.start", "status": resp.status_code, "headers": []})
            await send({"type": "http.response.body", "body": resp.content})

        async with running(flaky) as front:
            app.callback_url = f"http://127.0.0.1:{front.port}/"
            await ws.rep_writes("li", "/mine")
            await ws.rep_receives("li", "no open conversations")
        app.callback_url = hub_url
        assert len(attempts) == 3 and attempts[0] == attempts[1] == attempts[2]  # same signed request each time
        assert [d["status"] for d in app.deliveries] == [502, 502, 200]

        # Platform retries of answered callbacks are no-ops: a message (same MsgId) and an
        # event (same FromUserName + CreateTime).
        await ws.wecom_post("customers/wmRetry0001/add", {"rep": "wang", "name": "Retry"})
        await ws.rep_receives("wang", "添加了您为联系人")
        before = await _count(ws.tg.hub, Message)
        async with httpx.AsyncClient() as client:
            for delivery in (app.deliveries[-2], app.deliveries[-1]):  # the /mine message, the add event
                query, body = ws.wecom.signed_request(app, delivery["fields"])
                resp = await client.post(hub_url, params=query, content=body)
                assert resp.status_code == 200
        assert await _count(ws.tg.hub, Message) == before
        # Every answered callback was answered well inside WeCom's 5 s deadline.
        assert all(d["seconds"] < 5 for d in app.deliveries if d["status"] == 200)


async def test_bad_callbacks_get_a_4xx_and_store_nothing(database_url, tmp_path):
    async with workspace_stack(database_url, tmp_path) as ws:
        app, hub = ws.wecom_app, ws.tg.hub
        url = app.callback_url
        fields = {"ToUserName": app.corp_id, "FromUserName": "li", "CreateTime": int(time.time()),
                  "MsgType": "text", "Content": "hi", "MsgId": "42", "AgentID": app.agent_id}
        query, body = ws.wecom.signed_request(app, fields)
        entity_xml = (b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY big "' + b"A" * 100 + b'">]>'
                      b"<xml><Encrypt>&big;</Encrypt></xml>")
        # Truncated ciphertext, signed with the right Token (say, cut by a proxy before signing).
        envelope = app.cipher.envelope(build_xml(fields))
        cut = envelope["Encrypt"][:-20]
        cut_query = {"msg_signature": signature(app.token, envelope["TimeStamp"], envelope["Nonce"], cut),
                     "timestamp": envelope["TimeStamp"], "nonce": envelope["Nonce"]}
        # Entity declarations signed with the right Token (the signature covers only "&big;"): the
        # parser must refuse them; unsigned, the signature check refuses them before any parser runs.
        entity_query = {**cut_query, "msg_signature": signature(app.token, envelope["TimeStamp"],
                                                                envelope["Nonce"], "&big;")}
        cases = [
            ("truncated ciphertext", cut_query, build_xml({"Encrypt": cut}).encode(), 400),
            ("wrong signature", {**query, "msg_signature": "0" * 40}, body, 403),
            ("entity declarations", entity_query, entity_xml, 400),
            ("unsigned entity declarations", query, entity_xml, 403),
            ("not xml", query, b"{\"json\": true}", 400),
            ("truncated body", query, body[: len(body) // 2], 400),
            ("no signature", {}, body, 400),
        ]
        async with httpx.AsyncClient() as client:
            for name, params, content, status in cases:
                resp = await client.post(url, params=params, content=content)
                assert resp.status_code == status, (name, resp.text)
                assert resp.json()["detail"], name
            resp = await client.post(url.replace(f"/{ws.wecom_account_id}", "/999"), params=query, content=body)
            assert resp.status_code == 404
            # Wrong corp: a valid callback of another company's app signed with its own Token.
            other = ws.wecom.create_app()
            q2, b2 = ws.wecom.signed_request(other, {**fields, "ToUserName": other.corp_id})
            resp = await client.post(url, params=q2, content=b2)
            assert resp.status_code == 403
        assert await _count(hub, Message) == 0
        assert await _count(hub, Contact) == 0


async def test_access_token_is_cached_refetched_once_when_expired_and_45009_backs_off(database_url, tmp_path):
    async with workspace_stack(database_url, tmp_path) as ws:
        app = ws.wecom_app
        await ws.rep_writes("li", "/mine")
        await ws.rep_receives("li", "no open conversations")
        await ws.rep_writes("li", "/help")
        await ws.rep_receives("li", "/claim N")
        assert [p for p, _ in app.calls].count("gettoken") == 1  # cached across sends

        app.tokens = {t: 0.0 for t in app.tokens}  # WeCom expired it early
        await ws.rep_writes("li", "/帮助")
        await ws.rep_receives("li", "/认领 N")
        assert ("message/send", 42001) in app.calls
        assert [p for p, _ in app.calls].count("gettoken") == 2

        app.faults.append({"path": "message/send", "errcode": 45009, "errmsg": "api freq out of limit",
                           "remaining": 1})
        await ws.rep_writes("li", "/mine")

        async def rate_limited():
            async with ws.tg.hub.sessions() as session:
                return await session.scalar(select(OutboxMessage).where(
                    OutboxMessage.last_error.like("rate limited%45009%")))
        row = await eventually(rate_limited)
        assert row.status == OutboxStatus.PENDING and row.attempts == 0  # not a failed attempt: later


async def test_a_reply_to_an_external_contact_waits_for_the_rep_then_shows_what_wecom_says(database_url, tmp_path):
    async with workspace_stack(database_url, tmp_path) as ws:
        app, hub = ws.wecom_app, ws.tg.hub
        app.auto_confirm_tasks = False  # Li taps "send" on each task himself, as in WeCom
        names = {"wmBob00001": "Bob", "wmCarol0001": "Carol"}
        for customer, name in names.items():
            await ws.wecom_post(f"customers/{customer}/add", {"rep": "li", "name": name})
            await ws.rep_receives("li", name)
        async with hub.sessions() as session:
            conversations = dict((await session.execute(
                select(Identity.external_id, Conversation.id)
                .join(Conversation, Conversation.identity_id == Identity.id)
                .where(Identity.external_id.in_(list(names))))).all())
        for customer, conversation in conversations.items():
            resp = await ws.tg.client.post(f"{ws.tg.hub_base}/api/v1/conversations/{conversation}/messages",
                                           json={"text": f"Hello {names[customer]}, here is the brochure"},
                                           headers={**ws.tg.api(), "Idempotency-Key": customer})
            assert resp.status_code == 202

        async def states():
            out = {}
            for customer, conversation in conversations.items():
                resp = await ws.tg.client.get(f"{ws.tg.hub_base}/api/v1/inbox/{conversation}", headers=ws.tg.api())
                [reply] = [m for m in resp.json()["messages"] if m["text"].startswith("Hello")]
                out[customer] = (reply["delivery"]["state"], reply["delivery"]["detail"])
            return out
        assert await eventually(lambda: _settled(states)) == {
            "wmBob00001": ("awaiting_confirmation", None), "wmCarol0001": ("awaiting_confirmation", None)}
        report = await hub.confirmations.run_once()
        assert (report.delivered, report.not_delivered, report.waiting) == (0, 0, 2)  # Li confirmed neither yet
        # WeCom lists them among the company's 群发: known as the hub's replies, not taken for others'.
        assert await hub.mass_sends.discover(ws.wecom_account_id, force=True) == 0
        # Had a listing taken one while it was being sent (its msgid not kept yet), the next drops it.
        async with hub.sessions() as session, session.begin():
            taken = MassSend(channel_account_id=ws.wecom_account_id, name="x", text="x", origin="wecom")
            session.add(taken)
            await session.flush()
            session.add(MassSendTask(mass_send_id=taken.id, sender_userid="li", msgid=app.tasks[0]["msgid"]))
        await hub.mass_sends.discover(ws.wecom_account_id, force=True)
        async with hub.sessions() as session:
            assert await session.get(MassSend, taken.id) is None

        # Li confirms Bob's task; Carol deletes Li before he confirms hers.
        bob_task, carol_task = ([t for t in app.tasks if name in t["targets"]][0]["msgid"]
                                for name in ("wmBob00001", "wmCarol0001"))
        ws.wecom.confirm_task(app, bob_task)
        await ws.wecom_post("customers/wmCarol0001/delete_rep", {"rep": "li"})
        ws.wecom.confirm_task(app, carol_task)
        await hub.confirmations.run_once()  # (or the scheduled check did already)
        shown = await states()
        assert shown["wmBob00001"] == ("delivered", None)
        assert shown["wmCarol0001"][0] == "failed" and "no longer a contact of the rep" in shown["wmCarol0001"][1]
        assert [m["text"] for m in app.transcript("wmBob00001") if m["text"].startswith("Hello")] == \
            ["Hello Bob, here is the brochure"]


async def _settled(states):
    shown = await states()
    return shown if all(state not in ("queued", "sending") for state, _ in shown.values()) else None


async def test_a_fifth_mass_message_in_a_month_is_refused_before_wecom_with_the_reason(database_url, tmp_path):
    """WeCom lets the company send one customer 4 company mass messages (群发 tasks) a calendar month;
    a rep's reply to an external contact is one. The fifth is not made into a task: the inbox says why."""
    async with workspace_stack(database_url, tmp_path) as ws:
        app, hub = ws.wecom_app, ws.tg.hub
        await ws.wecom_post("customers/wmDora00001/add", {"rep": "li", "name": "Dora"})
        await ws.rep_receives("li", "Dora")
        async with hub.sessions() as session:
            conversation = await session.scalar(select(Conversation.id).join(
                Identity, Identity.id == Conversation.identity_id).where(Identity.external_id == "wmDora00001"))

        async def reply(n: int) -> dict:
            resp = await ws.tg.client.post(f"{ws.tg.hub_base}/api/v1/conversations/{conversation}/messages",
                                           json={"text": f"Update {n}"},
                                           headers={**ws.tg.api(), "Idempotency-Key": str(n)})
            assert resp.status_code == 202

            async def shown():
                thread = (await ws.tg.client.get(f"{ws.tg.hub_base}/api/v1/inbox/{conversation}",
                                                 headers=ws.tg.api())).json()["messages"]
                [line] = [m for m in thread if m["text"] == f"Update {n}"]
                return line if line["delivery"]["state"] in ("delivered", "failed", "awaiting_confirmation") else None
            return await eventually(shown, timeout=15)
        for n in range(1, 5):
            await reply(n)
        tasks = len(app.tasks)
        fifth = await reply(5)
        assert fifth["delivery"]["state"] == "failed"
        assert "4 mass messages" in fifth["delivery"]["detail"]
        assert "answer them in WeCom" in fifth["delivery"]["detail"]
        assert len(app.tasks) == tasks  # never made into a task WeCom would drop
        assert [m["text"] for m in app.transcript("wmDora00001") if m["text"].startswith("Update")] == [
            "Update 1", "Update 2", "Update 3", "Update 4"]


async def test_a_rep_whose_tasks_wait_for_their_send_is_reminded_once_a_day(database_url, tmp_path):
    async with workspace_stack(database_url, tmp_path) as ws:
        app, hub = ws.wecom_app, ws.tg.hub
        app.auto_confirm_tasks = False  # Li does not tap Send
        await ws.wecom_post("customers/wmEve000001/add", {"rep": "li", "name": "Eve"})
        await ws.rep_receives("li", "Eve")
        async with hub.sessions() as session:
            conversation = await session.scalar(select(Conversation.id).join(
                Identity, Identity.id == Conversation.identity_id).where(Identity.external_id == "wmEve000001"))
        for n in (1, 2):
            resp = await ws.tg.client.post(f"{ws.tg.hub_base}/api/v1/conversations/{conversation}/messages",
                                           json={"text": f"Offer {n}"},
                                           headers={**ws.tg.api(), "Idempotency-Key": str(n)})
            assert resp.status_code == 202

        async def tasks():
            return len(app.tasks) == 2
        await eventually(tasks, timeout=15)
        assert await hub.remind_unconfirmed() == 0  # not waiting long enough yet
        resp = await ws.tg.client.put(f"{ws.tg.hub_base}/api/v1/settings", headers=ws.tg.api(),
                                      json={"changes": {"wecom_confirm_remind_minutes": 5}})
        assert resp.status_code == 200, resp.text
        async with hub.sessions() as session, session.begin():  # the tasks were made ten minutes ago
            await session.execute(update(OutboxMessage).where(OutboxMessage.accepted_as.is_not(None))
                                  .values(sent_at=utcnow() - dt.timedelta(minutes=10)))
        assert await hub.remind_unconfirmed() == 1
        reminder = await ws.rep_receives("li", "群发助手")
        assert "2 messages" in reminder["text"] or "2 条" in reminder["text"]
        assert await hub.remind_unconfirmed() == 0  # once a day
