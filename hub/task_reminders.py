"""Reminders to reps whose WeCom 群发 tasks wait for them: a reply to an external contact, or a mass
send (the hub's or one made in WeCom's console), goes only once the rep taps Send in WeCom's
群发助手. A task still waiting after `wecom_confirm_remind_minutes` earns its rep one reminder a
day in their chat app, counting all that wait (tasks older than a week are no longer followed,
crm_core/outbox/confirmations.py)."""

from __future__ import annotations

import datetime as dt
from collections import Counter

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bots.rep.texts import say
from crm_core.db import utcnow
from crm_core.models import Delivery, MassSend, MassSendTask, OutboxMessage, OutboxStatus
from crm_core.outbox.confirmations import FOLLOW_FOR
from crm_core.people import reps
from crm_core.ports import OutboundMessage


async def remind(sessions: async_sessionmaker[AsyncSession], *, after: dt.timedelta, zone: dt.tzinfo) -> int:
    """Queue today's reminder to each rep with a task waiting longer than `after`; how many reps."""
    now = utcnow()
    async with sessions() as session, session.begin():
        rows = (await session.execute(select(OutboxMessage.channel_account_id, OutboxMessage.payload).where(
            OutboxMessage.status == OutboxStatus.SENT, OutboxMessage.accepted_as == Delivery.AWAITING_CONFIRMATION,
            OutboxMessage.sent_at < now - after, OutboxMessage.sent_at > now - FOLLOW_FOR))).all()
        waiting = Counter((account_id, ((payload or {}).get("options") or {}).get("sender"))
                          for account_id, payload in rows)
        # And 群发 tasks: the hub's mass sends, and those made in WeCom's console for the rep.
        waiting.update((await session.execute(
            select(MassSend.channel_account_id, MassSendTask.sender_userid).join(MassSend).where(
                MassSendTask.status == "waiting", MassSend.created_at < now - after,
                MassSend.created_at > now - FOLLOW_FOR))).all())
        today = now.astimezone(zone).date().isoformat()
        reminded = 0
        for (account_id, sender), count in sorted(waiting.items(), key=lambda item: (item[0][0], item[0][1] or "")):
            found = await reps.user_by_handle(account_id, sender, db_session=session) if sender else None
            if found is None:
                continue
            user = found[0]
            lang = user.language or "zh"
            reminded += bool(await reps.notify_user(
                user.id, OutboundMessage("", say("confirm_tasks", lang, count=count), title="群发 · WeCom"),
                key=f"confirm-tasks:{user.id}:{today}", db_session=session))
    return reminded
