"""The opinion API: series for managers, alerts with the messages behind them, and
reps seeing only what is in their own conversations."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from crm_core.db import utcnow
from crm_core.models import ChannelAccount, Conversation, Message, OpinionAlert, Role
from crm_core.people import users
from tests.admin.test_api import token_for
from tests.bots.test_opinion_alerts import add_messages
from tests.fakes.stack import telegram_stack


@pytest.fixture
async def stack(database_url, tmp_path):
    async with telegram_stack(database_url, tmp_path) as stack:
        yield stack


async def seed(stack) -> tuple[int, dict[str, int], list[int]]:
    """Two conversations, Li's and Wang's, with negative messages in the last hours, and an alert over both."""
    hour = utcnow().replace(minute=0, second=0, microsecond=0)
    async with stack.hub.sessions() as session, session.begin():
        account_id = await session.scalar(select(ChannelAccount.id).limit(1))
        ids = {}
        for name in ("li", "wang"):
            rep = await users.get_or_create(name, Role.REP, db_session=session)
            ids[name] = rep.id
            await add_messages(session, account_id, [
                (hour - dt.timedelta(hours=2, minutes=-10), f"{name}: 发货太慢了，要求退款", "negative", -0.9, []),
                (hour - dt.timedelta(hours=2, minutes=-20), f"{name}: 请问什么时候发货", "neutral", 0.0, []),
                (hour, f"{name}: 退款还没到，太差了", "negative", -0.8, ["complaint"]),
            ], assignee_user_id=rep.id)
        messages = (await session.scalars(select(Message.id).where(Message.sentiment == "negative")
                                          .order_by(Message.id))).all()
        session.add(OpinionAlert(dimension="channel", key=str(account_id), status="open", first_hour=hour,
                                 last_hour=hour, peak_share=0.66, baseline=0.1, threshold=0.3, volume=6,
                                 top_terms=[["退款", 4]], message_ids=list(messages)))
    return account_id, ids, list(messages)


async def test_managers_see_the_series_of_a_slice(stack):
    account_id, _, _ = await seed(stack)
    token, _ = await token_for(stack, Role.MANAGER, "zhao")
    resp = await stack.client.get(f"{stack.hub_base}/api/v1/opinion/series", headers=stack.api(token),
                                  params={"dimension": "channel", "key": str(account_id), "hours": 24})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert len(body["hours"]) == 24
    busy = [h for h in body["hours"] if h["volume"]]
    assert [(h["volume"], h["negative"]) for h in busy] == [(4, 2), (2, 2)]  # two hours ago, and this hour so far
    assert busy[0]["negative_share"] == 0.5 and busy[1]["mean_sentiment"] == -0.8
    assert body["top_terms"][0][0] in ("退款", "发货")
    unknown = await stack.client.get(f"{stack.hub_base}/api/v1/opinion/series", headers=stack.api(token),
                                     params={"dimension": "weather", "key": "x"})
    assert unknown.status_code == 422
    rep_token, _ = await token_for(stack, Role.REP, "li")
    denied = await stack.client.get(f"{stack.hub_base}/api/v1/opinion/series", headers=stack.api(rep_token),
                                    params={"dimension": "channel", "key": str(account_id)})
    assert denied.status_code == 403


async def test_an_alert_links_to_its_messages_and_a_rep_sees_only_their_own(stack):
    _, reps, negative = await seed(stack)
    manager, _ = await token_for(stack, Role.MANAGER, "zhao")
    [alert] = (await stack.client.get(f"{stack.hub_base}/api/v1/opinion/alerts", headers=stack.api(manager),
                                      params={"status": "open"})).json()
    assert alert["message_ids"] == negative and len(negative) == 4
    messages = (await stack.client.get(f"{stack.hub_base}{alert['messages_url']}", headers=stack.api(manager))).json()
    assert [m["id"] for m in messages] == negative and all(m["sentiment"] == "negative" for m in messages)

    li, _ = await token_for(stack, Role.REP, "li")
    async with stack.hub.sessions() as session:
        lis = (await session.scalars(select(Message.id).join(Conversation, Message.conversation_id == Conversation.id)
                                     .where(Conversation.assignee_user_id == reps["li"],
                                            Message.sentiment == "negative").order_by(Message.id))).all()
    [seen] = (await stack.client.get(f"{stack.hub_base}/api/v1/opinion/alerts", headers=stack.api(li))).json()
    assert seen["message_ids"] == list(lis) and len(lis) == 2
    texts = [m["text"] for m in (await stack.client.get(f"{stack.hub_base}{seen['messages_url']}",
                                                        headers=stack.api(li))).json()]
    assert texts and all(t.startswith("li: ") for t in texts)

    # A rep with nothing behind the alert does not learn that it exists.
    async with stack.hub.sessions() as session, session.begin():
        await session.execute(Conversation.__table__.update().where(
            Conversation.assignee_user_id == reps["wang"]).values(assignee_user_id=reps["li"]))
    wang, _ = await token_for(stack, Role.REP, "wang")
    assert (await stack.client.get(f"{stack.hub_base}/api/v1/opinion/alerts", headers=stack.api(wang))).json() == []
    assert (await stack.client.get(f"{stack.hub_base}{alert['messages_url']}", headers=stack.api(wang))).status_code \
        == 404
    assert (await stack.client.get(f"{stack.hub_base}/api/v1/opinion/alerts/999999/messages",
                                   headers=stack.api(manager))).status_code == 404
