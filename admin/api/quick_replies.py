"""Quick replies (话术库): replies reps send from their chat app with `/q N shortcut`.

Admins and operators keep the shared replies and every team's; a manager keeps their teams';
a rep keeps their own. Each reads what they may use or keep; every change is audited.
"""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Depends, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from admin.api.deps import db_session, require_role
from admin.api.errors import errors
from admin.api.ids import Id, PathId
from crm_core import audit, visibility
from crm_core.knowledge import quick_replies
from crm_core.knowledge.quick_replies import QuickReplyInvalid
from crm_core.models import Conversation, QuickReply, Role, Team, User

router = APIRouter(prefix="/quick-replies", tags=["quick replies"])
EVERYONE = (Role.ADMIN, Role.OPERATOR, Role.MANAGER, Role.REP)


class Texts(BaseModel):
    zh: str | None = Field(default=None, max_length=2000)
    en: str | None = Field(default=None, max_length=2000)


class QuickReplyWrite(BaseModel):
    title: str = Field(min_length=1, max_length=100)
    texts: Texts = Field(description="Its words, with {name}, {company}, {rep}, {link} filled when sent")
    shortcut: str | None = Field(default=None, max_length=30, description="What a rep types after /q N")
    link_url: str | None = Field(default=None, max_length=1000, pattern=r"^https?://")
    image_url: str | None = Field(default=None, max_length=1000, pattern=r"^https?://",
                                  description="A picture sent with it (POST /media gives one)")
    file_url: str | None = Field(default=None, max_length=1000, pattern=r"^https?://",
                                 description="A document sent with it (POST /media): a file where the channel "
                                             "takes one, else its link")
    file_name: str | None = Field(default=None, max_length=200, description="The document's name for the customer")
    scope: str = Field(default="shared", pattern="^(shared|team|mine)$",
                       description="shared: everyone; team: one team's (team_id); mine: the writer's own")
    team_id: Id | None = None


class QuickReplyRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    title: str
    texts: dict[str, str]
    shortcut: str | None
    link_url: str | None
    image_url: str | None = None
    file_url: str | None = None
    file_name: str | None = None
    team_id: int | None
    owner_user_id: int | None
    updated_at: dt.datetime


async def _keeps(user: User, reply: QuickReply, session: AsyncSession) -> bool:
    """Whether `user` may change `reply`: their own; a team's they manage; any shared or team one
    for admins and operators."""
    if reply.owner_user_id is not None:
        return reply.owner_user_id == user.id
    if user.role in (Role.ADMIN, Role.OPERATOR):
        return True
    if user.role == Role.MANAGER and reply.team_id is not None:
        team = await session.get(Team, reply.team_id)
        return team is not None and team.manager_user_id == user.id
    return False


def _readable(user: User):
    if user.role in (Role.ADMIN, Role.OPERATOR):
        return or_(QuickReply.owner_user_id.is_(None), QuickReply.owner_user_id == user.id)
    if user.role == Role.MANAGER:
        managed = select(Team.id).where(Team.manager_user_id == user.id).scalar_subquery()
        return or_(quick_replies.visible_to(user), (QuickReply.owner_user_id.is_(None))
                   & QuickReply.team_id.in_(managed))
    return quick_replies.visible_to(user)


async def _apply(reply: QuickReply, body: QuickReplyWrite, user: User, session: AsyncSession) -> None:
    texts = {lang: text.strip() for lang, text in body.texts.model_dump().items() if text and text.strip()}
    shortcut = (body.shortcut or "").strip() or None
    try:
        quick_replies.check(texts, body.link_url, shortcut)
    except QuickReplyInvalid as exc:
        raise HTTPException(422, str(exc)) from None
    team_id, owner = None, None
    if body.scope == "mine":
        owner = user.id
    elif body.scope == "team":
        if body.team_id is None or await session.get(Team, body.team_id) is None:
            raise HTTPException(422, "team_id: choose the team whose reps use it")
        team_id = body.team_id
    trial = QuickReply(team_id=team_id, owner_user_id=owner)
    if not await _keeps(user, trial, session):
        raise HTTPException(403, "you keep only your own quick replies" if user.role == Role.REP
                            else "you keep the shared replies and your teams' only as an admin or operator")
    if shortcut is not None:
        taken = await session.scalar(select(QuickReply.id).where(
            QuickReply.shortcut == shortcut, QuickReply.id != (reply.id or 0),
            QuickReply.team_id.is_(team_id) if team_id is None else QuickReply.team_id == team_id,
            QuickReply.owner_user_id.is_(owner) if owner is None else QuickReply.owner_user_id == owner))
        if taken is not None:
            raise HTTPException(422, f"shortcut {shortcut!r} is quick reply {taken}'s here: choose another")
    reply.title, reply.texts, reply.shortcut, reply.link_url = body.title.strip(), texts, shortcut, body.link_url
    reply.image_url = body.image_url
    reply.file_url = body.file_url
    reply.file_name = ((body.file_name or "").strip() or None) if body.file_url else None
    reply.team_id, reply.owner_user_id = team_id, owner


async def _reply_for(reply_id: int, user: User, session: AsyncSession) -> QuickReply:
    reply = await session.scalar(select(QuickReply).where(QuickReply.id == reply_id, _readable(user)))
    if reply is None:
        raise HTTPException(404, f"no quick reply {reply_id}")
    return reply


@router.get("", response_model=list[QuickReplyRead], responses=errors())
async def list_quick_replies(q: str | None = Query(default=None, max_length=100, description="Words to find"),
                             user: User = Depends(require_role(*EVERYONE)),
                             session: AsyncSession = Depends(db_session)) -> list[QuickReplyRead]:
    rows = (await session.scalars(select(QuickReply).where(_readable(user)).order_by(QuickReply.id))).all()
    terms = [t.lower() for t in (q or "").split()]
    return [QuickReplyRead.model_validate(r) for r in rows
            if all(t in " ".join([r.shortcut or "", r.title, *r.texts.values()]).lower() for t in terms)]


class Filled(BaseModel):
    text: str
    image_url: str | None = Field(default=None, description="The reply's picture, to send with the text")
    file_url: str | None = Field(default=None, description="The reply's document, to send with the text")
    file_name: str | None = None
    missing: list[str] = Field(description="Variables the customer's record could not fill (left out)")


@router.get("/{reply_id}/filled", response_model=Filled, responses=errors(404))
async def filled_quick_reply(reply_id: PathId, conversation_id: int = Query(ge=1, le=2**63 - 1),
                             user: User = Depends(require_role(*EVERYONE)),
                             session: AsyncSession = Depends(db_session)) -> Filled:
    """The reply's words filled for the customer of a conversation the user may read (the inbox's
    picker): as the rep bot's /q sends them."""
    reply = await _reply_for(reply_id, user, session)
    conversation = await session.scalar(visibility.conversations(user).where(Conversation.id == conversation_id))
    if conversation is None:
        raise HTTPException(404, f"no conversation {conversation_id}")
    filled = await quick_replies.for_conversation(reply, conversation, user, db_session=session)
    return Filled(text=filled.text, missing=list(filled.missing), image_url=reply.image_url,
                  file_url=reply.file_url, file_name=reply.file_name)


@router.post("", response_model=QuickReplyRead, status_code=status.HTTP_201_CREATED, responses=errors(403, 422))
async def create_quick_reply(body: QuickReplyWrite, user: User = Depends(require_role(*EVERYONE)),
                             session: AsyncSession = Depends(db_session)) -> QuickReplyRead:
    reply = QuickReply(created_by_user_id=user.id)
    await _apply(reply, body, user, session)
    session.add(reply)
    await session.flush()
    await audit.record("quick_reply.create", entity_type="quick_reply", entity_id=reply.id, actor=user,
                       db_session=session, details={"title": reply.title, "shortcut": reply.shortcut})
    await session.commit()
    return QuickReplyRead.model_validate(reply)


@router.put("/{reply_id}", response_model=QuickReplyRead, responses=errors(403, 404, 422))
async def update_quick_reply(body: QuickReplyWrite, reply_id: PathId, user: User = Depends(require_role(*EVERYONE)),
                             session: AsyncSession = Depends(db_session)) -> QuickReplyRead:
    reply = await _reply_for(reply_id, user, session)
    if not await _keeps(user, reply, session):
        raise HTTPException(403, "you may use this quick reply, not change it")
    await _apply(reply, body, user, session)
    await audit.record("quick_reply.update", entity_type="quick_reply", entity_id=reply.id, actor=user,
                       db_session=session, details={"title": reply.title, "shortcut": reply.shortcut})
    await session.commit()
    return QuickReplyRead.model_validate(reply)


@router.delete("/{reply_id}", status_code=status.HTTP_204_NO_CONTENT, responses=errors(403, 404))
async def delete_quick_reply(reply_id: PathId, user: User = Depends(require_role(*EVERYONE)),
                             session: AsyncSession = Depends(db_session)) -> None:
    reply = await _reply_for(reply_id, user, session)
    if not await _keeps(user, reply, session):
        raise HTTPException(403, "you may use this quick reply, not delete it")
    await audit.record("quick_reply.delete", entity_type="quick_reply", entity_id=reply.id, actor=user,
                       db_session=session, details={"title": reply.title, "shortcut": reply.shortcut})
    await session.delete(reply)
    await session.commit()
