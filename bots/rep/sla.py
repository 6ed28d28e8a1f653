"""First-response SLA reminders to reps, escalations to their managers.

At each tick of the hub's scheduler: a customer who has waited longer than the
first-response time for a person's answer makes a card to the conversation's
owner (every rep when nobody has claimed it); past the escalation time, to
the owner's manager (every manager when unowned). One reminder and one
escalation per wait: the customer's next answer from a person ends the wait,
their next message after that starts a new one.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bots.rep.alerts import send_card
from crm_core import reps, sla
from crm_core.db import utcnow
from crm_core.models import Conversation, Message, User

log = logging.getLogger(__name__)


class SlaWatcher:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, first_response: dt.timedelta,
                 escalate_after: dt.timedelta, on_enqueued: Callable[[], None] | None = None) -> None:
        if escalate_after < first_response:
            raise ValueError("the escalation time must not be shorter than the first-response time")
        self.sessions = sessions
        self.first_response = first_response
        self.escalate_after = escalate_after
        self.on_enqueued = on_enqueued

    async def run_once(self, now: dt.datetime | None = None) -> int:
        """Cards queued this tick."""
        now = now or utcnow()
        queued = 0
        async with self.sessions() as session, session.begin():
            for waiting in await sla.waiting_customers(since_before=now - self.first_response, db_session=session):
                minutes = int((now - waiting.waiting_since).total_seconds() // 60)
                conversation = await session.get(Conversation, waiting.conversation_id)
                assert conversation is not None
                latest = await session.scalar(select(Message.text).where(Message.id == waiting.first_message_id))
                if not waiting.reminded and await sla.mark(waiting, escalated=False, db_session=session):
                    for user in await self._owner_or_reps(conversation, session):
                        queued += await send_card(user, "card_sla", conversation, key=f"sla:{waiting.first_message_id}",
                                                  latest=latest, minutes=minutes, db_session=session)
                if now - waiting.waiting_since >= self.escalate_after and \
                        await sla.mark(waiting, escalated=True, db_session=session):
                    owner = await session.get(User, conversation.assignee_user_id) \
                        if conversation.assignee_user_id else None
                    for manager in await reps.managers_for(owner, db_session=session):  # the card names the owner
                        queued += await send_card(manager, "card_sla_escalation", conversation,
                                                  key=f"sla-escalation:{waiting.first_message_id}", latest=latest,
                                                  minutes=minutes, db_session=session)
        if queued:
            log.info("SLA watcher: %d reminder card(s) queued", queued)
            if self.on_enqueued is not None:
                self.on_enqueued()
        return queued

    @staticmethod
    async def _owner_or_reps(conversation: Conversation, session: AsyncSession) -> Sequence[User]:
        if conversation.assignee_user_id is not None:
            owner = await session.get(User, conversation.assignee_user_id)
            if owner is not None and owner.is_active:
                return [owner]
        return await reps.active_reps_with_handles(db_session=session)

