"""A rep's follow-up tasks in their chat app: `/todo 3 明天10点 回电` makes one (so does a
card's Remind me tomorrow), `/todo` lists them, `/finish T` (or Done on the reminder) closes
one, Snooze on the reminder asks again in an hour. The reminders themselves go out from
`TaskReminders`, a periodic job."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bots.rep import when
from bots.rep.texts import say
from crm_core import visibility
from crm_core.contacts import naming
from crm_core.db import utcnow
from crm_core.followups import tasks
from crm_core.followups.tasks import TaskInvalid
from crm_core.models import Contact, Conversation, Task, User
from crm_core.people import reps
from crm_core.ports import Button, OutboundMessage

if TYPE_CHECKING:
    from bots.rep.workspace import Session

SNOOZE = dt.timedelta(hours=1)
_LINKED = re.compile(r"^#?(\d+)\s+(.+)$", re.S)


def _local(moment: dt.datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%m-%d %H:%M")


async def command(session: Session, rest: str) -> None:
    """`/todo` lists; `/todo [N] when what` makes a task (for conversation N's customer)."""
    if not rest:
        await listing(session)
        return
    zone = ZoneInfo(session.timezone)
    now = utcnow().astimezone(zone)
    linked = _LINKED.match(rest)
    conversation_id, words = (int(linked.group(1)), linked.group(2)) if linked else (None, rest)
    found = when.split(words, now)
    if found is None or not found[1].strip():
        session.say("todo_usage")
        return
    due, title = found
    if due <= now:
        session.say("when_past", when=due.strftime("%m-%d %H:%M"))
        return
    if conversation_id is not None:
        conversation = await reps.get_open_conversation(conversation_id, db_session=session.db)
        reps.ensure_may_act(session.user, conversation)
    try:
        task = await tasks.create(title=title, due_at=due.astimezone(dt.UTC), owner=session.user,
                                  actor=session.user, origin="rep_bot", conversation_id=conversation_id,
                                  db_session=session.db)
    except TaskInvalid as exc:
        session.say("todo_invalid", reason=str(exc))
        return
    session.say("todo_made", id=task.id, title=task.title, when=due.strftime("%m-%d %H:%M"))


async def remind_tomorrow(session: Session, conversation: Conversation, name: str) -> None:
    """A card's "Remind me tomorrow": a follow-up task on the customer, due at the start of the
    next working day."""
    reps.ensure_may_act(session.user, conversation)
    zone = ZoneInfo(session.timezone)
    tomorrow = utcnow().astimezone(zone).date() + dt.timedelta(days=1)
    due = tasks.next_working_moment(dt.datetime.combine(tomorrow, dt.time(0), tzinfo=zone), zone)
    task = await tasks.create(title=say("task_follow_up", session.lang, name=name), due_at=due, owner=session.user,
                              actor=session.user, origin="rep_bot", conversation_id=conversation.id,
                              db_session=session.db)
    session.say("todo_made", id=task.id, title=task.title, when=_local(due, zone))


async def listing(session: Session) -> None:
    zone, now = ZoneInfo(session.timezone), utcnow()
    rows = await tasks.open_for(session.user, db_session=session.db)
    if not rows:
        session.say("todo_none")
        return
    lines = [say("todo_list", session.lang, count=len(rows))]
    for task in rows:
        late = " " + say("todo_overdue", session.lang) if tasks.is_overdue(task, now) else ""
        about = f" (#{task.conversation_id})" if task.conversation_id else ""
        lines.append(f"T{task.id} · {_local(task.due_at, zone)}{late} · {task.title}{about}")
    session.ctx.reply("\n".join(lines))


async def _task(session: Session, task_id: int) -> Task | None:
    task = await session.db.scalar(select(Task).where(Task.id == task_id, visibility.tasks(session.user)))
    if task is None:
        session.say("task_missing", id=task_id)
    return task


async def finish(session: Session, task_id: int) -> None:
    task = await _task(session, task_id)
    if task is None:
        return
    if await tasks.complete(task, session.user, db_session=session.db, now=utcnow()):
        session.say("task_done", id=task.id, title=task.title)
    else:
        session.say("task_was_done", id=task.id)


async def click(session: Session, action: str, task_id: int) -> None:
    if action == "task_done":
        await finish(session, task_id)
        return
    task = await _task(session, task_id)
    if task is None:
        return
    if task.done_at is not None:
        session.say("task_was_done", id=task.id)
        return
    until = utcnow() + SNOOZE
    tasks.snooze(task, until)
    session.say("task_snoozed", id=task.id, when=_local(until, ZoneInfo(session.timezone)))


class TaskReminders:
    """Each due task's reminder to its owner's chat app, with Done and Snooze; once, whichever
    worker process takes it."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, timezone: str = "Asia/Shanghai",
                 on_enqueued: Callable[[], None] | None = None) -> None:
        self.sessions = sessions
        self.zone = ZoneInfo(timezone)
        self.on_enqueued = on_enqueued

    async def run_once(self, now: dt.datetime | None = None) -> int:
        now = now or utcnow()
        queued = 0
        async with self.sessions() as session, session.begin():
            for due in await tasks.take_due(now, db_session=session):
                task = due.task
                owner = await session.get(User, task.owner_user_id)
                if owner is None or not owner.is_active:
                    continue
                lang = owner.language or "zh"
                text = await self._text(task, lang, now, session)
                buttons = (Button(say("task_button_done", lang), f"task_done:{task.id}"),
                           Button(say("task_button_snooze", lang), f"task_snooze:{task.id}"))
                queued += await reps.notify_user(
                    owner.id, OutboundMessage("", text, buttons, title=say("task_reminder_title", lang, id=task.id)),
                    key=f"task:{task.id}:{due.remind_at:%Y%m%dT%H%M%S}", db_session=session)
        if queued and self.on_enqueued is not None:
            self.on_enqueued()
        return queued

    async def _text(self, task: Task, lang: str, now: dt.datetime, session: AsyncSession) -> str:
        lines = [say("task_reminder", lang, id=task.id, title=task.title, when=_local(task.due_at, self.zone))]
        if task.contact_id is not None:
            contact = await session.get(Contact, task.contact_id)
            name = (await naming.shown_names([contact], db_session=session))[contact.id]
            lines.append(say("task_customer", lang, name=name, id=task.conversation_id or "-"))
        if tasks.is_overdue(task, now):
            lines.append(say("todo_overdue", lang))
        return "\n".join(lines)
