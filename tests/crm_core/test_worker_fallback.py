"""A batch whose handler fails is not lost: it rolls back, its messages go one by one, the one that
fails is retried alone, the others are answered once, and every answered message is counted."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from crm_core import observe
from crm_core.conversations.ingest import ingest_events
from crm_core.conversations.processing import MessageWorker
from crm_core.models import Message, OutboxMessage
from crm_core.ports import HandlerContext
from tests.crm_core.test_ingest import make_account, text_event


class Echo:
    """Answers every message, and fails on one that says "boom"."""

    async def handle(self, ctx: HandlerContext) -> None:
        if ctx.message.text == "boom":
            raise ValueError("a handler bug")
        ctx.reply(f"echo {ctx.message.text}")


class Counting(observe.Observer):
    def __init__(self) -> None:
        self.processed = 0

    def messages_processed(self, waited_seconds: Sequence[float]) -> None:
        self.processed += len(waited_seconds)


async def test_a_failing_message_is_retried_alone_and_the_rest_of_its_batch_answered_once(sessions, monkeypatch):
    counting = Counting()
    monkeypatch.setattr(observe, "observer", counting)
    account_id = await make_account(sessions)
    async with sessions() as session, session.begin():
        await ingest_events([text_event(1, user="1", text="one"), text_event(2, user="2", text="boom"),
                             text_event(3, user="3", text="three")], channel_account_id=account_id,
                            db_session=session)
    worker = MessageWorker(sessions, [Echo()])
    await worker.run_once()

    async with sessions() as session:
        messages = {m.text: m for m in (await session.scalars(select(Message))).all()}
        replies = sorted((await session.scalars(select(OutboxMessage.payload))).all(), key=str)
    assert messages["one"].processed_at is not None and messages["three"].processed_at is not None
    assert messages["boom"].processed_at is None
    assert messages["boom"].processing_error == "ValueError: a handler bug"
    assert [r["text"] for r in replies] == ["echo one", "echo three"]  # once each: the batch rolled back
    assert counting.processed == 2
