"""Opinion alerts from the database: the replayed week with a complaint burst on
day 6 opens one alert at the burst, cards the manager and the team's group
robot once, extends it while it lasts, and closes it after."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import insert, select

from bots.rep.opinion import OpinionWatcher
from crm_core import accounts, reps, users
from crm_core.models import (
    Contact,
    Conversation,
    Direction,
    Identity,
    Message,
    MessageKind,
    OpinionAlert,
    OutboxMessage,
    Role,
)
from tests.crm_core.test_ingest import CIPHER, make_account
from tests.nlp.test_opinion import START, generated_week


async def seed(sessions) -> tuple[int, int]:
    account_id = await make_account(sessions)
    messages, _ = generated_week()
    async with sessions() as session, session.begin():
        robot = await accounts.create(kind="dingtalk_group_robot", name="Team group", platform_account_id="t1",
                                      credentials={"webhook_url": "https://oapi.example/robot/send?access_token=t"},
                                      api_base=None, settings={}, cipher=CIPHER, actor=None, db_session=session)
        boss = await users.get_or_create("boss", Role.MANAGER, display_name="Zhao", db_session=session)
        await reps.add_handle(boss, channel_account_id=account_id, external_id="boss-chat", db_session=session)
        contact = Contact(display_name="many", stage="new")
        session.add(contact)
        await session.flush()
        identity = Identity(contact_id=contact.id, channel_account_id=account_id, external_id="c1")
        session.add(identity)
        await session.flush()
        conversation = Conversation(contact_id=contact.id, identity_id=identity.id, channel_account_id=account_id,
                                    external_thread_id="c1")
        session.add(conversation)
        await session.flush()
        texts = {"negative": "X200 充电器坏了，要求退款", "neutral": "请问什么时候发货？", "positive": "谢谢"}
        await session.execute(insert(Message), [
            {"conversation_id": conversation.id, "channel_account_id": account_id, "identity_id": identity.id,
             "direction": Direction.INBOUND, "kind": MessageKind.TEXT, "text": texts[m.sentiment], "attachments": [], "raw": None,
             "platform_message_id": f"m{n}", "created_at": m.at, "processed_at": m.at, "processing_attempts": 0,
             "sentiment": m.sentiment, "sentiment_score": m.score, "sentiment_confidence": 0.9}
            for n, m in enumerate(messages)])
    return account_id, robot.id


async def test_one_alert_per_spike_to_the_manager_and_the_team_robot(sessions):
    account_id, robot_id = await seed(sessions)
    watcher = OpinionWatcher(sessions)
    burst = START + dt.timedelta(days=5, hours=14)
    for hours in range(24 * 5, 24 * 5 + 15):  # every hour up to the burst: nothing
        assert await watcher.run_once(now=START + dt.timedelta(hours=hours, minutes=5)) == 0
    assert await watcher.run_once(now=burst + dt.timedelta(hours=1, minutes=5)) == 1
    assert await watcher.run_once(now=burst + dt.timedelta(hours=2, minutes=5)) == 0  # extended, not repeated
    async with sessions() as session:
        [alert] = (await session.scalars(select(OpinionAlert))).all()
        cards = (await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))).all()
    assert (alert.status, alert.key, alert.first_hour, alert.last_hour) == (
        "open", str(account_id), burst, burst + dt.timedelta(hours=1))
    assert alert.top_terms[0][0] in ("x200", "充电器", "退款") and alert.message_ids
    assert sorted((c.channel_account_id, c.recipient) for c in cards) == [(account_id, "boss-chat"),
                                                                         (robot_id, "group")]
    assert all(c.payload["title"].startswith("舆情预警") for c in cards)
    # Extended while it lasts; the first quiet hour after the burst closes it.
    assert await watcher.run_once(now=burst + dt.timedelta(hours=3, minutes=5)) == 0
    assert await watcher.run_once(now=burst + dt.timedelta(hours=4, minutes=5)) == 0
    async with sessions() as session:
        alert = await session.get(OpinionAlert, alert.id)
        assert alert.status == "closed" and alert.last_hour == burst + dt.timedelta(hours=2)
        assert len((await session.scalars(select(OutboxMessage))).all()) == 2
