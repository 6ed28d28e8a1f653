"""Opinion alerts from the database: the replayed week with a complaint burst on
day 6 opens one alert at the burst, cards the manager and the team's group
robot once, extends it while it lasts, and closes it after."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import insert, select

from bots.rep.opinion import OpinionWatcher
from crm_core import accounts
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
from crm_core.people import reps, users
from tests.crm_core.test_ingest import CIPHER, make_account
from tests.nlp.test_opinion import START, generated_week


async def add_messages(session, account_id: int, rows, *, source: str | None = None,
                       assignee_user_id: int | None = None) -> None:
    """Scored customer messages (at, text, sentiment, score, intents) on one new conversation."""
    contact = Contact(display_name="many", stage="new", source=source)
    session.add(contact)
    await session.flush()
    identity = Identity(contact_id=contact.id, channel_account_id=account_id, external_id=f"c{contact.id}")
    session.add(identity)
    await session.flush()
    conversation = Conversation(contact_id=contact.id, identity_id=identity.id, channel_account_id=account_id,
                                external_thread_id=identity.external_id, assignee_user_id=assignee_user_id)
    session.add(conversation)
    await session.flush()
    await session.execute(insert(Message), [
        {"conversation_id": conversation.id, "channel_account_id": account_id, "identity_id": identity.id,
         "direction": Direction.INBOUND, "kind": MessageKind.TEXT, "text": text, "attachments": [], "raw": None,
         "platform_message_id": f"m{contact.id}-{n}", "created_at": at, "processed_at": at,
         "processing_attempts": 0, "sentiment": sentiment, "sentiment_score": score,
         "sentiment_confidence": 0.9, "intents": intents}
        for n, (at, text, sentiment, score, intents) in enumerate(rows)])


async def seed(sessions, *, source: str | None = None, owner: str | None = None) -> tuple[int, int]:
    """The generated week on one conversation; `owner` ("li": Li, on Zhao's team) claims it."""
    account_id = await make_account(sessions)
    messages, _ = generated_week()
    async with sessions() as session, session.begin():
        robot = await accounts.create(kind="dingtalk_group_robot", name="Team group", platform_account_id="t1",
                                      credentials={"webhook_url": "https://oapi.example/robot/send?access_token=t"},
                                      api_base=None, settings={}, cipher=CIPHER, actor=None, db_session=session)
        boss = await users.get_or_create("boss", Role.MANAGER, display_name="Zhao", db_session=session)
        await reps.add_handle(boss, channel_account_id=account_id, external_id="boss-chat", db_session=session)
        other_boss = await users.get_or_create("qian", Role.MANAGER, display_name="Qian", db_session=session)
        await reps.add_handle(other_boss, channel_account_id=account_id, external_id="qian-chat", db_session=session)
        li = await users.get_or_create("li", Role.REP, display_name="Li", db_session=session)
        li.manager_user_id = boss.id
        await reps.add_handle(li, channel_account_id=account_id, external_id="li-chat", db_session=session)
        texts = {"negative": "X200 充电器坏了，要求退款", "neutral": "请问什么时候发货？", "positive": "谢谢"}
        await add_messages(session, account_id, [(m.at, texts[m.sentiment], m.sentiment, m.score, [])
                                                 for m in messages],
                           source=source, assignee_user_id=li.id if owner else None)
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
    # Unowned conversations: every manager hears of it (nobody else would), and the team robot.
    assert sorted((c.channel_account_id, c.recipient) for c in cards) == [
        (account_id, "boss-chat"), (account_id, "qian-chat"), (robot_id, "group")]
    assert all(c.payload["title"].startswith("舆情预警") for c in cards)
    # Extended while it lasts; the first quiet hour after the burst closes it.
    assert await watcher.run_once(now=burst + dt.timedelta(hours=3, minutes=5)) == 0
    assert await watcher.run_once(now=burst + dt.timedelta(hours=4, minutes=5)) == 0
    async with sessions() as session:
        alert = await session.get(OpinionAlert, alert.id)
        assert alert.status == "closed" and alert.last_hour == burst + dt.timedelta(hours=2)
        assert len((await session.scalars(select(OutboxMessage))).all()) == 3


async def test_a_burst_seen_in_several_slices_is_sent_once_to_the_owner_and_their_manager(sessions):
    account_id, robot_id = await seed(sessions, source="spring-fair", owner="li")
    watcher = OpinionWatcher(sessions)
    burst = START + dt.timedelta(days=5, hours=14)
    assert await watcher.run_once(now=burst + dt.timedelta(minutes=5)) == 0
    # The campaign, the team and the channel all spike: three alerts, one sent.
    assert await watcher.run_once(now=burst + dt.timedelta(hours=1, minutes=5)) == 3
    async with sessions() as session:
        alerts = {a.dimension: a for a in (await session.scalars(select(OpinionAlert))).all()}
        cards = (await session.scalars(select(OutboxMessage))).all()
        zhao = await users.get_or_create("boss", Role.MANAGER, db_session=session)
    assert set(alerts) == {"campaign", "team", "channel"}
    assert (alerts["campaign"].key, alerts["team"].key, alerts["channel"].key) == (
        "spring-fair", str(zhao.id), str(account_id))
    assert alerts["campaign"].covered_by_id is None
    assert alerts["team"].covered_by_id == alerts["channel"].covered_by_id == alerts["campaign"].id
    # Li owns the conversation, Zhao is his manager; Qian (another team) is not told.
    assert sorted(c.recipient for c in cards) == ["boss-chat", "group", "li-chat"]
    assert all("spring-fair" in c.payload["title"] + c.payload["text"] for c in cards)
    assert await watcher.run_once(now=burst + dt.timedelta(hours=2, minutes=5)) == 0  # extended, not repeated
    async with sessions() as session:
        assert len((await session.scalars(select(OutboxMessage))).all()) == 3


async def test_complaints_naming_a_product_alert_without_a_baseline(sessions):
    account_id = await make_account(sessions)
    at = START + dt.timedelta(days=1, hours=9)
    async with sessions() as session, session.begin():
        boss = await users.get_or_create("boss", Role.MANAGER, display_name="Zhao", db_session=session)
        await reps.add_handle(boss, channel_account_id=account_id, external_id="boss-chat", db_session=session)
        rows = [  # (minutes after `at`, text, sentiment, intents)
            (-300, "X200 坏了", "negative", []), (-290, "x200 太差", "negative", []),  # two, hours earlier
            (5, "X200充电器坏了，要求退款", "negative", ["complaint"]),
            (15, "my x200 needs a refund", "neutral", ["complaint"]),  # a complaint the model scored neutral
            (25, "x200 又坏了", "negative", []),
            (30, "X2000 is broken", "negative", ["complaint"]),  # another product
            (40, "X200 什么时候有货？", "neutral", []),  # a mention, not a complaint
        ]
        await add_messages(session, account_id, [(at + dt.timedelta(minutes=minutes), text, sentiment, 0.0, intents)
                                                 for minutes, text, sentiment, intents in rows])
    watcher = OpinionWatcher(sessions, products={"X200": ["x200", "X200充电器"]}, rule_min_messages=3)
    assert await watcher.run_once(now=at - dt.timedelta(minutes=55)) == 0  # two complaints: nothing
    assert await watcher.run_once(now=at + dt.timedelta(hours=1, minutes=1)) == 1
    async with sessions() as session:
        [alert] = (await session.scalars(select(OpinionAlert))).all()
        [card] = (await session.scalars(select(OutboxMessage))).all()
        texts = {m.id: m.text for m in (await session.scalars(select(Message))).all()}
    assert (alert.dimension, alert.key, alert.first_hour, alert.volume) == ("keyword_rule", "X200", at, 4)
    assert sorted(texts[i] for i in alert.message_ids) == sorted(
        ["X200充电器坏了，要求退款", "my x200 needs a refund", "x200 又坏了"])
    assert card.recipient == "boss-chat" and "X200" in card.payload["title"] + card.payload["text"]
    assert await watcher.run_once(now=at + dt.timedelta(hours=2, minutes=1)) == 0
    async with sessions() as session:
        assert (await session.get(OpinionAlert, alert.id)).status == "closed"
