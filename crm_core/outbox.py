"""Putting messages into the outbox. The dispatcher sends them later.

Every outgoing message gets an idempotency key; enqueueing the same key twice
returns the existing row, so a retried request or a re-processed inbound
message never produces a second send.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.db import utcnow
from crm_core.models import (
    Conversation,
    Direction,
    Message,
    MessageKind,
    MessagePurpose,
    OutboxMessage,
    OutboxStatus,
)
from crm_core.ports import OutboundMessage
from crm_core.sql import insert_ignoring_conflict


async def enqueue_to_conversation(
    conversation: Conversation,
    message: OutboundMessage,
    *,
    idempotency_key: str,
    db_session: AsyncSession,
    purpose: MessagePurpose = MessagePurpose.SERVICE,
    author_user_id: int | None = None,
    not_before: dt.datetime | None = None,
) -> OutboxMessage:
    """Record the outgoing message in the conversation and queue its send."""
    existing = await get_by_key(idempotency_key, db_session=db_session)
    if existing is not None:
        return existing
    now = utcnow()
    history = Message(
        conversation_id=conversation.id,
        channel_account_id=conversation.channel_account_id,
        identity_id=conversation.identity_id,
        direction=Direction.OUTBOUND,
        kind=MessageKind.TEXT,
        text=message.text,
        attachments=[],
        raw=None,
        author_user_id=author_user_id,
        created_at=now,
        processed_at=now,
    )
    db_session.add(history)
    await db_session.flush()
    row_id = await insert_ignoring_conflict(
        db_session,
        OutboxMessage.__table__,
        {
            "idempotency_key": idempotency_key,
            "channel_account_id": conversation.channel_account_id,
            "conversation_id": conversation.id,
            "identity_id": conversation.identity_id,
            "message_id": history.id,
            "recipient": message.recipient,
            "purpose": purpose,
            "payload": message.to_payload(),
            "status": OutboxStatus.PENDING,
            "attempts": 0,
            "next_attempt_at": not_before or now,
            "created_at": now,
        },
        conflict_columns=["idempotency_key"],
    )
    if row_id is None:  # enqueued concurrently under the same key
        await db_session.delete(history)
        existing = await get_by_key(idempotency_key, db_session=db_session)
        assert existing is not None
        return existing
    conversation.last_message_at = now
    row = await db_session.get(OutboxMessage, row_id)
    assert row is not None
    return row


async def get_by_key(idempotency_key: str, *, db_session: AsyncSession) -> OutboxMessage | None:
    return await db_session.scalar(select(OutboxMessage).where(OutboxMessage.idempotency_key == idempotency_key))
