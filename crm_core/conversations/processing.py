"""The worker that processes stored inbound messages (and what a person of the company wrote in a
customer's chat outside the hub, read from the platform: taken as a person's reply, reviewed).

Each message is claimed (with a lease, so a crashed worker's claim expires),
handed to the message handlers (bots), and marked processed in the same
transaction that writes their replies to the outbox: a message is answered
once, even if the worker dies halfway and another picks it up.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, bindparam, event, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm.attributes import set_committed_value

from crm_core import observe
from crm_core.campaigns import audience
from crm_core.consent import service as consent
from crm_core.contacts.linking import apply_profile, link_keys
from crm_core.conversations.service import person_takes_over
from crm_core.db import UTCDateTime, held_or_get, utcnow
from crm_core.leads import service as leads
from crm_core.models import (
    CUSTOMER_MESSAGE_KINDS,
    BotSession,
    ChannelAccount,
    Contact,
    Conversation,
    Direction,
    Identity,
    Message,
)
from crm_core.outbox.dispatcher import new_owner_id
from crm_core.outbox.service import queue_reply, release_held, write_replies
from crm_core.ports import (
    BOT_SESSIONS,
    HandlerContext,
    MessageHandler,
    Profile,
    ProfileLookup,
    Sentiment,
    SentimentAnalyzer,
)
from crm_core.session_memo import tables_written
from crm_core.waiting import wait_any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reading:
    """What was read from one text (None where that reader is not wired)."""

    sentiment: Sentiment | None = None
    intents: list[str] | None = None
    entities: dict[str, Any] | None = None


@dataclass(frozen=True)
class Understanding:
    """What is read from a message's text; `nlp` supplies the functions, the hub wires them.
    `intents` reads a batch of texts at once (the model's arithmetic on a matrix)."""

    sentiment: SentimentAnalyzer | None = None
    intents: Callable[[Sequence[str]], Sequence[Sequence[str]]] | None = None
    entities: Callable[[str], dict[str, Any]] | None = None

    def read(self, texts: Sequence[str]) -> list[Reading]:
        """Each text's reading; a batch goes through the sentiment model (and the sentence
        encoder under it) as one. CPU work: the worker runs it on a thread, off the event loop."""
        if not texts:
            return []
        felt: Sequence[Sentiment | None] = [None] * len(texts)
        if self.sentiment is not None:
            felt = self.sentiment.analyze_many(list(texts))
        intents: list[list[str] | None] = [list(found) for found in self.intents(texts)] \
            if self.intents is not None else [None] * len(texts)
        entities = [self.entities(text) if self.entities is not None else None for text in texts]
        return [Reading(*parts) for parts in zip(felt, intents, entities, strict=True)]

    def annotate(self, message: Message, reading: Reading | None = None) -> None:
        """Sentiment, intents and entities of a message with text, each only once (`reading`:
        read already, with the rest of its batch)."""
        text = message.text or ""
        if not text:
            return
        reading = reading or self.read([text])[0]
        if reading.sentiment is not None and message.sentiment is None:
            felt = reading.sentiment
            message.sentiment, message.sentiment_score = felt.label, felt.score
            message.sentiment_confidence = felt.confidence
        if reading.intents is not None and message.intents is None:
            message.intents = reading.intents
        if reading.entities is not None and message.entities is None:
            message.entities = reading.entities


# What every batch asks, built once: building a statement and its cache key cost more than
# running it on SQLite (half a millisecond for the first-messages query). The values are bound
# when it runs; lists of ids are expanding parameters.
_IDS = bindparam("ids", expanding=True)
_message = Message.__table__
_conversation = Conversation.__table__
# The table's columns, not the entity's: in a Core UPDATE of the table the entity's would make it
# an ORM statement.
_OURS = (_message.c.id.in_(_IDS), _message.c.processed_at.is_(None),
         _message.c.processing_owner == bindparam("owner"))
_TEXTS_TO_READ = (
    select(Message.id, Message.text).join(Identity, Identity.id == Message.identity_id)
    .join(Contact, Contact.id == Identity.contact_id)
    .where(Message.id.in_(_IDS), Message.direction == Direction.INBOUND, Message.text.is_not(None),
           Message.text != "", Message.kind.in_(CUSTOMER_MESSAGE_KINDS), Message.sentiment.is_(None),
           Contact.is_staff.is_(False)))
_BATCH_ROWS = (  # the messages still ours, with their identities, contacts, conversations and accounts
    select(Message, Identity, Contact, Conversation, ChannelAccount)
    .outerjoin(Identity, Identity.id == Message.identity_id)
    .outerjoin(Contact, Contact.id == Identity.contact_id)
    .outerjoin(Conversation, Conversation.id == Message.conversation_id)
    .outerjoin(ChannelAccount, ChannelAccount.id == Message.channel_account_id)
    .where(*_OURS)
    .order_by(Message.id)
    .execution_options(populate_existing=True))  # (pending changes were flushed before)
_BOT_STATES = select(BotSession).where(BotSession.contact_id.in_(bindparam("contact_ids", expanding=True)))
_conversations = select(Message.conversation_id).where(Message.id.in_(_IDS)).distinct().subquery()
_FIRSTS = select(  # each conversation's messages read in id order until its first customer message
    _conversations.c.conversation_id,
    select(Message.id)
    .where(Message.conversation_id == _conversations.c.conversation_id,
           Message.direction == Direction.INBOUND, Message.kind.in_(CUSTOMER_MESSAGE_KINDS))
    .order_by(Message.id).limit(1).scalar_subquery())
_DUE = (  # the oldest messages not processed, claimed by nobody or by a worker whose lease ran out
    select(Message.id)
    .where(Message.direction.in_((Direction.INBOUND, Direction.OUTBOUND)),  # outbound: a person wrote outside the hub
           Message.processed_at.is_(None),
           or_(Message.processing_claimed_at.is_(None),
               Message.processing_claimed_at < bindparam("stale", type_=UTCDateTime())))
    .order_by(Message.id).limit(bindparam("limit")).with_for_update(skip_locked=True)
    # Evaluated once, and the rows it picked (locked) taken by id alone: see Dispatcher._claim.
    .cte("due").prefix_with("MATERIALIZED"))
_CLAIM = (update(Message).where(Message.id == _DUE.c.id)
          .values(processing_owner=bindparam("owner"), processing_claimed_at=bindparam("now", type_=UTCDateTime()),
                  processing_attempts=Message.processing_attempts + 1)
          .returning(Message.id).execution_options(synchronize_session=False))
_NOT_LOOKED_UP = (  # the batch's customers whose profile was not asked for, on channels of `kinds`
    select(Identity.id, Identity.channel_account_id, Identity.external_id).distinct()
    .join(Message, Message.identity_id == Identity.id)
    .join(Contact, Contact.id == Identity.contact_id)
    .join(ChannelAccount, ChannelAccount.id == Identity.channel_account_id)
    .where(Message.id.in_(_IDS), Message.direction == Direction.INBOUND, Identity.profile_checked_at.is_(None),
           Contact.is_staff.is_(False), ChannelAccount.kind.in_(bindparam("kinds", expanding=True))))
# The writes are Core statements on the tables: the ORM's bulk update by primary key cost more
# than the statement.
_ANNOTATE = _message.update().where(_message.c.id == bindparam("b_id")).values(
    sentiment=bindparam("b_sentiment"), sentiment_score=bindparam("b_score"),
    sentiment_confidence=bindparam("b_confidence"), intents=bindparam("b_intents"), entities=bindparam("b_entities"))
_PROCESSED = (  # a compare-and-set: only messages still ours
    _message.update().where(*_OURS).values(processed_at=bindparam("now", type_=UTCDateTime()), processing_error=None))
_ANSWERED = _conversation.update().where(_conversation.c.id == bindparam("b_id")).values(  # a reply's time
    last_message_at=bindparam("b_at", type_=UTCDateTime()))


class MessageWorker:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        handlers: Sequence[MessageHandler],
        *,
        lease_seconds: float = 60.0,
        max_attempts: int = 5,
        batch_size: int = 50,
        idle_poll_seconds: float = 0.2,
        on_enqueued: Callable[[], None] | None = None,
        owner: str | None = None,
        profiles: ProfileLookup | None = None,
        profile_timeout: float = 10.0,
        key_extractor: Callable[[str], Sequence[tuple[str, str]]] | None = None,
        understanding: Understanding | None = None,
        staff_words: MessageHandler | None = None,
        transaction_seconds: float | None = None,
    ) -> None:
        self.sessions = sessions
        # How long one transaction of a batch may last: SQLite has one write lock for everyone (a
        # webhook's commit waits for it); PostgreSQL locks rows.
        bind = sessions.kw.get("bind")
        sqlite = bind is not None and bind.dialect.name == "sqlite"
        self.transaction_seconds = transaction_seconds if transaction_seconds is not None else \
            (0.05 if sqlite else 1.0)
        self._window = 8 if sqlite else batch_size  # messages loaded at a time in a transaction
        self.handlers = list(handlers)
        # Reads what a person of the company wrote in a customer's chat outside the hub (the rep review).
        self.staff_words = staff_words
        self.profiles = profiles
        self.profile_timeout = profile_timeout
        # Contact details a customer states as their own ("my phone is ..."): keys that link channels.
        self.key_extractor = key_extractor
        self.understanding = understanding or Understanding()
        self.lease_seconds = lease_seconds
        self.max_attempts = max_attempts
        self.batch_size = batch_size
        self.idle_poll_seconds = idle_poll_seconds
        self.on_enqueued = on_enqueued
        self.owner = owner or new_owner_id("worker")
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        log.info("message worker %s started", self.owner)
        while not stop.is_set():
            try:
                handled = await self.run_once()
            except Exception:
                log.exception("message worker %s: tick failed; retrying shortly", self.owner)
                handled = 0
                await asyncio.sleep(1.0)
            if handled == 0:
                self._wake.clear()
                await wait_any(self._wake, stop, timeout=self.idle_poll_seconds)

    async def run_once(self) -> int:
        """Claim a batch and process it; how many messages were claimed."""
        ids = await self._claim()
        if ids:
            await self._process_batch(ids)
        return len(ids)

    async def _claim(self) -> list[int]:
        now = utcnow()
        async with self.sessions() as session, session.begin():
            rows = await session.execute(_CLAIM, {"now": now, "stale": now - dt.timedelta(seconds=self.lease_seconds),
                                                  "limit": self.batch_size, "owner": self.owner})
            return sorted(rows.scalars().all())

    async def _lookup_profiles(self, ids: Sequence[int]) -> dict[int, Profile]:
        """The platform's profiles of the batch's customers not looked up yet (identity id ->
        profile), asked concurrently and outside any transaction, so a slow platform holds no
        database lock; a channel without a profile API is not asked, nor its identities read."""
        kinds = sorted(self.profiles.profile_kinds) if self.profiles is not None else []
        if not kinds:
            return {}
        async with self.sessions() as session:
            rows = (await session.execute(_NOT_LOOKED_UP, {"ids": list(ids), "kinds": kinds})).all()
        if not rows:
            return {}
        asking = asyncio.Semaphore(8)

        async def ask(row: Any) -> Profile | None:
            async with asyncio.timeout(self.profile_timeout), asking:
                return await self.profiles.fetch_profile(row.channel_account_id, row.external_id)

        found: dict[int, Profile] = {}
        for row, outcome in zip(rows, await asyncio.gather(*(ask(row) for row in rows), return_exceptions=True),
                                strict=True):
            if isinstance(outcome, BaseException):
                # The message is handled without it; the next message asks again.
                log.warning("profile of %s not available now: %s: %s", row.external_id, type(outcome).__name__,
                            outcome)
            elif outcome is not None:
                found[row.id] = outcome
        return found

    async def _read(self, ids: Sequence[int]) -> dict[int, Reading]:
        """The batch's customer texts read at once, on a thread (message id -> reading)."""
        async with self.sessions() as session:
            rows = (await session.execute(_TEXTS_TO_READ, {"ids": list(ids)})).all()
        if not rows:
            return {}
        readings = await asyncio.to_thread(self.understanding.read, [row.text for row in rows])
        return {row.id: reading for row, reading in zip(rows, readings, strict=True)}

    async def _process_batch(self, ids: list[int]) -> None:
        """The batch in as few transactions as the database's locks allow: its messages in order,
        their replies, and every one marked processed with one compare-and-set a transaction. On
        SQLite a transaction holds the one write lock, so one ends after `transaction_seconds`
        (webhook ingest waits for it) and the rest of the batch goes on in the next.
        If anything fails the transaction rolls back (nothing of it was written) and its messages go
        one by one, each in its own transaction, so the one that fails is retried alone and the
        others are answered."""
        profiles = await self._lookup_profiles(ids)
        readings = await self._read(ids)
        queued = False
        left = list(ids)
        while left:
            chunk = left
            try:
                left, replied = await self._transaction(chunk, profiles, readings)
                queued |= replied
            except Exception as exc:
                log.warning("messages %s..%s (%d): %s: %s; processing them one by one", chunk[0], chunk[-1],
                            len(chunk), type(exc).__name__, exc)
                for message_id in chunk:
                    await self._process_one(message_id, profiles, readings.get(message_id))
                left = []
        if queued and self.on_enqueued is not None:
            self.on_enqueued()

    async def _transaction(self, ids: list[int], profiles: dict[int, Profile],
                           readings: dict[int, Reading]) -> tuple[list[int], bool]:
        """Messages of `ids` in one transaction, until `transaction_seconds` have passed: the ids
        left for the next, and whether anything was queued. The messages are loaded a window at a
        time, about as many as the last transaction got through, so a transaction that ends on time
        has not loaded the whole batch for the few it handled."""
        started = time.monotonic()
        queued = False
        done: list[int] = []
        waited: list[float] = []
        left: list[int] = []
        loaded: list[Any] = []  # kept referenced while the transaction runs (the session holds objects weakly)
        async with self.sessions() as session, session.begin():
            stale = _BulkWrites(session)
            wrote = _CustomersWrote()
            position, out_of_time = 0, False
            while position < len(ids) and not out_of_time:
                window = ids[position:position + self._window]
                position += len(window)
                ours, rows = await self._preload(window, session, readings)
                loaded += rows
                firsts = await self._firsts(ours, session)
                for n, message_id in enumerate(ours):
                    message = await held_or_get(session, Message, message_id)  # loaded, or read again if stale
                    assert message is not None
                    if message.direction == Direction.INBOUND:
                        waited.append((utcnow() - message.created_at).total_seconds())
                    first = firsts.get(message.conversation_id)
                    queued |= await self._handle(session, message, profiles, readings.get(message_id), wrote,
                                                 first=None if first is None else first == message_id)
                    done.append(message_id)
                    await stale.refresh_if_written()
                    if time.monotonic() - started > self.transaction_seconds:
                        left, out_of_time = ours[n + 1:] + ids[position:], True
                        break
            await wrote.settle(session)
            await self._mark_processed(done, session)  # (lost: all of it goes one by one)
        if out_of_time:
            self._window = max(4, min(self.batch_size, len(done)))
        observe.observer.messages_processed(waited)
        return left, queued

    async def _preload(self, ids: Sequence[int], session: AsyncSession,
                       readings: dict[int, Reading]) -> tuple[list[int], list[Any]]:
        """The ids of the batch's messages still ours to process, in order, and the loaded rows to
        keep referenced while the batch runs (the session holds objects weakly): what was read from
        the messages written first (one statement), then the messages with their identities,
        contacts, conversations and accounts in one query, the customer bot's states and the
        open leads in one each, so the handlers find them in the session."""
        annotations = [_annotation(message_id, readings[message_id]) for message_id in ids
                       if message_id in readings]
        if annotations:
            # By primary key, one executemany (a message another worker has taken since gets the
            # same reading); the rows are read right after, so nothing is stale.
            await session.execute(_ANNOTATE, annotations, execution_options={_READ_NEXT: True})
        rows = (await session.execute(_BATCH_ROWS, {"ids": list(ids), "owner": self.owner})).all()
        loaded: list[Any] = [entity for row in rows for entity in row if entity is not None]
        contact_ids = {row.Contact.id for row in rows if row.Contact is not None}
        if contact_ids:
            states = (await session.scalars(_BOT_STATES, {"contact_ids": list(contact_ids)})).all()
            loaded += states
            BOT_SESSIONS.load(session, contact_ids, {s.contact_id: s.id for s in states})
            loaded += await leads.preload_open_leads(contact_ids, db_session=session)
        return [row.Message.id for row in rows], loaded

    @staticmethod
    async def _firsts(ids: Sequence[int], session: AsyncSession) -> dict[int, int]:
        """Conversation id -> the id of its first customer message, for the batch's conversations:
        each conversation's messages read in id order until its first customer message
        (ix_message_conversation). Asked as "every customer message of these conversations, the
        least id", PostgreSQL without fresh statistics read every customer message of the table for
        each batch (27 ms at 2,000 messages)."""
        return {conversation_id: first_id for conversation_id, first_id in (await session.execute(
            _FIRSTS, {"ids": list(ids)})).all() if first_id is not None}

    async def _handle(self, session: AsyncSession, message: Message, profiles: dict[int, Profile],
                      reading: Reading | None, wrote: _CustomersWrote, *, first: bool | None = None) -> bool:
        """One message through the handlers, its replies queued; whether anything was queued.
        `first`: whether it is its conversation's first customer message, if known. Logged, and
        its replies queued, under the request it came with."""
        token = observe.request_id.set(message.request_id)
        try:
            return await self._handlers(session, message, profiles, reading, wrote, first)
        finally:
            observe.request_id.reset(token)

    async def _handlers(self, session: AsyncSession, message: Message, profiles: dict[int, Profile],
                        reading: Reading | None, wrote: _CustomersWrote, first: bool | None) -> bool:
        identity = await held_or_get(session, Identity, message.identity_id)
        assert identity is not None
        contact = await held_or_get(session, Contact, identity.contact_id)
        assert contact is not None
        profile = profiles.get(identity.id)
        if profile is not None and identity.profile_checked_at is None:
            # May move the identity and its conversations to the contact its unionid names.
            contact = await apply_profile(identity, contact, profile, db_session=session)
        conversation = await held_or_get(session, Conversation, message.conversation_id)
        assert conversation is not None
        ctx = HandlerContext(session, message, conversation, contact, identity, first_of_conversation=first)
        if message.direction == Direction.OUTBOUND:
            await self._staff_wrote(ctx)
        else:
            await self._customer_wrote(ctx, reading, wrote)
        if overheard(message):
            ctx.replies.clear()  # a person is talking (a WeCom archive): the bot never answers
        for n, reply in enumerate(ctx.replies):
            now = utcnow()
            queue_reply(conversation, reply, idempotency_key=f"reply:{message.id}:{n}", db_session=session, at=now)
            wrote.answered(conversation, now)
        return bool(ctx.replies or ctx.enqueued)

    async def _process_one(self, message_id: int, profiles: dict[int, Profile], reading: Reading | None) -> None:
        queued = False
        try:
            async with self.sessions() as session, session.begin():
                message = await session.get(Message, message_id)
                if message is None or message.processed_at is not None or message.processing_owner != self.owner:
                    return
                waited = [(utcnow() - message.created_at).total_seconds()] \
                    if message.direction == Direction.INBOUND else []
                wrote = _CustomersWrote()
                queued = await self._handle(session, message, profiles, reading, wrote)
                await wrote.settle(session)
                await self._mark_processed([message_id], session)
        except _LeaseLost:
            log.warning("message %s: lease lost to another worker; its replies were discarded", message_id)
            return
        except Exception as exc:
            await self._failed(message_id, exc)
            return
        observe.observer.messages_processed(waited)
        if queued and self.on_enqueued is not None:
            self.on_enqueued()

    async def _mark_processed(self, ids: Sequence[int], session: AsyncSession) -> None:
        """Compare-and-set: if a lease expired and another worker took one of `ids`, _LeaseLost, so
        the transaction rolls back instead of answering twice."""
        claimed = await session.execute(_PROCESSED, {"ids": list(ids), "owner": self.owner, "now": utcnow()})
        if claimed.rowcount != len(ids):
            raise _LeaseLost()

    async def _failed(self, message_id: int, exc: Exception) -> None:
        error = f"{type(exc).__name__}: {exc}"
        async with self.sessions() as session, session.begin():
            attempts = await session.scalar(select(Message.processing_attempts).where(Message.id == message_id))
            values: dict = {"processing_error": error}
            if (attempts or 0) >= self.max_attempts:
                # A message that always crashes a handler must not block the queue.
                values["processed_at"] = utcnow()
                log.exception("message %s: processing failed %d times; giving up", message_id, attempts)
            else:
                values["processing_claimed_at"] = utcnow() - dt.timedelta(seconds=self.lease_seconds * 0.9)
                log.exception("message %s: processing failed (attempt %s); will retry", message_id, attempts)
            await session.execute(
                update(Message).where(Message.id == message_id, Message.processing_owner == self.owner)
                .values(**values).execution_options(synchronize_session=False)
            )

    async def _customer_wrote(self, ctx: HandlerContext, reading: Reading | None, wrote: _CustomersWrote) -> None:
        """Read the customer's message, apply what it says about them, run the handlers."""
        session, message, identity, contact = ctx.db_session, ctx.message, ctx.identity, ctx.contact
        customer_text = not contact.is_staff and bool(message.text) and message.kind in CUSTOMER_MESSAGE_KINDS
        if customer_text:
            self.understanding.annotate(message, reading)
        if self.key_extractor is not None and customer_text:
            stated = self.key_extractor(message.text)
            if stated:
                contact = ctx.contact = await link_keys(identity, contact, stated, source=f"message {message.id}",
                                                        db_session=session)
        if consent.opt_out_requests(message):
            account = await held_or_get(session, ChannelAccount, message.channel_account_id)
            await consent.apply_opt_outs(message, contact, account.kind if account else "?",
                                         db_session=session)
        elif customer_text:
            # A "yes" to a double opt-in question, or the customer's own "subscribe me".
            account = await held_or_get(session, ChannelAccount, message.channel_account_id)
            ctx.consent_recorded = await consent.apply_opt_ins(message, contact, account.kind if account else "?",
                                                               db_session=session)
            wrote.replied.add(contact.id)
        wrote.identities.add(identity.id)
        for handler in self.handlers:
            await handler.handle(ctx)
            if ctx.handled:
                break

    async def _staff_wrote(self, ctx: HandlerContext) -> None:
        """A person of the company wrote in the customer's chat outside the hub (a 微信客服 servicer,
        a rep in an archived chat): a person has the conversation; the rep review reads it."""
        person_takes_over(ctx.conversation, "replied")
        await leads.responded(ctx.conversation.contact_id, db_session=ctx.db_session)
        if self.staff_words is not None:
            await self.staff_words.handle(ctx)
        ctx.replies.clear()  # nobody answers the company's own words


def _annotation(message_id: int, reading: Reading) -> dict[str, Any]:
    """A message's columns for what was read from it (the same columns for every reading: the
    readers wired are the same for a whole batch)."""
    felt = reading.sentiment
    return {"b_id": message_id, "b_sentiment": felt.label if felt else None,
            "b_score": felt.score if felt else None, "b_confidence": felt.confidence if felt else None,
            "b_intents": reading.intents, "b_entities": reading.entities}


class _LeaseLost(Exception):
    pass


@dataclass
class _CustomersWrote:
    """Who wrote in a transaction's messages, for what their writing changes, set-based at its end."""

    replied: set[int] = field(default_factory=set)     # contacts who answered in words
    identities: set[int] = field(default_factory=set)  # every identity a customer wrote from
    answered_at: dict[int, dt.datetime] = field(default_factory=dict)  # conversation id -> the last reply queued

    def answered(self, conversation: Conversation, at: dt.datetime) -> None:
        """A reply was queued in the conversation at `at`: the conversation's last message, shown
        at once to the session and written with the others at the end (one statement, not an
        update of each conversation flushed before the next message's first query)."""
        set_committed_value(conversation, "last_message_at", at)
        self.answered_at[conversation.id] = at

    async def settle(self, session: AsyncSession) -> None:
        await write_replies(session)
        if self.answered_at:
            await session.execute(_ANSWERED, [{"b_id": conversation_id, "b_at": at}
                                              for conversation_id, at in self.answered_at.items()],
                                  execution_options={_READ_NEXT: True})
        # They answered: campaigns that end on a reply end now, queued steps with them.
        await audience.exit_on_reply(self.replied, db_session=session)
        # They wrote again: sends held for a platform rule (a reply window) are due.
        await release_held(self.identities, db_session=session)


_READ_NEXT = "scrm_read_next"  # an execution option: the rows this statement writes are read right after it


class _BulkWrites:
    """Notices UPDATE and DELETE statements run past the ORM (`synchronize_session=False`) on a
    session: after one, the objects of that table the session holds may be stale (a conversation
    reassigned, identities moved to another contact), so the next message of the batch reads
    them again. Objects of other tables stay loaded. (Which tables a statement writes is
    `session_memo`'s reading, whose remembered answers the same statements make it forget.)"""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.written: set[Table] = set()
        self.unknown = False
        event.listen(session.sync_session, "do_orm_execute", self._seen)

    def _seen(self, state: Any) -> None:
        if (state.is_update or state.is_delete) and not state.execution_options.get(_READ_NEXT):
            written = tables_written(state)
            if written is None:
                self.unknown = True  # anything may have changed
            else:
                self.written |= written

    async def refresh_if_written(self) -> None:
        if not (self.written or self.unknown):
            return
        await self.session.flush()  # nothing pending is lost to the expiry
        if self.unknown:
            self.session.expire_all()
        else:
            for instance in list(self.session.identity_map.values()):
                if getattr(type(instance), "__table__", None) in self.written:
                    self.session.expire(instance)
        self.written, self.unknown = set(), False


def overheard(message: Message) -> bool:
    """A message read from a chat between the customer and a person (WeCom's session archive),
    not written to the company's bot."""
    return any(isinstance(a, dict) and a.get("type") == "archived" for a in message.attachments or [])
