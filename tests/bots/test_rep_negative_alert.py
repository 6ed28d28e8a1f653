"""Negative-sentiment alerts: an unhappy customer reaches the reps and their
manager in WeCom at once; a plain question does not."""

from __future__ import annotations

from sqlalchemy import select

from crm_core.models import Direction, Message, Role
from crm_core.people import users
from tests.bots.test_rep_workspace import conversation_id_of
from tests.fakes.stack import eventually, workspace_stack


def titles(ws, userid: str) -> list[str]:
    return [(m.get("card") or {}).get("main_title", {}).get("title", "") for m in ws.rep_inbox(userid)]


async def test_an_unhappy_customer_alerts_owner_and_manager(database_url, tmp_path, sentiment_model_path):
    async with workspace_stack(database_url, tmp_path, sentiment_model=sentiment_model_path) as ws:
        tg = ws.tg
        await tg.customer_writes(3001, "请问什么时候发货？", first_name="周")
        card = await ws.rep_receives("li", "新线索")
        conv = conversation_id_of(card)
        async with tg.hub.sessions() as session:
            question = await session.scalar(select(Message).where(Message.text == "请问什么时候发货？"))
        assert question.sentiment == "neutral"
        assert not any("负面情绪" in t for u in ("li", "wang", "boss") for t in titles(ws, u))

        await ws.rep_clicks("li", f"claim:{conv}")
        await ws.rep_receives("li", "已由您认领")
        await tg.customer_writes(3001, "都一个星期了还没发货，太慢了，要求退款！")
        alert = await ws.rep_receives("li", "负面情绪")
        assert "要求退款" in alert["text"]
        await ws.rep_receives("boss", "负面情绪")  # Li's manager
        async with tg.hub.sessions() as session:
            angry = await session.scalar(select(Message).where(Message.text.like("都一个星期%")))
        assert angry.sentiment == "negative" and angry.sentiment_confidence >= 0.7 and angry.sentiment_score < 0

        async def wang_spared():  # not Wang's customer
            return not any("负面情绪" in t for t in titles(ws, "wang"))
        assert await eventually(wang_spared)


async def test_without_a_model_the_hub_runs_and_scores_nothing(database_url, tmp_path):
    async with workspace_stack(database_url, tmp_path, sentiment_model=tmp_path / "missing.joblib") as ws:
        await ws.tg.customer_writes(3002, "太差了，退款！", first_name="吴")
        await ws.rep_receives("li", "新线索")
        async with ws.tg.hub.sessions() as session:
            message = await session.scalar(select(Message).where(Message.text == "太差了，退款！"))
        assert message.sentiment is None


async def test_a_reps_promise_is_flagged_to_the_manager(database_url, tmp_path, sentiment_model_path):
    from crm_core.models import AuditLog

    async with workspace_stack(database_url, tmp_path, sentiment_model=sentiment_model_path) as ws:
        await ws.tg.customer_writes(3003, "Can you do a better price?", first_name="Kim")
        conv = conversation_id_of(await ws.rep_receives("li", "新线索"))
        await ws.rep_clicks("li", f"claim:{conv}")
        await ws.rep_writes("li", f"/r {conv} Here is the price list.")
        await ws.rep_receives("li", "Sent to")
        await ws.rep_writes("li", f"/r {conv} I guarantee a 30% discount if you sign today.")
        flag = await ws.rep_receives("boss", "合规提醒")
        assert "guarantee" in flag["text"] and "discount" in flag["text"] and "30% discount" in flag["text"]
        assert len([t for t in titles(ws, "boss") if "合规提醒" in t]) == 1  # the clean reply raised nothing
        assert not any("合规提醒" in t for t in titles(ws, "wang"))
        async with ws.tg.hub.sessions() as session:
            [entry] = (await session.scalars(select(AuditLog).where(AuditLog.action == "compliance.flagged"))).all()
        assert entry.actor_label == "li" and ["guarantee", "guarantee"] in entry.details["terms"]
        # The rep's messages are read like a customer's.
        async with ws.tg.hub.sessions() as session:
            sent = await session.scalar(select(Message).where(Message.text == "Here is the price list."))
        assert sent.direction == Direction.OUTBOUND and sent.author_user_id is not None
        assert sent.sentiment in ("neutral", "positive") and sent.intents is not None and sent.entities is not None

        # The same from the API: a person's message is read and flagged the same way, once per request.
        async with ws.tg.hub.sessions() as session, session.begin():
            li = await users.get_or_create("li", Role.REP, db_session=session)
            token = await users.create_token(li, name="t", db_session=session)
        headers = {**ws.tg.api(token), "Idempotency-Key": "promise-1"}
        url = f"{ws.tg.hub_base}/api/v1/conversations/{conv}/messages"
        for _ in range(2):
            resp = await ws.tg.client.post(url, json={"text": "我们保证全额退款，请放心。"}, headers=headers)
            assert resp.status_code == 202, resp.text

        async def flagged_twice() -> bool:
            return len([t for t in titles(ws, "boss") if "合规提醒" in t]) == 2

        await eventually(flagged_twice)
        async with ws.tg.hub.sessions() as session:
            entries = (await session.scalars(select(AuditLog).where(AuditLog.action == "compliance.flagged")
                                             .order_by(AuditLog.id))).all()
            promise = await session.scalar(select(Message).where(Message.text == "我们保证全额退款，请放心。"))
        assert len(entries) == 2 and entries[1].details["message_id"] == promise.id
        assert {"guarantee", "refund"} <= {category for category, _ in entries[1].details["terms"]}
        assert promise.intents is not None and promise.sentiment is not None
