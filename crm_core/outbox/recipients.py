"""What the dispatcher tells an adapter about a send's recipient, for the platform's rules: their
latest actions and what reached them since (WeChat's reply window, WeCom's 4 mass messages a
month), and the way back their newest message offered (a DingTalk sessionWebhook)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.db import utcnow
from crm_core.models import Conversation, Delivery, Direction, Message, MessageKind, OutboxMessage, OutboxStatus
from crm_core.ports import RecipientActivity

_OWN_MESSAGE_KINDS = (MessageKind.TEXT, MessageKind.IMAGE, MessageKind.FILE, MessageKind.VOICE,
                      MessageKind.LOCATION, MessageKind.LINK)
_ACTION_KINDS = (MessageKind.EVENT, MessageKind.CALLBACK)


async def recipient_activity(identity_id: int, *, db_session: AsyncSession) -> RecipientActivity:
    """The customer's last message and last action, and how many sends reached them since each."""
    async def last(kinds: tuple[MessageKind, ...]) -> dt.datetime | None:
        return await db_session.scalar(select(func.max(Message.created_at)).where(
            Message.identity_id == identity_id, Message.direction == Direction.INBOUND, Message.kind.in_(kinds)))

    async def sent_since(moment: dt.datetime | None, *also: Any) -> int:
        if moment is None:
            return 0
        return await db_session.scalar(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.identity_id == identity_id, OutboxMessage.status == OutboxStatus.SENT,
            OutboxMessage.sent_at >= moment, *also)) or 0

    # WeCom counts a customer's 群发 by calendar month, China time.
    month = utcnow().astimezone(dt.timezone(dt.timedelta(hours=8))).replace(day=1, hour=0, minute=0, second=0,
                                                                           microsecond=0)
    last_message, last_event = await last(_OWN_MESSAGE_KINDS), await last(_ACTION_KINDS)
    return RecipientActivity(last_message, last_event, await sent_since(last_message), await sent_since(last_event),
                             confirmed_this_month=await sent_since(month, OutboxMessage.accepted_as.in_(
                                 (Delivery.AWAITING_CONFIRMATION, Delivery.CONFIRMED))))


async def reply_via(identity_id: int, thread: str, *, db_session: AsyncSession) -> dict | None:
    """The "reply_via" attachment of the recipient's newest message in this thread, if it has one."""
    attachments = await db_session.scalar(
        select(Message.attachments)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(Message.identity_id == identity_id, Message.direction == Direction.INBOUND,
               Conversation.external_thread_id == thread)
        .order_by(Message.id.desc()).limit(1))
    return next((a for a in attachments or [] if isinstance(a, dict) and a.get("type") == "reply_via"), None)
