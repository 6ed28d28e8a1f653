"""The customer bot's FAQ: operators add, edit and retire answers, and try a question.

`POST /faq/search` shows what the bot would answer and how sure it is, so an
operator can add a phrasing or a synonym where it misses.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Response
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from admin.api.deps import db_session, require_role
from admin.api.errors import errors
from admin.api.ids import Id, PathId, QueryId
from admin.api.schemas import FaqCreate, FaqMatchRead, FaqRead
from bots.customer import CustomerBotSettings
from bots.customer.faq import FaqIndexes
from crm_core.knowledge import faq
from crm_core.knowledge.faq import FaqInvalid, FaqSpec
from crm_core.models import FaqEntry, Role, User

router = APIRouter(prefix="/faq", tags=["faq"])

EDITORS = (Role.ADMIN, Role.OPERATOR)
_indexes = FaqIndexes()


class FaqQuestion(BaseModel):
    text: str = Field(min_length=1, max_length=2000)
    channel_account_id: Id | None = None


def _spec(body: FaqCreate) -> FaqSpec:
    return FaqSpec(questions=body.questions, answers=body.answers, synonyms=body.synonyms,
                   channel_account_id=body.channel_account_id, is_active=body.is_active,
                   image_url=body.image_url, link_url=body.link_url)


async def _entry(entry_id: int, session: AsyncSession) -> FaqEntry:
    entry = await session.get(FaqEntry, entry_id)
    if entry is None:
        raise HTTPException(404, f"FAQ entry {entry_id} not found")
    return entry


@router.get("", response_model=list[FaqRead], responses=errors())
async def list_entries(channel_account_id: QueryId = None, _: User = Depends(require_role(*EDITORS)),
                       session: AsyncSession = Depends(db_session)) -> list[FaqRead]:
    query = select(FaqEntry).order_by(FaqEntry.id)
    if channel_account_id is not None:
        query = query.where(FaqEntry.channel_account_id == channel_account_id)
    return [FaqRead.model_validate(e) for e in (await session.scalars(query)).all()]


@router.post("", response_model=FaqRead, status_code=201, responses=errors())
async def create(body: FaqCreate, user: User = Depends(require_role(*EDITORS)),
                 session: AsyncSession = Depends(db_session)) -> FaqRead:
    try:
        entry = await faq.create(_spec(body), actor=user, db_session=session)
    except FaqInvalid as exc:
        raise HTTPException(422, str(exc)) from None
    await session.commit()
    return FaqRead.model_validate(entry)


@router.get("/{entry_id}", response_model=FaqRead, responses=errors(404))
async def get(entry_id: PathId, _: User = Depends(require_role(*EDITORS)),
              session: AsyncSession = Depends(db_session)) -> FaqRead:
    return FaqRead.model_validate(await _entry(entry_id, session))


@router.put("/{entry_id}", response_model=FaqRead, responses=errors(404))
async def update(entry_id: PathId, body: FaqCreate, user: User = Depends(require_role(*EDITORS)),
                 session: AsyncSession = Depends(db_session)) -> FaqRead:
    entry = await _entry(entry_id, session)
    try:
        await faq.update(entry, _spec(body), actor=user, db_session=session)
    except FaqInvalid as exc:
        raise HTTPException(422, str(exc)) from None
    await session.commit()
    return FaqRead.model_validate(entry)


@router.delete("/{entry_id}", status_code=204, responses=errors(404))
async def delete(entry_id: PathId, user: User = Depends(require_role(*EDITORS)),
                 session: AsyncSession = Depends(db_session)) -> Response:
    await faq.delete(await _entry(entry_id, session), actor=user, db_session=session)
    await session.commit()
    return Response(status_code=204)


@router.post("/search", response_model=list[FaqMatchRead], responses=errors())
async def search(body: FaqQuestion, _: User = Depends(require_role(*EDITORS)),
                 session: AsyncSession = Depends(db_session)) -> list[FaqMatchRead]:
    index = await _indexes.index_for(body.channel_account_id, db_session=session)
    threshold = CustomerBotSettings().faq_threshold
    return [FaqMatchRead(id=m.item.id, score=m.score, question=m.question, answers=m.item.answers,
                         confident=m.score >= threshold) for m in index.search(body.text, limit=5)]
