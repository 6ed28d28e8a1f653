"""First-response SLA: customers waiting for a person.

A customer is waiting from their first message after the last message a
person (a rep, through any channel or the API) sent in that conversation;
bot replies do not count. The rep workspace reminds and escalates from this
(`bots/rep/sla.py`); the marks on the conversation make each reminder and
escalation go out once per wait, whichever process finds it first.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from crm_core.models import CUSTOMER_MESSAGE_KINDS, Contact, Conversation, ConversationStatus, Direction, Message


@dataclass(frozen=True)
class Waiting:
    conversation_id: int
    assignee_user_id: int | None
    first_message_id: int     # the first unanswered customer message
    waiting_since: dt.datetime
    reminded: bool            # a reminder already went out for this wait
    escalated: bool


async def waiting_customers(*, since_before: dt.datetime, db_session: AsyncSession,
                            limit: int = 500) -> list[Waiting]:
    """Open conversations whose customer has waited since before `since_before`,
    oldest first, except those already escalated for their current wait."""
    answer = aliased(Message)
    answered_up_to = (
        select(func.max(answer.id))
        .where(answer.conversation_id == Conversation.id, answer.direction == Direction.OUTBOUND,
               answer.author_user_id.is_not(None))
        .correlate(Conversation)
        .scalar_subquery()
    )
    first_waiting = func.min(Message.id)
    stmt = (
        select(Conversation.id, Conversation.assignee_user_id, first_waiting, func.min(Message.created_at),
               Conversation.sla_reminded_message_id, Conversation.sla_escalated_message_id)
        .join(Message, Message.conversation_id == Conversation.id)
        .join(Contact, Contact.id == Conversation.contact_id)
        .where(Conversation.status == ConversationStatus.OPEN, Contact.is_staff.is_(False),
               Message.direction == Direction.INBOUND, Message.kind.in_(CUSTOMER_MESSAGE_KINDS),
               Message.id > func.coalesce(answered_up_to, 0))
        .group_by(Conversation.id, Conversation.assignee_user_id, Conversation.sla_reminded_message_id,
                  Conversation.sla_escalated_message_id)
        .having(func.min(Message.created_at) < since_before,
                or_(Conversation.sla_escalated_message_id.is_(None),
                    Conversation.sla_escalated_message_id < first_waiting))
        .order_by(func.min(Message.created_at))
        .limit(limit)
    )
    rows = (await db_session.execute(stmt)).all()
    return [Waiting(conversation_id=r[0], assignee_user_id=r[1], first_message_id=r[2], waiting_since=r[3],
                    reminded=r[4] == r[2], escalated=r[5] == r[2]) for r in rows]


async def mark(waiting: Waiting, *, escalated: bool, db_session: AsyncSession) -> bool:
    """Record that the reminder (or escalation) for this wait went out; False if
    another process recorded it first (then it sends nothing)."""
    column = Conversation.sla_escalated_message_id if escalated else Conversation.sla_reminded_message_id
    result = await db_session.execute(
        update(Conversation)
        .where(Conversation.id == waiting.conversation_id,
               or_(column.is_(None), column < waiting.first_message_id))
        .values({column.key: waiting.first_message_id})
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1
