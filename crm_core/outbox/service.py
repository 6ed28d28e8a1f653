"""Putting messages into the outbox. The dispatcher sends them later.

Every outgoing message gets an idempotency key; enqueueing the same key twice
returns the existing row, so a retried request or a re-processed inbound
message never produces a second send.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from collections.abc import Collection
from typing import Any

from sqlalchemy import bindparam, event, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from crm_core import observe
from crm_core.consent import service as consent
from crm_core.db import UTCDateTime, utcnow
from crm_core.models import (
    ChannelAccount,
    Conversation,
    Delivery,
    Direction,
    Identity,
    Message,
    MessageKind,
    MessagePurpose,
    OutboxMessage,
    OutboxStatus,
    UserHandle,
)
from crm_core.ports import OutboundMessage
from crm_core.sql import among, insert_ignoring_conflict, insert_many, insert_many_returning_ids


async def enqueue_to_conversation(conversation: Conversation, message: OutboundMessage, *, idempotency_key: str,
                                  db_session: AsyncSession, **queueing: Any) -> OutboxMessage:
    """Record the outgoing message in the conversation and queue its send (a key queued before:
    that row, and nothing new). `queueing`: `queue_in_conversation`'s purpose, author_user_id and
    not_before."""
    row_id = await queue_in_conversation(conversation, message, idempotency_key=idempotency_key,
                                         db_session=db_session, **queueing)
    row = await (get_by_key(idempotency_key, db_session=db_session) if row_id is None
                 else db_session.get(OutboxMessage, row_id))
    assert row is not None
    return row


@dataclasses.dataclass(frozen=True)
class _Reply:
    """A reply queued and not written yet: the conversation's columns as they were when it was
    queued (the object may be expired by the time the reply is written)."""

    conversation_id: int
    channel_account_id: int
    identity_id: int
    assignee_user_id: int | None
    message: OutboundMessage
    idempotency_key: str
    at: dt.datetime
    request_id: str | None  # the request the message answered came with (the send is logged under it)


_UNWRITTEN = "scrm_unwritten_replies"  # session.info: the transaction's replies queued and not written yet


def queue_reply(conversation: Conversation, message: OutboundMessage, *, idempotency_key: str,
                db_session: AsyncSession, at: dt.datetime) -> None:
    """A bot's reply queued in the conversation as `queue_in_conversation` queues it (a service
    message), written with the transaction's other replies by `write_replies`: three statements
    for all of them instead of two or three each (the message worker's replies were a third of its
    statements). Until then, `last_reply_queued_at` knows it; a transaction that commits with
    replies unwritten fails rather than lose them."""
    unwritten = db_session.info.get(_UNWRITTEN)
    if unwritten is None:
        unwritten = db_session.info[_UNWRITTEN] = []
        event.listen(db_session.sync_session, "before_commit", _refuse_unwritten_replies)
        event.listen(db_session.sync_session, "after_rollback", _forget_unwritten_replies)
    unwritten.append(_Reply(conversation.id, conversation.channel_account_id, conversation.identity_id,
                            conversation.assignee_user_id, message, idempotency_key, at, observe.request_id.get()))


def last_reply_queued_at(conversation_id: int, *, db_session: AsyncSession) -> dt.datetime | None:
    """When the last reply queued in this conversation and not written yet was queued."""
    return max((r.at for r in db_session.info.get(_UNWRITTEN, ()) if r.conversation_id == conversation_id),
               default=None)


def _forget_unwritten_replies(session: Any) -> None:  # they went with the transaction
    session.info.pop(_UNWRITTEN, None)


def _refuse_unwritten_replies(session: Any) -> None:
    if session.info.get(_UNWRITTEN):
        raise RuntimeError(f"replies queued and never written (write_replies): {len(session.info[_UNWRITTEN])}")


async def handles_of(user_ids: Collection[int], db: AsyncSession | AsyncConnection) -> dict[tuple[int, int], str]:
    """(user, channel account) -> the user's id there, for these users: who a send goes out as
    where a platform sends only as a person (WeCom external contacts send as their owner)."""
    if not user_ids:
        return {}
    return {(user_id, account_id): external_id for user_id, account_id, external_id in (await db.execute(
        select(UserHandle.user_id, UserHandle.channel_account_id, UserHandle.external_id)
        .where(among(UserHandle.user_id, user_ids)))).all()}


async def write_replies(db_session: AsyncSession) -> None:
    """The replies `queue_reply` queued in this transaction, in the order they were queued: their
    copies in the conversations (one statement), their sends (one; a key queued before keeps its
    row and the copy made for it is taken back). Called before anything reads or writes a
    conversation's messages in the same transaction, so nothing sees them out of order."""
    replies = db_session.info.pop(_UNWRITTEN, None)
    if not replies:
        return
    # Platforms that send only as a person (WeCom external contacts) send as the owner.
    senders = await handles_of({r.assignee_user_id for r in replies
                                if r.assignee_user_id is not None and "sender" not in r.message.options}, db_session)
    connection = await db_session.connection()  # Core statements: see queue_in_conversation
    copies = await insert_many_returning_ids(connection, _MESSAGE, [{
        "conversation_id": r.conversation_id, "channel_account_id": r.channel_account_id,
        "identity_id": r.identity_id, "direction": Direction.OUTBOUND, "kind": MessageKind.TEXT,
        "text": r.message.text, "attachments": _history_attachments(r.message), "raw": None,
        "author_user_id": None, "created_at": r.at, "processed_at": r.at} for r in replies],
        matched_by=("conversation_id", "text"))
    rows, copy_of = [], {}
    for r, copy_id in zip(replies, copies, strict=True):
        message = r.message
        sender = senders.get((r.assignee_user_id or 0, r.channel_account_id))
        if sender is not None and "sender" not in message.options:
            message = dataclasses.replace(message, options={**message.options, "sender": sender})
        copy_of[r.idempotency_key] = copy_id
        rows.append({**_row(r.idempotency_key, r.channel_account_id, message,
                            purpose=MessagePurpose.SERVICE, not_before=None, now=r.at,
                            conversation_id=r.conversation_id, identity_id=r.identity_id,
                            message_id=copy_id), "request_id": r.request_id})
    queued = {key for (key,) in await insert_many(connection, OutboxMessage.__table__, rows,
                                                  conflict_columns=("idempotency_key",),
                                                  returning=("idempotency_key",))}
    if len(queued) < len(rows):  # queued before (by a worker whose lease this one took over)
        await connection.execute(_MESSAGE.delete().where(among(_MESSAGE.c.id, [
            message_id for key, message_id in copy_of.items() if key not in queued])))


async def queue_in_conversation(
    conversation: Conversation,
    message: OutboundMessage,
    *,
    idempotency_key: str,
    db_session: AsyncSession,
    purpose: MessagePurpose = MessagePurpose.SERVICE,
    author_user_id: int | None = None,
    not_before: dt.datetime | None = None,
) -> int | None:
    """What `enqueue_to_conversation` does, without loading the row it queued: its id, or None if
    the key was queued before (then nothing new is written). Two statements (the bot's replies in
    the message worker go together instead: `queue_reply`)."""
    await write_replies(db_session)  # the bot's replies queued before this message go before it
    if "sender" not in message.options and conversation.assignee_user_id is not None:
        # Platforms that send only as a person (WeCom external contacts) send as the owner.
        handle = await db_session.scalar(select(UserHandle.external_id).where(
            UserHandle.user_id == conversation.assignee_user_id,
            UserHandle.channel_account_id == conversation.channel_account_id))
        if handle is not None:
            message = dataclasses.replace(message, options={**message.options, "sender": handle})
    cancelled: dict[str, Any] = {}
    if purpose == MessagePurpose.MARKETING:
        # Consent when the send is scheduled (and again when it is sent, by the dispatcher).
        identity = await db_session.get(Identity, conversation.identity_id)
        kind = await db_session.scalar(select(ChannelAccount.kind).where(
            ChannelAccount.id == conversation.channel_account_id))
        decision = await consent.decide(identity.contact_id, purpose=purpose, channel=kind or "?",
                                        db_session=db_session)
        if not decision.allowed:
            cancelled = {"status": OutboxStatus.CANCELLED, "last_error": f"not scheduled: {decision.reason}"}
    now = utcnow()
    # Core statements built once, on the session's connection: the ORM's unit of work and a loaded
    # row cost more than the writes, and what the session has pending is flushed when next needed
    # (at the next query or the commit), not here.
    connection = await db_session.connection()
    history_id = (await connection.execute(_INSERT_HISTORY, {
        "conversation_id": conversation.id, "channel_account_id": conversation.channel_account_id,
        "identity_id": conversation.identity_id, "direction": Direction.OUTBOUND, "kind": MessageKind.TEXT,
        "text": message.text, "attachments": _history_attachments(message), "raw": None,
        "author_user_id": author_user_id, "created_at": now, "processed_at": now})).scalar_one()
    row_id = await insert_ignoring_conflict(
        connection, OutboxMessage.__table__,
        {**_row(idempotency_key, conversation.channel_account_id, message, purpose=purpose, not_before=not_before,
                now=now, conversation_id=conversation.id, identity_id=conversation.identity_id,
                message_id=history_id), **cancelled},
        conflict_columns=("idempotency_key",))
    if row_id is None:  # enqueued before under the same key (concurrently, or by an earlier run)
        await connection.execute(_DELETE_HISTORY, {"id": history_id})
        return None
    conversation.last_message_at = now
    return row_id


_MESSAGE = Message.__table__
_INSERT_HISTORY = _MESSAGE.insert().returning(_MESSAGE.c.id)
_DELETE_HISTORY = _MESSAGE.delete().where(_MESSAGE.c.id == bindparam("id"))
# At the end of each of the worker's transactions: built once.
_RELEASE_HELD = (
    update(OutboxMessage)
    .where(OutboxMessage.identity_id.in_(bindparam("identity_ids", expanding=True)),
           OutboxMessage.status == OutboxStatus.HELD)
    .values(status=OutboxStatus.PENDING, next_attempt_at=bindparam("now", type_=UTCDateTime()), claimed_by=None,
            claimed_at=None)
    .execution_options(synchronize_session=False))


async def enqueue_to_handle(
    channel_account_id: int,
    recipient: str,
    message: OutboundMessage,
    *,
    idempotency_key: str,
    db_session: AsyncSession,
    not_before: dt.datetime | None = None,
) -> int | None:
    """Queue a notice to a colleague in their chat app (a card to a rep); not part of any conversation.

    Returns the outbox row id, or None if this key was queued before.
    """
    row = _row(idempotency_key, channel_account_id, dataclasses.replace(message, recipient=recipient),
               purpose=MessagePurpose.SERVICE, not_before=not_before, now=utcnow())
    return await insert_ignoring_conflict(db_session, OutboxMessage.__table__, row,
                                          conflict_columns=("idempotency_key",))


def _row(idempotency_key: str, channel_account_id: int, message: OutboundMessage, *, purpose: MessagePurpose,
         not_before: dt.datetime | None, now: dt.datetime, **links: int | None) -> dict[str, Any]:
    """A new outbox row's values (inserted unless the key exists already)."""
    return {
        "idempotency_key": idempotency_key,
        "channel_account_id": channel_account_id,
        "recipient": message.recipient,
        "purpose": purpose,
        "payload": message.to_payload(),
        "status": OutboxStatus.PENDING,
        "attempts": 0,
        "next_attempt_at": not_before or now,
        "created_at": now,
        "request_id": observe.request_id.get(),
        **links,
    }


async def get_by_key(idempotency_key: str, *, db_session: AsyncSession) -> OutboxMessage | None:
    return await db_session.scalar(select(OutboxMessage).where(OutboxMessage.idempotency_key == idempotency_key))


async def release_held(identity_ids: Collection[int], *, db_session: AsyncSession) -> int:
    """These customers wrote again: sends to them held back by a platform rule become due.

    Returns how many were released. The dispatcher checks the rule again when it
    sends them, so a release never breaks it.
    """
    if not identity_ids:
        return 0
    result = await db_session.execute(_RELEASE_HELD, {"identity_ids": sorted(identity_ids), "now": utcnow()})
    return result.rowcount


async def refused_after_sending(channel_account_id: int, platform_message_id: str, reason: str, *,
                                db_session: AsyncSession) -> int:
    """The platform accepted a send and later said it did not reach the customer (微信客服's
    msg_send_fail): the message shows as failed, with the platform's reason."""
    result = await db_session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.channel_account_id == channel_account_id,
               OutboxMessage.platform_message_id == platform_message_id, OutboxMessage.status == OutboxStatus.SENT)
        .values(status=OutboxStatus.FAILED, last_error=reason)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount


def _history_attachments(message: OutboundMessage) -> list[dict[str, Any]]:
    """What the thread keeps besides the text: the picture and link shown, and the options
    offered, so a customer's "2" can be read as the second (customer bot)."""
    parts: list[dict[str, Any]] = []
    if message.image_url:
        parts.append({"type": "image", "url": message.image_url})
    if message.link_url:
        parts.append({"type": "link", "title": message.title, "url": message.link_url})
    if message.file_url:
        parts.append({"type": "file", "name": message.file_name, "url": message.file_url})
    if message.buttons:
        parts.append({"type": "options", "options": [{"label": b.label, "data": b.data} for b in message.buttons]})
    return parts


class DeliveryState(enum.StrEnum):
    """Where an outgoing message is, as the person who wrote it needs to know it."""

    # Waiting for its turn: new, paced, after a failed attempt, in a campaign's quiet hours (the reason is kept).
    QUEUED = "queued"
    SENDING = "sending"
    DELIVERED = "delivered"            # in the customer's chat
    SENT = "sent"                      # accepted; the platform delivers it later (email)
    AWAITING_CONFIRMATION = "awaiting_confirmation"  # a person confirms it on the platform (WeCom 群发 task)
    FAILED = "failed"                  # given up: the platform's reason is kept
    UNREACHABLE = "unreachable"        # the platform says the customer cannot be reached there
    HELD = "held"                      # the platform's rules forbid it now; goes when the customer writes again
    IN_DOUBT = "in_doubt"              # the sender died mid-call: maybe delivered, not sent again
    CANCELLED = "cancelled"            # not sent (consent withdrawn, campaign stopped)


_SETTLED = {
    OutboxStatus.FAILED: DeliveryState.FAILED, OutboxStatus.UNREACHABLE: DeliveryState.UNREACHABLE,
    OutboxStatus.HELD: DeliveryState.HELD, OutboxStatus.IN_DOUBT: DeliveryState.IN_DOUBT,
    OutboxStatus.CANCELLED: DeliveryState.CANCELLED, OutboxStatus.SENDING: DeliveryState.SENDING,
}
_ACCEPTED = {Delivery.IN_CHAT: DeliveryState.DELIVERED, Delivery.HANDED_OVER: DeliveryState.SENT,
             Delivery.AWAITING_CONFIRMATION: DeliveryState.AWAITING_CONFIRMATION,
             Delivery.CONFIRMED: DeliveryState.DELIVERED}


def delivery_state(status: OutboxStatus, accepted_as: Delivery | None) -> DeliveryState:
    """One outbox row's state, from its status and what the platform's acceptance meant."""
    if status == OutboxStatus.SENT:
        return _ACCEPTED.get(accepted_as, DeliveryState.SENT)  # None: sent before the hub kept what it meant
    return _SETTLED.get(status, DeliveryState.QUEUED)  # pending, claimed


@dataclasses.dataclass(frozen=True)
class Backlog:
    """What waits, whichever process will do it: outbox rows by status, how long the oldest due
    send has waited, customer messages stored and not processed yet (/metrics, the dashboard)."""

    outbox: dict[OutboxStatus, int]
    oldest_due_seconds: float
    waiting_messages: int


async def backlog(*, db_session: AsyncSession) -> Backlog:
    now = utcnow()
    by_status = dict((await db_session.execute(
        select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status))).all())
    oldest = await db_session.scalar(select(func.min(OutboxMessage.next_attempt_at)).where(
        OutboxMessage.status == OutboxStatus.PENDING, OutboxMessage.next_attempt_at <= now))
    waiting = await db_session.scalar(select(func.count()).select_from(Message).where(
        Message.direction == Direction.INBOUND, Message.processed_at.is_(None)))
    return Backlog({status: by_status.get(status, 0) for status in OutboxStatus},
                   max(0.0, (now - oldest).total_seconds()) if oldest else 0.0, waiting or 0)

