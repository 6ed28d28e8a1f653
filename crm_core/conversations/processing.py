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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.campaigns import audience
from crm_core.consent import service as consent
from crm_core.contacts.linking import apply_profile, link_keys
from crm_core.conversations.service import person_takes_over
from crm_core.db import utcnow
from crm_core.leads import service as leads
from crm_core.models import CUSTOMER_MESSAGE_KINDS, ChannelAccount, Contact, Conversation, Direction, Identity, Message
from crm_core.outbox.dispatcher import new_owner_id
from crm_core.outbox.service import enqueue_to_conversation, release_held
from crm_core.ports import HandlerContext, MessageHandler, Profile, ProfileLookup, SentimentAnalyzer
from crm_core.waiting import wait_any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Understanding:
    """What is read from a message's text; `nlp` supplies the functions, the hub wires them."""

    sentiment: SentimentAnalyzer | None = None
    intents: Callable[[str], Sequence[str]] | None = None
    entities: Callable[[str], dict[str, Any]] | None = None

    def annotate(self, message: Message) -> None:
        """Sentiment, intents and entities of a message with text, each only once."""
        text = message.text or ""
        if not text:
            return
        if self.sentiment is not None and message.sentiment is None:
            felt = self.sentiment.analyze(text)
            message.sentiment, message.sentiment_score = felt.label, felt.score
            message.sentiment_confidence = felt.confidence
        if self.intents is not None and message.intents is None:
            message.intents = list(self.intents(text))
        if self.entities is not None and message.entities is None:
            message.entities = self.entities(text)


class MessageWorker:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        handlers: Sequence[MessageHandler],
        *,
        lease_seconds: float = 60.0,
        max_attempts: int = 5,
        batch_size: int = 50,
        idle_poll_seconds: float = 0.5,
        on_enqueued: Callable[[], None] | None = None,
        owner: str | None = None,
        profiles: ProfileLookup | None = None,
        profile_timeout: float = 10.0,
        key_extractor: Callable[[str], Sequence[tuple[str, str]]] | None = None,
        understanding: Understanding | None = None,
        staff_words: MessageHandler | None = None,
    ) -> None:
        self.sessions = sessions
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
        ids = await self._claim()
        for message_id in ids:
            await self._process(message_id)
        return len(ids)

    async def _claim(self) -> list[int]:
        now = utcnow()
        stale = now - dt.timedelta(seconds=self.lease_seconds)
        due = (
            select(Message.id)
            .where(
                # Outbound too: what a person wrote in the customer's chat outside the hub.
                Message.direction.in_((Direction.INBOUND, Direction.OUTBOUND)),
                Message.processed_at.is_(None),
                or_(Message.processing_claimed_at.is_(None), Message.processing_claimed_at < stale),
            )
            .order_by(Message.id)
            .limit(self.batch_size)
            .with_for_update(skip_locked=True)
        )
        picked = due.cte("due").prefix_with("MATERIALIZED")  # evaluated once: see Dispatcher._claim
        async with self.sessions() as session, session.begin():
            rows = await session.execute(
                update(Message)
                .where(Message.id == picked.c.id, Message.processed_at.is_(None))
                .values(processing_owner=self.owner, processing_claimed_at=now,
                        processing_attempts=Message.processing_attempts + 1)
                .returning(Message.id)
                .execution_options(synchronize_session=False)
            )
            return sorted(rows.scalars().all())

    async def _lookup_profile(self, message_id: int) -> Profile | None:
        """The platform's profile of a customer not looked up yet; asked outside
        any transaction, so a slow platform holds no database lock."""
        if self.profiles is None:
            return None
        async with self.sessions() as session:
            row = (await session.execute(
                select(Identity.channel_account_id, Identity.external_id)
                .join(Message, Message.identity_id == Identity.id)
                .join(Contact, Contact.id == Identity.contact_id)
                .where(Message.id == message_id, Identity.profile_checked_at.is_(None), Contact.is_staff.is_(False))
            )).first()
        if row is None:
            return None
        try:
            return await asyncio.wait_for(self.profiles.fetch_profile(row.channel_account_id, row.external_id),
                                          self.profile_timeout)
        except Exception as exc:
            # The message is handled without it; the next message asks again.
            log.warning("message %s: profile of %s not available now: %s: %s", message_id, row.external_id,
                        type(exc).__name__, exc)
            return None

    async def _process(self, message_id: int) -> None:
        try:
            profile = await self._lookup_profile(message_id)
            async with self.sessions() as session, session.begin():
                message = await session.get(Message, message_id, with_for_update=False)
                if message is None or message.processed_at is not None or message.processing_owner != self.owner:
                    return
                identity = await session.get(Identity, message.identity_id)
                assert identity is not None
                contact = await session.get(Contact, identity.contact_id)
                assert contact is not None
                if profile is not None and identity.profile_checked_at is None:
                    # May move the identity and its conversations to the contact its unionid names.
                    contact = await apply_profile(identity, contact, profile, db_session=session)
                conversation = await session.get(Conversation, message.conversation_id)
                assert conversation is not None
                ctx = HandlerContext(session, message, conversation, contact, identity)
                if message.direction == Direction.OUTBOUND:
                    await self._staff_wrote(ctx)
                else:
                    await self._customer_wrote(ctx)
                if overheard(message):
                    ctx.replies.clear()  # a person is talking (a WeCom archive): the bot never answers
                for n, reply in enumerate(ctx.replies):
                    await enqueue_to_conversation(
                        conversation, reply, idempotency_key=f"reply:{message.id}:{n}", db_session=session
                    )
                # Compare-and-set: if our lease expired and another worker took
                # the message, roll back instead of answering twice.
                claimed = await session.execute(
                    update(Message)
                    .where(Message.id == message_id, Message.processing_owner == self.owner,
                           Message.processed_at.is_(None))
                    .values(processed_at=utcnow(), processing_error=None)
                    .execution_options(synchronize_session=False)
                )
                if claimed.rowcount != 1:
                    raise _LeaseLost()
        except _LeaseLost:
            log.warning("message %s: lease lost to another worker; its replies were discarded", message_id)
            return
        except Exception as exc:
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
                    update(Message).where(Message.id == message_id).values(**values)
                    .execution_options(synchronize_session=False)
                )
            return
        if (ctx.replies or ctx.enqueued) and self.on_enqueued is not None:
            self.on_enqueued()

    async def _customer_wrote(self, ctx: HandlerContext) -> None:
        """Read the customer's message, apply what it says about them, run the handlers."""
        session, message, identity, contact = ctx.db_session, ctx.message, ctx.identity, ctx.contact
        customer_text = not contact.is_staff and bool(message.text) and message.kind in CUSTOMER_MESSAGE_KINDS
        if customer_text:
            self.understanding.annotate(message)
        if self.key_extractor is not None and customer_text:
            stated = self.key_extractor(message.text)
            if stated:
                contact = ctx.contact = await link_keys(identity, contact, stated, source=f"message {message.id}",
                                                        db_session=session)
        if consent.opt_out_requests(message):
            account = await session.get(ChannelAccount, message.channel_account_id)
            await consent.apply_opt_outs(message, contact, account.kind if account else "?",
                                         db_session=session)
        elif customer_text:
            # A "yes" to a double opt-in question, or the customer's own "subscribe me".
            account = await session.get(ChannelAccount, message.channel_account_id)
            await consent.apply_opt_ins(message, contact, account.kind if account else "?",
                                        db_session=session)
            # They answered: campaigns that end on a reply end now, queued steps with them.
            await audience.exit_on_reply(contact.id, db_session=session)
        await release_held(identity.id, db_session=session)
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


class _LeaseLost(Exception):
    pass


def overheard(message: Message) -> bool:
    """A message read from a chat between the customer and a person (WeCom's session archive),
    not written to the company's bot."""
    return any(isinstance(a, dict) and a.get("type") == "archived" for a in message.attachments or [])
