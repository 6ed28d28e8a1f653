"""Ingest stores each platform message once and knows who wrote it."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from crm_core import accounts
from crm_core.conversations.ingest import ingest_events
from crm_core.crypto import CredentialCipher
from crm_core.models import Contact, Conversation, Identity, Message, MessageKind
from crm_core.ports import InboundMessage, ReachabilityChanged, Sender

CIPHER = CredentialCipher("test-secret-key-0123456789abcdef")


async def make_account(sessions, platform_id: str = "1") -> int:
    async with sessions() as session, session.begin():
        account = await accounts.create(kind="telegram", name="t", platform_account_id=platform_id,
                                        credentials={"bot_token": "x"}, api_base=None, settings={},
                                        cipher=CIPHER, actor=None, db_session=session)
        return account.id


def text_event(update_id: int, user: str = "42", text: str = "hello", name: str = "Alice") -> InboundMessage:
    return InboundMessage(platform_message_id=f"update:{update_id}", sender=Sender(user, name, "alice", "en"),
                          thread_id=user, kind=MessageKind.TEXT, text=text, raw={"update_id": update_id})


async def count(sessions, model) -> int:
    async with sessions() as session:
        return await session.scalar(select(func.count()).select_from(model))


async def test_a_replayed_update_is_a_no_op(sessions):
    account_id = await make_account(sessions)
    for _ in range(3):
        async with sessions() as session, session.begin():
            await ingest_events([text_event(1)], channel_account_id=account_id, db_session=session)
    assert await count(sessions, Message) == 1
    assert await count(sessions, Contact) == 1
    assert await count(sessions, Conversation) == 1


async def test_the_same_id_on_another_account_is_another_message(sessions):
    first, second = await make_account(sessions, "1"), await make_account(sessions, "2")
    for account_id in (first, second):
        async with sessions() as session, session.begin():
            result = await ingest_events([text_event(1)], channel_account_id=account_id, db_session=session)
        assert len(result.stored_message_ids) == 1
    assert await count(sessions, Message) == 2


async def test_a_returning_customer_continues_their_conversation(sessions):
    account_id = await make_account(sessions)
    async with sessions() as session, session.begin():
        result = await ingest_events([text_event(1), text_event(2, text="me again", name="Alice B")],
                                     channel_account_id=account_id, db_session=session)
        assert result.duplicates == 0
    async with sessions() as session:
        conversations = (await session.scalars(select(Conversation))).all()
        identity = await session.scalar(select(Identity))
        texts = (await session.scalars(select(Message.text).order_by(Message.id))).all()
    assert len(conversations) == 1
    assert texts == ["hello", "me again"]
    assert identity.display_name == "Alice B"  # the platform's newest name wins
    assert identity.last_inbound_at is not None


async def test_two_customers_are_two_contacts(sessions):
    account_id = await make_account(sessions)
    async with sessions() as session, session.begin():
        await ingest_events([text_event(1, user="42"), text_event(2, user="43", name="Bob")],
                            channel_account_id=account_id, db_session=session)
    assert await count(sessions, Contact) == 2
    assert await count(sessions, Conversation) == 2


async def test_blocking_the_bot_marks_the_identity_unreachable_and_writing_again_reverses_it(sessions):
    account_id = await make_account(sessions)
    blocked = ReachabilityChanged(platform_message_id="update:2", sender=Sender("42"), thread_id="42",
                                  reachable=False, reason="blocked the bot", raw={})
    async with sessions() as session, session.begin():
        await ingest_events([text_event(1), blocked], channel_account_id=account_id, db_session=session)
    async with sessions() as session:
        identity = await session.scalar(select(Identity))
        event = await session.scalar(select(Message).where(Message.kind == MessageKind.EVENT))
    assert identity.reachable is False
    assert identity.unreachable_reason == "blocked the bot"
    assert event.text == "blocked the bot"  # kept in the conversation's history
    async with sessions() as session, session.begin():
        await ingest_events([text_event(3, text="back")], channel_account_id=account_id, db_session=session)
    async with sessions() as session:
        identity = await session.scalar(select(Identity))
    assert identity.reachable is True


async def test_nothing_is_stored_when_the_transaction_is_not_committed(sessions):
    account_id = await make_account(sessions)
    async with sessions() as session:
        await ingest_events([text_event(1)], channel_account_id=account_id, db_session=session)
        await session.rollback()
    assert await count(sessions, Message) == 0


async def test_many_new_conversations_in_a_row(sessions):
    # PostgreSQL switches prepared statements to generic plans after five runs;
    # the open-conversation upsert must still find its partial unique index.
    account_id = await make_account(sessions)
    for n in range(12):
        async with sessions() as session, session.begin():
            await ingest_events([text_event(n, user=str(100 + n))], channel_account_id=account_id,
                                db_session=session)
    assert await count(sessions, Conversation) == 12


async def test_concurrent_requests_are_stored_together_and_each_answered_after_commit(sessions):
    from crm_core.conversations.ingest import IngestWriter

    account_id = await make_account(sessions)
    writer = IngestWriter(sessions)
    try:
        # 60 requests at once from 10 customers, every update delivered twice.
        requests = [writer.submit(account_id, [text_event(n, user=str(200 + n % 10))]) for n in range(60)]
        requests += [writer.submit(account_id, [text_event(n, user=str(200 + n % 10))]) for n in range(60)]
        results = await asyncio.gather(*requests)
    finally:
        await writer.close()
    assert sum(len(r.stored_message_ids) for r in results) == 60
    assert sum(r.duplicates for r in results) == 60
    assert await count(sessions, Message) == 60
    assert await count(sessions, Contact) == 10
    assert await count(sessions, Conversation) == 10


async def test_one_bad_request_does_not_fail_the_others_in_its_batch(sessions):
    from crm_core.conversations.ingest import IngestWriter

    account_id = await make_account(sessions)
    writer = IngestWriter(sessions)
    unstorable = InboundMessage(platform_message_id="update:999", sender=Sender("77"), thread_id="77",
                                kind=MessageKind.TEXT, text="x", raw={"not json": object()})
    try:
        results = await asyncio.gather(
            writer.submit(account_id, [text_event(1)]),
            writer.submit(account_id, [unstorable]),
            writer.submit(account_id, [text_event(2)]),
            return_exceptions=True)
    finally:
        await writer.close()
    assert [len(r.stored_message_ids) for r in (results[0], results[2])] == [1, 1]
    assert isinstance(results[1], Exception)
    assert await count(sessions, Message) == 2


async def test_a_batch_reads_what_it_must_know_in_one_statement(sessions):
    """Which of a batch's messages are stored already, its senders' identities and its threads'
    open conversations come from one statement: a batch of customers the hub knows writes its
    messages and their traces with four statements, new customers add three inserts; a retry
    among them is still stored once, and each message lands in its sender's conversation."""
    from sqlalchemy import event

    account_id = await make_account(sessions)
    async with sessions() as session, session.begin():
        await ingest_events([text_event(1, user="42"), text_event(2, user="43", name="Bob")],
                            channel_account_id=account_id, db_session=session)
    statements: list[str] = []
    engine = sessions.kw["bind"]

    def seen(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement.split()[0])

    event.listen(engine.sync_engine, "before_cursor_execute", seen)
    try:
        async with sessions() as session, session.begin():
            known = await ingest_events([text_event(2, user="43"), text_event(3, user="42"),
                                         text_event(4, user="43")], channel_account_id=account_id, db_session=session)
        assert statements == ["SELECT", "INSERT", "UPDATE", "UPDATE"], statements
        statements.clear()
        async with sessions() as session, session.begin():
            new = await ingest_events([text_event(5, user="44", name="Cai"), text_event(6, user="42")],
                                      channel_account_id=account_id, db_session=session)
        # contact, identity, conversation, then the messages
        assert statements == ["SELECT", "INSERT", "INSERT", "INSERT", "INSERT", "UPDATE", "UPDATE"], statements
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", seen)
    assert known.duplicates == 1 and len(known.stored_message_ids) == 2 and len(new.stored_message_ids) == 2
    async with sessions() as session:
        rows = (await session.execute(
            select(Message.platform_message_id, Identity.external_id, Conversation.external_thread_id)
            .join(Identity, Identity.id == Message.identity_id)
            .join(Conversation, Conversation.id == Message.conversation_id)
            .order_by(Message.id))).all()
    senders = {f"update:{n}": user for n, user in enumerate(["42", "43", "42", "43", "44", "42"], start=1)}
    assert [tuple(row) for row in rows] == [(update, user, user) for update, user in senders.items()]
