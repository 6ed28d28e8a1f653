"""Follow-up tasks: a rep's own, a manager's people's, everyone's for admins and operators.

A rep makes tasks for themself; a manager for themself and their people; admins and operators
for anyone active. A task about a customer names one the user may read. Every change is audited.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Query, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from admin.api.deps import db_session, require_role
from admin.api.errors import errors
from admin.api.ids import Id, Offset, PathId, QueryId
from crm_core import audit, visibility
from crm_core.contacts import naming
from crm_core.db import utcnow
from crm_core.followups import tasks
from crm_core.followups.tasks import TaskInvalid
from crm_core.models import Contact, Conversation, Role, Task, User

router = APIRouter(prefix="/tasks", tags=["tasks"])
EVERYONE = (Role.ADMIN, Role.OPERATOR, Role.MANAGER, Role.REP)


class TaskWrite(BaseModel):
    title: str = Field(min_length=1, max_length=tasks.MAX_TITLE, description="What is to be done")
    due_at: AwareDatetime = Field(description="When, with its zone: 2026-12-24T10:00:00+08:00")
    owner_user_id: Id | None = Field(default=None, description="Whose it is; unset: the writer's own")
    contact_id: Id | None = Field(default=None, description="The customer it is about")
    conversation_id: Id | None = Field(default=None, description="Or the conversation it is about")


class TaskChange(BaseModel):
    title: str | None = Field(default=None, min_length=1, max_length=tasks.MAX_TITLE)
    due_at: AwareDatetime | None = Field(default=None, description="A new due time (the reminder moves with it)")
    owner_user_id: Id | None = None
    done: bool | None = Field(default=None, description="true: done; false: open again")


class TaskRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    title: str
    due_at: dt.datetime
    remind_at: dt.datetime | None
    owner_user_id: int
    contact_id: int | None
    lead_id: int | None
    conversation_id: int | None
    origin: str
    created_by_user_id: int | None
    created_at: dt.datetime
    done_at: dt.datetime | None
    overdue: bool = False
    owner_name: str | None = None
    contact_name: str | None = Field(default=None, description="The customer's name as shown everywhere")


class OwnerCounts(BaseModel):
    owner_user_id: int
    owner: str
    open: int
    overdue: int
    done_last_7_days: int


async def _reads(rows: Sequence[Task], session: AsyncSession) -> list[TaskRead]:
    """The tasks with whose they are and whom they are about, by name."""
    now = utcnow()
    owners = {u.id: u.display_name or u.username for u in (await session.scalars(
        select(User).where(User.id.in_({t.owner_user_id for t in rows})))).all()}
    contacts = (await session.scalars(select(Contact).where(
        Contact.id.in_({t.contact_id for t in rows if t.contact_id})))).all()
    names = await naming.shown_names(contacts, db_session=session)
    return [TaskRead.model_validate(task).model_copy(update={
        "overdue": tasks.is_overdue(task, now), "owner_name": owners.get(task.owner_user_id),
        "contact_name": names.get(task.contact_id)}) for task in rows]


async def _read(task: Task, session: AsyncSession) -> TaskRead:
    return (await _reads([task], session))[0]


async def _task_for(task_id: int, user: User, session: AsyncSession) -> Task:
    task = await session.scalar(select(Task).where(Task.id == task_id, visibility.tasks(user)))
    if task is None:
        raise HTTPException(404, f"no task {task_id}")
    return task


async def _owner(owner_id: int | None, user: User, session: AsyncSession) -> User:
    owner = user if owner_id is None or owner_id == user.id else await session.get(User, owner_id)
    if owner is None:
        raise HTTPException(422, f"owner_user_id: there is no user {owner_id}")
    if not await tasks.may_assign(user, owner, db_session=session):
        raise HTTPException(403, "reps keep their own tasks; managers give tasks to their people only")
    return owner


@router.get("", response_model=list[TaskRead], responses=errors())
async def list_tasks(state: Literal["open", "overdue", "done", "all"] = "open",
                     owner_user_id: QueryId = None, contact_id: QueryId = None,
                     limit: int = Query(default=200, ge=1, le=1000), offset: Offset = 0,
                     user: User = Depends(require_role(*EVERYONE)),
                     session: AsyncSession = Depends(db_session)) -> list[TaskRead]:
    """The tasks the user may read, the earliest due first (done ones: the latest done first)."""
    now = utcnow()
    stmt = select(Task).where(visibility.tasks(user))
    if state == "open":
        stmt = stmt.where(Task.done_at.is_(None)).order_by(Task.due_at, Task.id)
    elif state == "overdue":
        stmt = stmt.where(Task.done_at.is_(None), Task.due_at < now).order_by(Task.due_at, Task.id)
    elif state == "done":
        stmt = stmt.where(Task.done_at.is_not(None)).order_by(Task.done_at.desc(), Task.id)
    else:
        stmt = stmt.order_by(Task.due_at, Task.id)
    if owner_user_id is not None:
        stmt = stmt.where(Task.owner_user_id == owner_user_id)
    if contact_id is not None:
        stmt = stmt.where(Task.contact_id == contact_id)
    return await _reads((await session.scalars(stmt.limit(limit).offset(offset))).all(), session)


@router.get("/by-owner", response_model=list[OwnerCounts], responses=errors(403))
async def tasks_by_owner(user: User = Depends(require_role(Role.ADMIN, Role.OPERATOR, Role.MANAGER)),
                         session: AsyncSession = Depends(db_session)) -> list[OwnerCounts]:
    """Per rep: open, overdue, done in the last 7 days (a manager: their people and themself)."""
    return [OwnerCounts(**row) for row in await tasks.counts_by_owner(user, utcnow(), db_session=session)]


@router.get("/{task_id}", response_model=TaskRead, responses=errors(404))
async def get_task(task_id: PathId, user: User = Depends(require_role(*EVERYONE)),
                   session: AsyncSession = Depends(db_session)) -> TaskRead:
    return await _read(await _task_for(task_id, user, session), session)


@router.post("", response_model=TaskRead, status_code=status.HTTP_201_CREATED, responses=errors(403, 404, 422))
async def create_task(body: TaskWrite, user: User = Depends(require_role(*EVERYONE)),
                      session: AsyncSession = Depends(db_session)) -> TaskRead:
    owner = await _owner(body.owner_user_id, user, session)
    contact_id = body.contact_id
    if body.conversation_id is not None:
        conversation = await session.scalar(visibility.conversations(user)
                                            .where(Conversation.id == body.conversation_id))
        if conversation is None:
            raise HTTPException(404, f"conversation_id: no conversation {body.conversation_id}")
        if contact_id is not None and contact_id != conversation.contact_id:
            raise HTTPException(422, "contact_id: not the customer of that conversation; give one or the other")
        contact_id = conversation.contact_id
    elif contact_id is not None and not await visibility.may_see_contact(user, contact_id, db_session=session):
        raise HTTPException(404, f"contact_id: no contact {contact_id}")
    try:
        task = await tasks.create(title=body.title, due_at=body.due_at, owner=owner, actor=user, origin="panel",
                                  contact_id=contact_id, conversation_id=body.conversation_id, db_session=session)
    except TaskInvalid as exc:
        raise HTTPException(422, str(exc)) from None
    await session.commit()
    return await _read(task, session)


@router.patch("/{task_id}", response_model=TaskRead, responses=errors(403, 404, 422))
async def change_task(body: TaskChange, task_id: PathId, user: User = Depends(require_role(*EVERYONE)),
                      session: AsyncSession = Depends(db_session)) -> TaskRead:
    task = await _task_for(task_id, user, session)
    now = utcnow()
    changes: dict[str, object] = {}
    if body.title is not None:
        try:
            task.title = changes["title"] = tasks.check_title(body.title)
        except TaskInvalid as exc:
            raise HTTPException(422, str(exc)) from None
    if body.owner_user_id is not None and body.owner_user_id != task.owner_user_id:
        owner = await _owner(body.owner_user_id, user, session)
        if not owner.is_active:
            raise HTTPException(422, f"owner_user_id: {owner.username} is switched off; choose someone active")
        task.owner_user_id = changes["owner_user_id"] = owner.id
    if body.due_at is not None:
        try:
            tasks.check_when(body.due_at)
        except TaskInvalid as exc:
            raise HTTPException(422, str(exc)) from None
        task.due_at = body.due_at.astimezone(dt.UTC)
        if task.done_at is None:
            task.remind_at = task.due_at
        changes["due_at"] = body.due_at.isoformat()
    if body.done is True:
        await tasks.complete(task, user, db_session=session, now=now)
    elif body.done is False and task.done_at is not None:
        task.done_at, task.done_by_user_id = None, None
        task.remind_at = task.due_at if task.due_at > now else None
        changes["done"] = False
    if changes:
        await audit.record("task.update", entity_type="task", entity_id=task.id, actor=user, db_session=session,
                           details=changes)
    await session.commit()
    return await _read(task, session)
