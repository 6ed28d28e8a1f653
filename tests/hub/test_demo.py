"""The demo as a newcomer meets it: a knowledge base that answers in each language, seeded once;
a restart that keeps the simulators' chats, so a reply to an earlier customer still arrives."""

from __future__ import annotations

import json
from importlib.resources import files

from sqlalchemy import func, select

from crm_core.db import create_engine, session_factory
from crm_core.models import FaqEntry
from tests.fakes.demo import demo_running

ENTRIES = json.loads((files("hub") / "demo_data" / "faq.json").read_text(encoding="utf-8"))["entries"]


def entry_asked(question: str) -> dict:
    return next(e for e in ENTRIES if question in e["questions"]["en"] + e["questions"]["zh"])


async def faq_entries(data_dir) -> int:
    engine = create_engine(f"sqlite+aiosqlite:///{data_dir / 'scrm.db'}")
    async with session_factory(engine)() as session:
        count = await session.scalar(select(func.count()).select_from(FaqEntry))
    await engine.dispose()
    return count


async def test_the_demo_answers_faq_questions_in_their_language_and_seeds_them_once(tmp_path):
    async with demo_running(tmp_path) as demo:
        await demo.customer_writes(7001, "How long does shipping take?", first_name="Emma", language_code="en")
        await demo.customer_writes(7002, "请问退货流程是什么？", first_name="李娜", language_code="zh-hans")
        [english] = await demo.bot_says(7001, 1)
        [chinese] = await demo.bot_says(7002, 1)
    assert english == f"Hello, Emma! {entry_asked('How long does shipping take?')['answers']['en']}"
    assert chinese == f"您好，李娜！{entry_asked('请问退货流程是什么？')['answers']['zh']}"
    assert await faq_entries(tmp_path) == len(ENTRIES) >= 20

    async with demo_running(tmp_path) as demo:  # a restart does not seed again
        await demo.customer_writes(7003, "Who pays for return shipping?", first_name="Tom", language_code="en")
        [line] = await demo.bot_says(7003, 1)
    assert line == f"Hello, Tom! {entry_asked('Who pays for return shipping?')['answers']['en']}"
    assert await faq_entries(tmp_path) == len(ENTRIES)


async def test_after_a_restart_a_reply_to_an_earlier_customer_arrives_in_their_chat(tmp_path):
    async with demo_running(tmp_path) as demo:
        await demo.customer_writes(7101, "Do you ship internationally?", first_name="Ana", language_code="es")
        [answer] = await demo.bot_says(7101, 1)
        first_ids = [m["raw"]["message_id"] for m in await demo.chat(7101)]

    async with demo_running(tmp_path) as demo:
        assert [m["text"] for m in await demo.chat(7101) if m["from"] == "bot"] == [answer]  # the chat kept
        headers = await demo.api()
        [conversation] = [c for c in (await demo.hub.get("/api/v1/conversations", headers=headers)).json()
                          if c["channel_account_id"] == 1]  # the demo's Telegram bot: Ana is its one customer
        sent = await demo.hub.post(f"/api/v1/conversations/{conversation['id']}/messages", headers=headers,
                                   json={"text": "Yes, to Spain too: about 7 days."})
        assert sent.status_code == 202, sent.text
        lines = await demo.bot_says(7101, 2)
        assert lines == [answer, "Yes, to Spain too: about 7 days."]
        await demo.customer_writes(7101, "great, thanks")
        chat = await demo.chat(7101)
    ids = [m["raw"]["message_id"] for m in chat]
    assert ids[:len(first_ids)] == first_ids and len(set(ids)) == len(ids)  # no id used twice
    assert ids == sorted(ids)
