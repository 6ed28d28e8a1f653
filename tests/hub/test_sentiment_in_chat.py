"""Sentiment as reps feel it: the demo's kind of customer, through the Telegram simulator, raises
no "unhappy customer" card for a command, a yes, a name, a phone number or an email given to the
form, nor for a company whose name reads as a complaint, and a real complaint still does."""

from __future__ import annotations

import functools

import pytest
from sqlalchemy import func, select

from crm_core.models import BotSession, Message
from tests.fakes.stack import eventually, workspace_stack

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
UNHAPPY = ("Unhappy customer", "负面情绪")


async def processed(hub, count: int) -> bool:
    """At least `count` customer messages have been through the worker."""
    async with hub.sessions() as session:
        return await session.scalar(select(func.count()).select_from(Message).where(
            Message.direction == "in", Message.processed_at.is_not(None))) >= count


async def test_answers_commands_and_contact_details_raise_no_unhappy_card_a_complaint_does(
        database_url, tmp_path, sentiment_model_path):
    async with workspace_stack(database_url, tmp_path, sentiment_model=sentiment_model_path) as ws:
        hub = ws.tg.hub
        settled = functools.partial(processed, hub)
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


async def test_a_company_given_to_the_form_is_no_feeling_whatever_the_words(
        database_url, tmp_path, sentiment_model_path, sentiment):
    # Read on their own, these are a complaint's words: the model is sure they are negative.
    companies = {702: ("Hi, can I get a quote for 20 seats?", "Wrong Way Ltd"),
                 703: ("你好，想买，给我报个价", "毒舌传媒")}
    for _, company in companies.values():
        felt = sentiment.analyze(company)
        assert felt.label == "negative" and felt.confidence >= 0.7, (company, felt)
    async with workspace_stack(database_url, tmp_path, sentiment_model=sentiment_model_path) as ws:
        hub = ws.tg.hub
        settled = functools.partial(processed, hub)
        n = 0
        for chat, (buying, company) in companies.items():
            for text in (buying, company):  # the Telegram name is the form's name: it asks the company first
                await ws.tg.customer_writes(chat, text, first_name="Tim" if chat == 702 else "伟")
                n += 1
                await eventually(lambda n=n: settled(n), timeout=20)
        async with hub.sessions() as session:
            forms = (await session.scalars(select(BotSession.form))).all()
            stored = {text: (felt, confidence) for text, felt, confidence in (await session.execute(
                select(Message.text, Message.sentiment, Message.sentiment_confidence).where(
                    Message.direction == "in"))).all()}
        assert sorted(f["fields"]["company"] for f in forms) == sorted(c for _, c in companies.values())
        assert [stored[c] for _, c in companies.values()] == [("neutral", 0.0)] * 2
        cards = [e for userid in ws.reps for e in ws.rep_inbox(userid)
                 if any(u in str(e.get("text", "")) + str((e.get("card") or {}).get("main_title")) for u in UNHAPPY)]
        assert cards == []

        # Outside the form the same kind of words are read as they are: a complaint alerts.
        await ws.tg.customer_writes(702, "wrong item again, terrible", first_name="Tim")
        await ws.rep_receives("boss", "负面情绪", timeout=20)
