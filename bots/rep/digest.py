"""Each rep's morning digest in their chat app: what they own, who is waiting for
them and for how long, their tasks due today or overdue, so nothing is forgotten
overnight. Once per rep per day, whichever worker process sends it (the idempotency
key carries the date)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bots.rep.texts import say
from crm_core.conversations import sla
from crm_core.db import utcnow
from crm_core.models import Conversation, ConversationStatus, Task, User
from crm_core.people import reps
from crm_core.ports import OutboundMessage


class RepDigest:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, timezone: str = "Asia/Shanghai",
                 on_enqueued: Callable[[], None] | None = None) -> None:
        self.sessions = sessions
        self.zone = ZoneInfo(timezone)
        self.on_enqueued = on_enqueued

    async def run_once(self, now: dt.datetime | None = None) -> int:
        """Digests queued (reps who own nothing open get none)."""
        now = now or utcnow()
        day = now.astimezone(self.zone).date().isoformat()
        queued = 0
        async with self.sessions() as session, session.begin():
            waiting: dict[int, list[sla.Waiting]] = {}
            for item in await sla.waiting_customers(since_before=now, db_session=session, limit=10_000):
                if item.assignee_user_id is not None:
                    waiting.setdefault(item.assignee_user_id, []).append(item)
            for user in await reps.active_reps_with_handles(db_session=session):
                text = await self._text(user, waiting.get(user.id, []), now, session)
                if text is not None:
                    queued += await reps.notify_user(user.id, OutboundMessage("", text,
                                                                              title=say("digest_title", user.language
                                                                                        or "zh", day=day)),
                                                     key=f"digest:{user.id}:{day}", db_session=session)
        if queued and self.on_enqueued is not None:
            self.on_enqueued()
        return queued

    async def _text(self, user: User, waiting: list[sla.Waiting], now: dt.datetime,
                    session: AsyncSession) -> str | None:
        lang = user.language or "zh"
        open_count = await session.scalar(select(func.count()).select_from(Conversation).where(
            Conversation.assignee_user_id == user.id, Conversation.status == ConversationStatus.OPEN)) or 0
        today_ends = dt.datetime.combine(now.astimezone(self.zone).date() + dt.timedelta(days=1), dt.time(0),
                                         tzinfo=self.zone)
        due = (await session.scalars(select(Task).where(Task.owner_user_id == user.id, Task.done_at.is_(None),
                                                        Task.due_at < today_ends)
                                     .order_by(Task.due_at).limit(50))).all()
        if not open_count and not due:
            return None
        lines = [say("digest_open", lang, count=open_count)]
        if due:
            overdue = [task for task in due if task.due_at < now]
            lines.append(say("digest_tasks", lang, count=len(due), overdue=len(overdue)))
            lines.extend(f"  T{task.id} {task.due_at.astimezone(self.zone):%m-%d %H:%M}"
                         f"{' ' + say('todo_overdue', lang) if task in overdue else ''} · {task.title}"
                         for task in due[:10])
        if waiting:
            oldest = min(item.waiting_since for item in waiting)
            lines.append(say("digest_waiting", lang, count=len(waiting),
                             hours=max(1, int((now - oldest).total_seconds() // 3600))))
            lines.extend(f"  #{item.conversation_id}" for item in waiting[:10])
        return "\n".join(lines)
