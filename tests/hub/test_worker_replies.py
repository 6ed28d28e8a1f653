"""The bot's replies to a batch of customer messages, written together at the end of the worker's
transaction: each answers its own message, in order, and the bot knows what it has just said."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import select

from crm_core import accounts, observe
from crm_core.db import utcnow
from crm_core.models import Conversation, Direction, Message, OutboxMessage
from crm_core.outbox.service import queue_reply
from crm_core.ports import InboundMessage, MessageKind, OutboundMessage, Sender
from hub.context import Hub
from tests.fakes.stack import make_settings


async def test_a_burst_is_answered_in_one_transaction_each_reply_in_its_place(database_url, tmp_path, caplog,
                                                                             sentiment_model_path):
    hub = Hub(make_settings(database_url, tmp_path, sentiment_model=str(sentiment_model_path)))
    try:
        async with hub.sessions() as session, session.begin():
            account = await accounts.create(kind="telegram", name="shop", platform_account_id="777",
                                            credentials={"bot_token": "777:" + "a" * 35},
                                            api_base="http://127.0.0.1:9", settings={"mode": "webhook"},
                                            cipher=hub.cipher, actor=None, db_session=session)
        said = ["hi", "thanks", "do you sell rocket engines?", "and blockchain?"]
        for n, text in enumerate(said):
            token = observe.request_id.set(f"req-{n}")
            try:
                await hub.ingest(account.id, [InboundMessage(
                    platform_message_id=f"update:{n}", sender=Sender("4242", "Ada", None, "en"), thread_id="4242",
                    kind=MessageKind.TEXT, text=text, raw={"update_id": n})])
            finally:
                observe.request_id.reset(token)
        hub.worker.transaction_seconds = 60  # one transaction however slow the machine (SQLite's ends after 0.05 s)
        with caplog.at_level(logging.WARNING):
            assert await hub.worker.run_once() == 4  # one batch
        assert "one by one" not in caplog.text  # one transaction, none of it retried message by message
        async with hub.sessions() as session:
            inbound = (await session.scalars(select(Message).where(Message.direction == Direction.INBOUND)
                                             .order_by(Message.id))).all()
            copies = (await session.scalars(select(Message).where(Message.direction == Direction.OUTBOUND)
                                            .order_by(Message.id))).all()
            sends = (await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))).all()
            conversation = await session.scalar(select(Conversation))
        ids = [m.id for m in inbound]
        # "hi" is greeted; "thanks" right after is not greeted again (the greeting is not written yet
        # when it is read, but the bot knows it); each question not understood is answered.
        assert [row.idempotency_key for row in sends] == [f"reply:{ids[0]}:0", f"reply:{ids[2]}:0",
                                                         f"reply:{ids[3]}:0"]
        assert [row.request_id for row in sends] == ["req-0", "req-2", "req-3"]
        # The conversation keeps them in the order they were said, each send with its own copy.
        assert [row.message_id for row in sends] == [m.id for m in copies]
        assert [row.payload["text"] for row in sends] == [m.text for m in copies]
        assert min(m.id for m in copies) > max(ids)
        assert conversation.last_message_at == copies[-1].created_at
    finally:
        await hub.close()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_transaction_that_would_commit_with_replies_unwritten_fails_instead(sessions):
    with pytest.raises(RuntimeError, match=r"replies queued and never written \(write_replies\): 1"):
        async with sessions() as session, session.begin():
            conversation = Conversation(id=1, channel_account_id=1, identity_id=1, external_thread_id="1")
            queue_reply(conversation, OutboundMessage("1", "hello"), idempotency_key="reply:1:0", db_session=session,
                        at=utcnow())
