"""Ingest: store normalized inbound events idempotently and resolve who wrote.

A platform retry carries the same platform message id; storing it again is a
no-op. The caller commits before answering the platform, so an acknowledged
message is always in the database.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.db import utcnow
from crm_core.models import (
    Contact,
    Conversation,
    ConversationStatus,
    Direction,
    Identity,
    Message,
    MessageKind,
)
from crm_core.ports import InboundEvent, InboundMessage, ReachabilityChanged, Sender
from crm_core.sql import insert_ignoring_conflict

log = logging.getLogger(__name__)


@dataclass
class IngestResult:
    stored_message_ids: list[int] = field(default_factory=list)
    duplicates: int = 0


async def ingest_events(
    events: Sequence[InboundEvent], *, channel_account_id: int, db_session: AsyncSession
) -> IngestResult:
    """Store each event once. Does not commit: the caller does, then acknowledges."""
    result = IngestResult()
    for event in events:
        message_id = await _store_event(event, channel_account_id=channel_account_id, db_session=db_session)
        if message_id is None:
            result.duplicates += 1
        else:
            result.stored_message_ids.append(message_id)
    if result.duplicates:
        log.info("account %s: %d platform retries ignored", channel_account_id, result.duplicates)
    return result


async def _store_event(event: InboundEvent, *, channel_account_id: int, db_session: AsyncSession) -> int | None:
    already = await db_session.scalar(
        select(Message.id).where(
            Message.channel_account_id == channel_account_id,
            Message.platform_message_id == event.platform_message_id,
        )
    )
    if already is not None:
        return None

    identity = await resolve_identity(event.sender, channel_account_id=channel_account_id, db_session=db_session)
    conversation = await open_conversation(identity, event.thread_id, db_session=db_session)
    now = utcnow()
    if isinstance(event, InboundMessage):
        kind, text, attachments = event.kind, event.text, event.attachments
    else:
        kind, text, attachments = MessageKind.EVENT, event.reason, []
    message_id = await insert_ignoring_conflict(
        db_session,
        Message.__table__,
        {
            "conversation_id": conversation.id,
            "channel_account_id": channel_account_id,
            "identity_id": identity.id,
            "direction": Direction.INBOUND,
            "kind": kind,
            "text": text,
            "attachments": attachments,
            "raw": event.raw,
            "platform_message_id": event.platform_message_id,
            "created_at": now,
        },
        conflict_columns=["channel_account_id", "platform_message_id"],
    )
    if message_id is None:  # a concurrent retry won the race
        return None

    conversation.last_message_at = now
    if isinstance(event, ReachabilityChanged):
        identity.reachable = event.reachable
        identity.unreachable_reason = None if event.reachable else event.reason
        identity.unreachable_since = None if event.reachable else now
    else:
        identity.last_inbound_at = now
        # Someone who writes to us can be written to (a blocked bot cannot
        # receive messages from the person who blocked it).
        identity.reachable, identity.unreachable_reason, identity.unreachable_since = True, None, None
    return message_id


async def resolve_identity(sender: Sender, *, channel_account_id: int, db_session: AsyncSession) -> Identity:
    """The identity for this sender, created with a new contact the first time."""
    identity = await _find_identity(sender.external_id, channel_account_id, db_session)
    if identity is None:
        contact = Contact(display_name=sender.display_name, language=sender.language)
        db_session.add(contact)
        await db_session.flush()
        new_id = await insert_ignoring_conflict(
            db_session,
            Identity.__table__,
            {
                "contact_id": contact.id,
                "channel_account_id": channel_account_id,
                "external_id": sender.external_id,
                "display_name": sender.display_name,
                "username": sender.username,
                "language": sender.language,
                "reachable": True,
                "created_at": utcnow(),
            },
            conflict_columns=["channel_account_id", "external_id"],
        )
        if new_id is None:  # created concurrently: drop our contact, use theirs
            await db_session.delete(contact)
        identity = await _find_identity(sender.external_id, channel_account_id, db_session)
        assert identity is not None
    else:
        # Names change; keep what the platform says now.
        identity.display_name = sender.display_name or identity.display_name
        identity.username = sender.username or identity.username
        identity.language = sender.language or identity.language
    return identity


async def _find_identity(external_id: str, channel_account_id: int, db_session: AsyncSession) -> Identity | None:
    return await db_session.scalar(
        select(Identity).where(
            Identity.channel_account_id == channel_account_id, Identity.external_id == external_id
        )
    )


async def open_conversation(identity: Identity, thread_id: str, *, db_session: AsyncSession) -> Conversation:
    """The open conversation on this thread, or a new one."""
    is_open = Conversation.status == ConversationStatus.OPEN
    where = (
        Conversation.channel_account_id == identity.channel_account_id,
        Conversation.external_thread_id == thread_id,
        is_open,
    )
    conversation = await db_session.scalar(select(Conversation).where(*where))
    if conversation is not None:
        return conversation
    now = utcnow()
    await insert_ignoring_conflict(
        db_session,
        Conversation.__table__,
        {
            "contact_id": identity.contact_id,
            "identity_id": identity.id,
            "channel_account_id": identity.channel_account_id,
            "external_thread_id": thread_id,
            "status": ConversationStatus.OPEN,
            "created_at": now,
            "last_message_at": now,
        },
        conflict_columns=["channel_account_id", "external_thread_id"],
        # A literal, not a bound parameter: PostgreSQL's generic plans (after five
        # executions of a prepared statement) cannot match a parameter to the
        # partial index's predicate.
        conflict_where=text("status = 'open'"),
    )
    conversation = await db_session.scalar(select(Conversation).where(*where))
    assert conversation is not None
    return conversation


async def mark_identity_unreachable(identity_id: int, reason: str, *, db_session: AsyncSession) -> None:
    await db_session.execute(
        update(Identity)
        .where(Identity.id == identity_id)
        .values(reachable=False, unreachable_reason=reason, unreachable_since=utcnow())
    )
