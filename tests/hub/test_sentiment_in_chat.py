"""Sentiment as reps feel it: the demo's kind of customer, through the Telegram simulator, raises
no "unhappy customer" card for a command, a yes, a name, a phone number or an email given to the
form, and a real complaint still does."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from crm_core.models import Message
from tests.fakes.stack import eventually, workspace_stack

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
UNHAPPY = ("Unhappy customer", "负面情绪")


async def test_answers_commands_and_contact_details_raise_no_unhappy_card_a_complaint_does(
        database_url, tmp_path, sentiment_model_path):
    async with workspace_stack(database_url, tmp_path, sentiment_model=sentiment_model_path) as ws:
        hub = ws.tg.hub

        async def settled(count: int) -> bool:
            async with hub.sessions() as session:
                return await session.scalar(select(func.count()).select_from(Message).where(
                    Message.direction == "in", Message.processed_at.is_not(None))) >= count

        said = ["/start", "Hello, how much is the Pro plan for 50 people?", "YES", "Tom Baker", "Acme Ltd",
                "+86 138 0013 8000", "tom.baker@example.com", "within 2 months", "1", "not sure yet",
                "能不能便宜点", "退货的话运费谁出"]
        for n, text in enumerate(said, 1):
            await ws.tg.customer_writes(701, text, first_name="Tom")
            await eventually(lambda n=n: settled(n), timeout=20)
        async with hub.sessions() as session:
            scored = dict((await session.execute(select(Message.text, Message.sentiment).where(
                Message.direction == "in"))).all())
        assert [t for t in said if scored.get(t) == "negative"] == []
        cards = [e for userid in ws.reps for e in ws.rep_inbox(userid)
                 if any(u in str(e.get("text", "")) + str((e.get("card") or {}).get("main_title")) for u in UNHAPPY)]
        assert cards == []

        # The same customer, really unhappy: the owner and the manager hear of it.
        await ws.tg.customer_writes(701, "太差劲了，等了两个星期还没发货，客服也不回，我要投诉！", first_name="Tom")
        await ws.rep_receives("boss", "负面情绪", timeout=20)
