"""Events customers register for through the bot: operators create them and see who is coming."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from admin.api.deps import db_session, require_role
from admin.api.errors import errors
from admin.api.ids import PathId
from admin.api.schemas import EventCreate, EventRead, EventRegistrationRead
from crm_core.campaigns import events
from crm_core.campaigns.events import EventInvalid, EventSpec
from crm_core.models import Event, EventRegistration, Role, User

router = APIRouter(prefix="/events", tags=["events"])

EDITORS = (Role.ADMIN, Role.OPERATOR)
READERS = (Role.ADMIN, Role.OPERATOR, Role.MANAGER)


async def _read(event: Event, session: AsyncSession) -> EventRead:
    registered = await session.scalar(select(func.count()).select_from(EventRegistration).where(
        EventRegistration.event_id == event.id, EventRegistration.status == "registered"))
    return EventRead.model_validate({**{c: getattr(event, c) for c in EventRead.model_fields if hasattr(event, c)},
                                     "registered": registered})


@router.post("", response_model=EventRead, status_code=201, responses=errors())
async def create(body: EventCreate, user: User = Depends(require_role(*EDITORS)),
                 session: AsyncSession = Depends(db_session)) -> EventRead:
    try:
        event = await events.create(EventSpec(**body.model_dump()), actor=user, db_session=session)
    except EventInvalid as exc:
        raise HTTPException(422, str(exc)) from None
    await session.commit()
    return await _read(event, session)


@router.get("", response_model=list[EventRead], responses=errors())
async def list_events(_: User = Depends(require_role(*READERS)),
                      session: AsyncSession = Depends(db_session)) -> list[EventRead]:
    rows = (await session.scalars(select(Event).order_by(Event.starts_at.desc()))).all()
    return [await _read(e, session) for e in rows]


@router.get("/{event_id}/registrations", response_model=list[EventRegistrationRead], responses=errors(404))
async def registrations(event_id: PathId, _: User = Depends(require_role(*READERS)),
                        session: AsyncSession = Depends(db_session)) -> list[EventRegistrationRead]:
    if await session.get(Event, event_id) is None:
        raise HTTPException(404, f"event {event_id} not found")
    rows = (await session.scalars(select(EventRegistration).where(EventRegistration.event_id == event_id)
                                  .order_by(EventRegistration.id))).all()
    return [EventRegistrationRead.model_validate(r) for r in rows]
