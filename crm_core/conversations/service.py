"""Contacts and conversations as the API and the reps see them.

Who sees what is decided in `crm_core.visibility`, one rule per record kind.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from crm_core import audit, visibility
from crm_core.db import utcnow
from crm_core.models import (
    CUSTOMER_MESSAGE_KINDS,
    Contact,
    ContactKey,
    Conversation,
    Direction,
    Identity,
    Message,
    OutboxMessage,
    OutboxStatus,
    User,
)
from crm_core.outbox.service import DeliveryState, delivery_state, enqueue_to_conversation, write_replies
from crm_core.ports import HandlerContext, OutboundMessage

# Reasons a conversation is handed over that mean a person is there: they claimed it, replied
# in it, or it is the rep's own contact. The bot's handoffs ("asked", "not_understood", "upset")
# and an assignment back to the queue only wait for one.
PERSON_HAS_IT = ("claimed", "replied", "rep_contact")


def person_takes_over(conversation: Conversation, reason: str) -> None:
    """The conversation is handed to people (claimed, assigned, replied, or asked for by the
    customer): the customer bot stays silent in it once a person has it (`has_a_person`) until the
    customer asks for it back, and until then answers what it can."""
    if conversation.handoff_at is None:
        conversation.handoff_at, conversation.handoff_reason = utcnow(), reason
    elif reason in PERSON_HAS_IT:
        conversation.handoff_reason = reason  # waited for a person since handoff_at: one is here


def has_a_person(conversation: Conversation) -> bool:
    """A person has the handed-over conversation: it has an owner, or a person took it or wrote in it."""
    return conversation.handoff_at is not None and (
        conversation.assignee_user_id is not None or conversation.handoff_reason in PERSON_HAS_IT)


async def list_contacts(user: User, *, db_session: AsyncSession, limit: int = 50, offset: int = 0,
                        q: str | None = None) -> list[Contact]:
    # Contacts merged into another are reached through that one (get_contact still finds them).
    stmt = visibility.contacts(user).where(Contact.merged_into_id.is_(None))
    if q and q.strip():
        like = f"%{q.strip()}%"
        stmt = stmt.where(or_(
            Contact.display_name.ilike(like),
            exists().where(Identity.contact_id == Contact.id,
                           or_(Identity.display_name.ilike(like), Identity.username.ilike(like))),
            exists().where(ContactKey.contact_id == Contact.id, ContactKey.value.ilike(like))))
    stmt = stmt.order_by(Contact.id.desc()).limit(limit).offset(offset)
    return list((await db_session.scalars(stmt)).all())


async def get_contact(contact_id: int, user: User, *, db_session: AsyncSession) -> Contact | None:
    stmt = visibility.contacts(user).where(Contact.id == contact_id).options(selectinload(Contact.identities))
    return await db_session.scalar(stmt)


async def list_conversations(
    user: User, *, db_session: AsyncSession, contact_id: int | None = None, limit: int = 50, offset: int = 0
) -> list[Conversation]:
    stmt = visibility.conversations(user)
    if contact_id is not None:
        stmt = stmt.where(Conversation.contact_id == contact_id)
    stmt = stmt.order_by(Conversation.last_message_at.desc(), Conversation.id.desc()).limit(limit).offset(offset)
    return list((await db_session.scalars(stmt)).all())


async def get_conversation(conversation_id: int, user: User, *, db_session: AsyncSession) -> Conversation | None:
    return await db_session.scalar(visibility.conversations(user).where(Conversation.id == conversation_id))


@dataclass(frozen=True)
class DeliveryView:
    """Where one outgoing message is, for the person who wrote it."""

    state: DeliveryState
    status: OutboxStatus
    detail: str | None                  # the platform's reason, or why it waits
    attempts: int
    next_attempt_at: dt.datetime | None  # queued only: when it goes at the earliest


@dataclass
class MessageView:
    message: Message
    delivery: DeliveryView | None  # outgoing messages only


async def deliveries(message_ids: Collection[int], *, db_session: AsyncSession) -> dict[int, DeliveryView]:
    """The delivery of each outgoing message among these (a message the hub sent has one outbox row)."""
    if not message_ids:
        return {}
    rows = await db_session.execute(
        select(OutboxMessage.message_id, OutboxMessage.status, OutboxMessage.accepted_as, OutboxMessage.last_error,
               OutboxMessage.attempts, OutboxMessage.next_attempt_at)
        .where(OutboxMessage.message_id.in_(message_ids)))
    views = {}
    for message_id, status, accepted_as, error, attempts, next_at in rows.all():
        state = delivery_state(status, accepted_as)
        views[message_id] = DeliveryView(state, status, error, attempts,
                                         next_at if state == DeliveryState.QUEUED else None)
    return views


async def list_messages(
    conversation: Conversation, *, db_session: AsyncSession, after_id: int = 0, limit: int = 100
) -> list[MessageView]:
    await write_replies(db_session)  # the bot's replies queued in this transaction, in their place
    messages = (await db_session.scalars(
        select(Message).where(Message.conversation_id == conversation.id, Message.id > after_id)
        .order_by(Message.id).limit(limit))).all()
    sent = await deliveries([m.id for m in messages if m.direction == Direction.OUTBOUND], db_session=db_session)
    return [MessageView(m, sent.get(m.id)) for m in messages]


async def send_from_user(
    conversation: Conversation,
    text: str,
    user: User,
    *,
    db_session: AsyncSession,
    idempotency_key: str | None = None,
    image_url: str | None = None,
    file_url: str | None = None,
    file_name: str | None = None,
) -> OutboxMessage:
    """A person's message into the conversation (with a picture: shown where the channel can; with
    a document: a file where the channel takes one, else its link), through the outbox."""
    key = f"user:{user.id}:{idempotency_key or uuid.uuid4().hex}"
    person_takes_over(conversation, "replied")
    row = await enqueue_to_conversation(
        conversation,
        OutboundMessage(conversation.external_thread_id, text, image_url=image_url, file_url=file_url,
                        file_name=file_name),
        idempotency_key=key,
        author_user_id=user.id,
        db_session=db_session,
    )
    await audit.record("conversation.send", entity_type="conversation", entity_id=conversation.id,
                       actor=user, db_session=db_session, details={"outbox_id": row.id})
    return row


async def first_customer_message(ctx: HandlerContext) -> bool:
    """Whether `ctx.message` is the first thing the customer wrote in its conversation (a new
    lead's alert, the bot's hello); asked once per message whoever asks."""
    if ctx.first_of_conversation is None:
        message = ctx.message
        earlier = await ctx.db_session.scalar(select(Message.id).where(
            Message.conversation_id == message.conversation_id, Message.direction == Direction.INBOUND,
            Message.kind.in_(CUSTOMER_MESSAGE_KINDS), Message.id < message.id).limit(1))
        ctx.first_of_conversation = earlier is None
    return ctx.first_of_conversation
