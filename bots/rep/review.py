"""A person's message to a customer, from the rep bot or the API: read like a customer's
(sentiment, intents, entities), and wording a manager should see (discounts, refunds,
guarantees) flagged to the author's manager with a card and an audit entry."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession

from bots.rep.texts import say
from crm_core import audit
from crm_core.conversations.processing import Understanding
from crm_core.models import Conversation, Message, OutboxMessage, User
from crm_core.people import reps
from crm_core.ports import HandlerContext, OutboundMessage


class RepMessageReview:
    def __init__(self, understanding: Understanding | None = None,
                 compliance: Callable[[str], list[tuple[str, str]]] | None = None) -> None:
        self.understanding = understanding or Understanding()
        self.compliance = compliance

    async def review(self, sent: OutboxMessage, conversation: Conversation, user: User, *,
                     db_session: AsyncSession) -> bool:
        """After `sent` was queued; True when a card to a manager was queued too."""
        message = await db_session.get(Message, sent.message_id) if sent.message_id is not None else None
        return message is not None and await self.read(message, conversation, user, db_session=db_session)

    async def read(self, message: Message, conversation: Conversation, user: User | None, *,
                   db_session: AsyncSession) -> bool:
        """Read what a person of the company wrote to the customer (sent from the hub, or written in
        the customer's chat outside it); True when it was flagged to a manager."""
        if not message.text:
            return False
        if message.intents is not None:  # read before: a repeated request (same Idempotency-Key)
            return False
        # CPU work (and, in the serving process, the models' first load): off the event loop.
        [reading] = await asyncio.to_thread(self.understanding.read, [message.text])
        self.understanding.annotate(message, reading)
        message.intents = message.intents or []
        flags = self.compliance(message.text) if self.compliance is not None else []
        if not flags:
            return False
        return await self._flag_to_manager(conversation, user, message, flags, db_session)

    async def handle(self, ctx: HandlerContext) -> None:
        """The worker's reader of staff words written outside the hub (a 微信客服 servicer in WeCom,
        a rep in an archived chat): read and flagged like a reply sent from the hub."""
        user_id = ctx.message.author_user_id
        author = await ctx.db_session.get(User, user_id) if user_id is not None else None
        if await self.read(ctx.message, ctx.conversation, author, db_session=ctx.db_session):
            ctx.enqueued = True

    @staticmethod
    async def _flag_to_manager(conversation: Conversation, user: User | None, message: Message,
                               flags: list[tuple[str, str]], db_session: AsyncSession) -> bool:
        """A card to the author's manager (every manager if they have none, or no user is known)."""
        managers = await reps.managers_for(user, db_session=db_session)
        author = (user.display_name or user.username) if user is not None else \
            next((a.get("staff") for a in message.attachments or [] if isinstance(a, dict) and a.get("staff")), "?")
        text = message.text or ""
        terms = ", ".join(f"{category}: {term}" for category, term in flags)
        await audit.record("compliance.flagged", entity_type="conversation", entity_id=conversation.id,
                           actor=user, details={"terms": [list(f) for f in flags], "text": text[:1000],
                                                "message_id": message.id},
                           db_session=db_session)
        queued = False
        for manager in managers:
            lang = manager.language or "zh"
            card = OutboundMessage("", f"{author} → #{conversation.id}: “{text[:500]}”\n{terms}",
                                   reps.card_buttons(conversation.id, claimed=True, lang=lang),
                                   title=say("card_compliance", lang, rep=author, id=conversation.id))
            if await reps.notify_user(manager.id, card, key=f"compliance:m{message.id}:u{manager.id}",
                                      db_session=db_session):
                queued = True
        return queued
