"""Follow-up tasks: what a rep owes a customer, by when.

A rep makes one in their chat app (`/todo 3 明天10点 回电`) or the panel, a manager for one
of their people, and the follow-up rules for a lead nobody has written to for days or a
quote the customer has not answered. The reminder is taken once, by one process, when due
(`take_due`); snoozing sets it again. Every change is audited.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from crm_core import audit, catalogues, sql, visibility
from crm_core.contacts import naming
from crm_core.db import utcnow
from crm_core.models import Contact, Conversation, Direction, Lead, Message, Role, Task, User

MAX_TITLE = 300
WORKDAY = (dt.time(9, 0), dt.time(18, 0))  # a rule's task falls due inside it, Monday to Friday
RULE_ORIGINS = ("untouched_lead", "quote_unanswered")


class TaskInvalid(ValueError):
    """A task that may not be saved; the message says what to fix."""


def check_title(title: str) -> str:
    title = " ".join(title.split())
    if not title:
        raise TaskInvalid("title: say what is to be done")
    if len(title) > MAX_TITLE:
        raise TaskInvalid(f"title: at most {MAX_TITLE} characters ({len(title)} given)")
    return title


def check_when(moment: dt.datetime) -> None:
    if not dt.datetime(2000, 1, 1, tzinfo=dt.UTC) <= moment <= dt.datetime(2100, 12, 31, tzinfo=dt.UTC):
        raise TaskInvalid(f"due_at {moment.isoformat()}: a time between 2000 and 2100")


async def may_assign(actor: User, owner: User, *, db_session: AsyncSession) -> bool:
    """Whom `actor` may give a task: a rep only themself; a manager themself and their people;
    admins and operators anyone."""
    if owner.id == actor.id or actor.role in (Role.ADMIN, Role.OPERATOR):
        return True
    if actor.role == Role.MANAGER:
        return await db_session.scalar(visibility.team_members(actor).where(User.id == owner.id)) is not None
    return False


async def create(*, title: str, due_at: dt.datetime, owner: User, actor: User | None, origin: str,
                 db_session: AsyncSession, contact_id: int | None = None,
                 conversation_id: int | None = None) -> Task:
    """A new task, reminded at `due_at`; linked to the customer (and their open lead) of
    `conversation_id` or `contact_id`. Checks of who may see that customer are the caller's."""
    if due_at.tzinfo is None:
        raise TaskInvalid("due_at: give a time with its zone, for example 2026-12-24T10:00:00+08:00")
    check_when(due_at)
    if not owner.is_active:
        raise TaskInvalid(f"owner: {owner.username} is switched off; give the task to someone active")
    if conversation_id is not None and contact_id is None:
        contact_id = await db_session.scalar(select(Conversation.contact_id).where(Conversation.id == conversation_id))
    lead_id = None
    if contact_id is not None:
        lead_id = await db_session.scalar(select(Lead.id).where(Lead.contact_id == contact_id, Lead.status == "open")
                                          .order_by(Lead.id.desc()).limit(1))
    due_at = due_at.astimezone(dt.UTC)
    task = Task(title=check_title(title), due_at=due_at, remind_at=due_at, owner_user_id=owner.id,
                contact_id=contact_id, lead_id=lead_id, conversation_id=conversation_id, origin=origin,
                created_by_user_id=actor.id if actor else None)
    db_session.add(task)
    await db_session.flush()
    await audit.record("task.create", entity_type="task", entity_id=task.id, actor=actor, db_session=db_session,
                       details={"title": task.title, "owner_user_id": owner.id, "due_at": due_at.isoformat(),
                                "origin": origin})
    return task


async def complete(task: Task, actor: User, *, db_session: AsyncSession, now: dt.datetime) -> bool:
    """Done; False when it already was."""
    if task.done_at is not None:
        return False
    task.done_at, task.done_by_user_id, task.remind_at = now, actor.id, None
    await audit.record("task.done", entity_type="task", entity_id=task.id, actor=actor, db_session=db_session,
                       details={"title": task.title})
    return True


def snooze(task: Task, until: dt.datetime) -> None:
    """Remind again at `until` (the due time stays: past it, the task is overdue)."""
    task.remind_at = until


@dataclass(frozen=True)
class Due:
    task: Task
    remind_at: dt.datetime   # the reminder's time, part of its send's idempotency key


async def take_due(now: dt.datetime, *, db_session: AsyncSession, limit: int = 500) -> list[Due]:
    """The reminders due by `now`, each taken once: rows locked (SKIP LOCKED where the
    database has it) and cleared in the caller's transaction."""
    rows = (await db_session.scalars(
        select(Task).where(Task.remind_at <= now, Task.done_at.is_(None)).order_by(Task.remind_at).limit(limit)
        .with_for_update(skip_locked=True))).all()
    due = [Due(task, task.remind_at) for task in rows]
    for task in rows:
        task.remind_at, task.reminded_at = None, now
    return due


def is_overdue(task: Task, now: dt.datetime) -> bool:
    return task.done_at is None and task.due_at < now


def next_working_moment(now: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    """`now` if it is inside the working day, else the start of the next one (Monday to Friday)."""
    local = now.astimezone(zone)
    start, end = WORKDAY
    if local.weekday() < 5 and start <= local.time() < end:
        return now
    day = local.date() if local.time() < start else local.date() + dt.timedelta(days=1)
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    return dt.datetime.combine(day, start, tzinfo=zone).astimezone(dt.UTC)


async def open_for(user: User, *, db_session: AsyncSession, limit: int = 20) -> Sequence[Task]:
    """`user`'s own open tasks, the earliest due first."""
    return (await db_session.scalars(select(Task).where(Task.owner_user_id == user.id, Task.done_at.is_(None))
                                     .order_by(Task.due_at, Task.id).limit(limit))).all()


async def counts_by_owner(viewer: User, now: dt.datetime, *, db_session: AsyncSession) -> list[dict]:
    """Per owner among the tasks `viewer` may read: open, overdue, and done in the last 7 days."""
    week_ago = now - dt.timedelta(days=7)
    rows = (await db_session.execute(
        select(Task.owner_user_id, User.username, User.display_name,
               func.count().filter(Task.done_at.is_(None)),
               func.count().filter(Task.done_at.is_(None), Task.due_at < now),
               func.count().filter(Task.done_at >= week_ago))
        .join(User, User.id == Task.owner_user_id).where(visibility.tasks(viewer))
        .group_by(Task.owner_user_id, User.username, User.display_name))).all()
    return sorted(({"owner_user_id": owner, "owner": name or username, "open": opened, "overdue": overdue,
                    "done_last_7_days": done} for owner, username, name, opened, overdue, done in rows),
                  key=lambda row: (-row["overdue"], -row["open"], row["owner"]))


# ---- the follow-up rules ------------------------------------------------------

@dataclass(frozen=True)
class Rules:
    untouched_days: int = 3       # an open lead nobody wrote to for this long; 0: off
    quote_days: int = 2           # a lead in `quote_stage` whose customer has not answered for this long; 0: off
    quote_stage: str = "proposal"


def _last_rep_message(contact_id) -> object:
    """When a person last wrote to the contact (aliased: it sits inside other message queries)."""
    sent, conversation = aliased(Message), aliased(Conversation)
    return (select(func.max(sent.created_at)).join(conversation, conversation.id == sent.conversation_id)
            .where(conversation.contact_id == contact_id, sent.direction == Direction.OUTBOUND,
                   sent.author_user_id.is_not(None)).correlate(Lead).scalar_subquery())


async def apply_rules(rules: Rules, now: dt.datetime, *, zone: ZoneInfo, db_session: AsyncSession) -> int:
    """Tasks for the leads the rules name, once per occasion; how many were made."""
    made = 0
    last_out = _last_rep_message(Lead.contact_id)
    due = next_working_moment(now, zone)
    # The quote first: a lead waiting on its quote gets that task, not a second for its silence.
    if rules.quote_days > 0:
        cutoff = now - dt.timedelta(days=rules.quote_days)
        reply, thread = aliased(Message), aliased(Conversation)
        answered = (select(reply.id).join(thread, thread.id == reply.conversation_id)
                    .where(thread.contact_id == Lead.contact_id, reply.direction == Direction.INBOUND,
                           reply.created_at > last_out).correlate(Lead).exists())
        rows = (await db_session.execute(
            select(Lead, last_out).where(Lead.status == "open", Lead.owner_user_id.is_not(None),
                                         Lead.stage == rules.quote_stage, last_out < cutoff, ~answered)
            .order_by(Lead.id).limit(1000))).all()
        for lead, sent in rows:
            made += await _rule_task(lead, f"quote_unanswered:{lead.id}:{sent:%Y%m%dT%H%M%S}", "quote_unanswered",
                                     (now - sent).days, due, db_session)
    if rules.untouched_days > 0:
        cutoff = now - dt.timedelta(days=rules.untouched_days)
        # Touched: a rep's message to the customer, or a follow-up task on the lead done.
        last_done = select(func.max(Task.done_at)).where(Task.lead_id == Lead.id).scalar_subquery()
        rows = (await db_session.execute(
            select(Lead, last_out, last_done).where(
                Lead.status == "open", Lead.owner_user_id.is_not(None), Lead.created_at < cutoff,
                or_(last_out.is_(None), last_out < cutoff), or_(last_done.is_(None), last_done < cutoff))
            .order_by(Lead.id).limit(1000))).all()
        for lead, *touches in rows:
            since = max([lead.created_at, *(t for t in touches if t is not None)])
            days = (now - since).days
            made += await _rule_task(lead, f"untouched_lead:{lead.id}:{since:%Y%m%dT%H%M%S}", "untouched_lead",
                                     days, due, db_session)
    return made


async def _rule_task(lead: Lead, key: str, origin: str, days: int, due: dt.datetime, session: AsyncSession) -> int:
    """A rule's task for the lead's owner, titled in the owner's language."""
    if await session.scalar(select(Task.id).where(Task.rule_key == key)) is not None:
        return 0
    if await session.scalar(select(Task.id).where(Task.lead_id == lead.id, Task.origin.in_(RULE_ORIGINS),
                                                  Task.done_at.is_(None))) is not None:
        return 0  # a rule's task for this lead is still open: no second
    owner = await session.get(User, lead.owner_user_id)
    if owner is None or not owner.is_active:
        return 0
    contact = await session.get(Contact, lead.contact_id)
    name = lead.company if contact is None else (await naming.shown_names([contact], db_session=session))[contact.id]
    title = catalogues.text(f"task.{origin}")["en" if owner.language == "en" else "zh"].format(name=name, days=days)
    # Two processes on the same occasion: the key's UNIQUE keeps one, without failing the other.
    task_id = await sql.insert_ignoring_conflict(session, Task.__table__, {
        "title": title, "due_at": due, "remind_at": due, "owner_user_id": owner.id, "contact_id": lead.contact_id,
        "lead_id": lead.id, "origin": origin, "rule_key": key, "created_at": utcnow()}, conflict_columns=["rule_key"])
    if task_id is None:
        return 0
    await audit.record("task.create", entity_type="task", entity_id=task_id, actor=None, db_session=session,
                       details={"title": title, "owner_user_id": owner.id, "due_at": due.isoformat(), "origin": origin})
    return 1

