"""First-response SLA reminders to reps, escalations to their managers.

At each tick of the hub's scheduler: a customer who has waited longer than the
first-response time for a person's answer makes a card to the conversation's
owner (when nobody has claimed it, to the reps of the teams taking its channel,
else every rep); past the escalation time, to the owner's manager (every
manager when unowned). One reminder and one escalation per wait: the customer's
next answer from a person ends the wait, their next message after that starts
a new one.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bots.rep.alerts import send_card
from bots.rep.texts import say
from crm_core.conversations import sla
from crm_core.db import utcnow
from crm_core.leads import service as leads
from crm_core.leads import teams
from crm_core.leads.service import LeadRules
from crm_core.models import Contact, Conversation, Message, User
from crm_core.people import reps
from crm_core.ports import OutboundMessage

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
        return await reps.reps_for(conversation, db_session=session)



class LeadSlaWatcher:
    """A lead nobody has contacted by its first-response deadline reminds its owner; past the
    escalation time, the owner's manager (every manager for an unrouted lead). Once each."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], rules: LeadRules, *,
                 on_enqueued: Callable[[], None] | None = None) -> None:
        self.sessions = sessions
        self.rules = rules
        self.on_enqueued = on_enqueued

    async def run_once(self, now: dt.datetime | None = None) -> int:
        """Cards queued this tick."""
        now = now or utcnow()
        queued = 0
        async with self.sessions() as session, session.begin():
            for lead, escalate in await leads.overdue_first_responses(now, self.rules, db_session=session):
                if not await leads.mark_reminded(lead, escalated=escalate, db_session=session):
                    continue
                owner = await session.get(User, lead.owner_user_id) if lead.owner_user_id else None
                contact = await session.get(Contact, lead.contact_id)
                name = (contact.display_name if contact else None) or f"contact {lead.contact_id}"
                minutes = int((now - lead.created_at).total_seconds() // 60)
                if escalate:
                    targets = await reps.managers_for(owner, db_session=session)
                    key, params = "card_lead_escalation", {"rep": owner.display_name or owner.username
                                                           if owner else "-"}
                else:
                    targets = [owner] if owner is not None and owner.is_active else \
                        await reps.reps_for_channel(await teams.latest_kind(lead.contact_id, db_session=session),
                                                    db_session=session)
                    key, params = "card_lead_sla", {}
                for user in targets:
                    text = say(key, user.language or "zh", lead=lead.id, name=name, minutes=minutes, **params)
                    queued += await reps.notify_user(user.id, OutboundMessage("", text, title=text),
                                                     key=f"{key}:{lead.id}:{user.id}", db_session=session)
                await leads.record(lead, "sla_escalated" if escalate else "sla_reminded", db_session=session,
                                   to=[u.id for u in targets], minutes=minutes)
        if queued and self.on_enqueued is not None:
            self.on_enqueued()
        return queued
