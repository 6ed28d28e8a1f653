"""A batch whose handler fails is not lost: it rolls back, its messages go one by one, the one that
fails is retried alone, the others are answered once, and every answered message is counted. A
batch's messages find the customer bot's states and the open leads, those made earlier and those
made in the batch."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select

from crm_core import observe
from crm_core.conversations.ingest import ingest_events
from crm_core.conversations.processing import MessageWorker
from crm_core.leads import service as leads
from crm_core.models import BotSession, Conversation, Direction, Lead, Message, OutboxMessage
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


class Remembers:
    """Keeps the first word a customer said in the customer bot's state, and answers with it."""

    async def handle(self, ctx: HandlerContext) -> None:
        state = await ctx.bot_session(create=True)
        state.language = state.language or ctx.message.text
        ctx.reply(f"first: {state.language}")


async def test_the_bot_state_made_by_one_message_is_the_one_the_next_in_its_batch_finds(sessions, monkeypatch):
    """The worker reads its batch's bot states in one statement; a state made by one message is
    found by the next of the same customer, and one made earlier by a message of an earlier
    batch too, all in one transaction (never the one-by-one retry a second state would cause)."""
    account_id = await make_account(sessions)
    worker = MessageWorker(sessions, [Remembers()])
    async with sessions() as session, session.begin():
        await ingest_events([text_event(1, user="3", text="fr")], channel_account_id=account_id, db_session=session)
    await worker.run_once()
    async with sessions() as session, session.begin():
        await ingest_events([text_event(2, user="1", text="zh"), text_event(3, user="1", text="en"),
                             text_event(4, user="2", text="en"), text_event(5, user="3", text="de")],
                            channel_account_id=account_id, db_session=session)

    async def not_one_by_one(*args, **kwargs):
        raise AssertionError("the batch fell back to one message a transaction")

    monkeypatch.setattr(worker, "_process_one", not_one_by_one)
    await worker.run_once()

    async with sessions() as session:
        replies = (await session.execute(select(OutboxMessage.recipient, OutboxMessage.payload)
                                         .order_by(OutboxMessage.id))).all()
        states = (await session.scalars(select(BotSession.language).order_by(BotSession.contact_id))).all()
    assert [(recipient, payload["text"]) for recipient, payload in replies] == [
        ("3", "first: fr"), ("1", "first: zh"), ("1", "first: zh"), ("2", "first: en"), ("3", "first: fr")]
    assert states == ["fr", "zh", "en"]


class Leads:
    """Opens the customer's lead on "buy", loses it on "lost", and answers with their open lead."""

    async def handle(self, ctx: HandlerContext) -> None:
        rules, session = leads.LeadRules(), ctx.db_session
        if ctx.message.text == "buy":
            await leads.open_lead(ctx.contact.id, source_kind="signal", rules=rules, db_session=session)
        elif ctx.message.text == "lost":
            lead = await leads.open_lead_of(ctx.contact.id, db_session=session)
            await leads.set_stage(lead, "lost", rules=rules, actor=None, db_session=session)
        lead = await leads.open_lead_of(ctx.contact.id, db_session=session)
        ctx.reply(f"lead {lead.id if lead else None}")


async def test_a_batch_finds_the_open_lead_of_each_message_as_the_messages_before_left_it(sessions, monkeypatch):
    """The worker reads its batch's open leads in one statement; a lead opened by one message is
    the next one's, a lead lost is nobody's, one opened in an earlier batch is found, in windows
    of two messages within one transaction."""
    account_id = await make_account(sessions)
    worker = MessageWorker(sessions, [Leads()], transaction_seconds=60)
    async with sessions() as session, session.begin():
        await ingest_events([text_event(1, user="2", text="buy")], channel_account_id=account_id,
                            db_session=session)
    await worker.run_once()
    async with sessions() as session, session.begin():
        await ingest_events([text_event(n, user=user, text=text) for n, (user, text) in enumerate(
            [("1", "hi"), ("1", "buy"), ("2", "hi"), ("1", "hi"), ("1", "lost"), ("1", "hi"), ("1", "buy")], start=2)],
            channel_account_id=account_id, db_session=session)

    async def not_one_by_one(*args, **kwargs):
        raise AssertionError("the batch fell back to one message a transaction")

    monkeypatch.setattr(worker, "_process_one", not_one_by_one)
    worker._window = 2
    await worker.run_once()

    async with sessions() as session:
        replies = (await session.scalars(select(OutboxMessage.payload).order_by(OutboxMessage.id))).all()
        ids = dict((await session.execute(select(Lead.id, Lead.status).order_by(Lead.id))).all())
    first, second, third = ids
    assert ids == {first: "open", second: "closed", third: "open"}
    assert [payload["text"] for payload in replies] == [
        f"lead {first}",
        "lead None", f"lead {second}", f"lead {first}", f"lead {second}", "lead None", "lead None", f"lead {third}"]


async def test_a_conversation_answered_in_a_batch_or_alone_shows_its_last_reply_as_its_last_message(sessions):
    """The inbox sorts by a conversation's last message: after the worker, it is the time of the
    last reply queued in it, whether the batch went through at once or one by one after a failure."""
    account_id = await make_account(sessions)
    async with sessions() as session, session.begin():
        await ingest_events([text_event(1, user="1", text="one"), text_event(2, user="1", text="again"),
                             text_event(3, user="2", text="two"), text_event(4, user="3", text="boom"),
                             text_event(5, user="4", text="four")], channel_account_id=account_id,
                            db_session=session)
    await MessageWorker(sessions, [Echo()]).run_once()

    async with sessions() as session:
        conversations = (await session.scalars(select(Conversation).order_by(Conversation.id))).all()
        last_reply = dict((await session.execute(
            select(Message.conversation_id, func.max(Message.created_at))
            .where(Message.direction == Direction.OUTBOUND).group_by(Message.conversation_id))).all())
    assert len(conversations) == 4 and len(last_reply) == 3  # "boom" was not answered
    for conversation in conversations:
        if conversation.id in last_reply:
            assert conversation.last_message_at == last_reply[conversation.id]
        else:
            customers = await _customer_messages(sessions, conversation.id)
            assert conversation.last_message_at == max(m.created_at for m in customers)


async def _customer_messages(sessions, conversation_id: int) -> list[Message]:
    async with sessions() as session:
        return list((await session.scalars(select(Message).where(
            Message.conversation_id == conversation_id, Message.direction == Direction.INBOUND))).all())
