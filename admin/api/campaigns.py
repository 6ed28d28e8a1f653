"""Nurture campaigns: create, edit a draft, copy, activate / pause / end, enrol, exit, results.

Operators and admins build and run campaigns; managers may read them and their
results. Nothing is sent by the API itself: the worker's planner queues the steps
when they are due, and the dispatcher checks consent, caps and quiet hours.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Query
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from admin.api.deps import ApiContext, api_context, db_session, require_role
from admin.api.errors import errors
from admin.api.ids import Offset, PathId
from admin.api.schemas import (
    CampaignCreate,
    CampaignRead,
    CampaignStatusUpdate,
    CampaignStepRead,
    EnrolContacts,
    EnrolmentRead,
)
from crm_core.campaigns import audience
from crm_core.campaigns import service as campaigns
from crm_core.campaigns.definitions import CampaignInvalid, CampaignStarted, StepSpec, steps_of
from crm_core.campaigns.results import results as campaign_results
from crm_core.models import Campaign, CampaignStatus, Contact, Enrolment, EnrolmentStatus, Role, User

router = APIRouter(prefix="/campaigns", tags=["campaigns"])

BUILDERS = (Role.ADMIN, Role.OPERATOR)
READERS = (Role.ADMIN, Role.OPERATOR, Role.MANAGER)


async def _campaign(campaign_id: int, session: AsyncSession) -> Campaign:
    campaign = await session.get(Campaign, campaign_id)
    if campaign is None:
        raise HTTPException(404, f"campaign {campaign_id} not found")
    return campaign


async def _read(campaign: Campaign, session: AsyncSession) -> CampaignRead:
    steps = await steps_of(campaign.id, db_session=session)
    return CampaignRead(id=campaign.id, name=campaign.name, status=campaign.status.value, audience=campaign.audience,
                        exits=campaign.exits, caps=campaign.caps, created_at=campaign.created_at,
                        steps=[CampaignStepRead.model_validate(step) for step in steps])


@router.post("", response_model=CampaignRead, status_code=201, responses=errors())
async def create(body: CampaignCreate, user: User = Depends(require_role(*BUILDERS)),
                 ctx: ApiContext = Depends(api_context), session: AsyncSession = Depends(db_session)) -> CampaignRead:
    steps = [StepSpec(**step.model_dump()) for step in body.steps]
    try:
        campaign = await campaigns.create_campaign(body.name, audience=body.audience, steps=steps, exits=body.exits,
                                                   channel_kinds=ctx.catalog.kinds, actor=user, caps=body.caps,
                                                   db_session=session)
    except CampaignInvalid as exc:
        raise HTTPException(422, str(exc)) from None
    await session.commit()
    return await _read(campaign, session)


@router.put("/{campaign_id}", response_model=CampaignRead, responses=errors(404, 409))
async def update(campaign_id: PathId, body: CampaignCreate, user: User = Depends(require_role(*BUILDERS)),
                 ctx: ApiContext = Depends(api_context), session: AsyncSession = Depends(db_session)) -> CampaignRead:
    """Replace a draft's name, audience, steps, exits and caps (409 once it has started: copy it)."""
    campaign = await _campaign(campaign_id, session)
    steps = [StepSpec(**step.model_dump()) for step in body.steps]
    try:
        await campaigns.update_draft(campaign, name=body.name, audience=body.audience, steps=steps, exits=body.exits,
                                     caps=body.caps, channel_kinds=ctx.catalog.kinds, actor=user, db_session=session)
    except CampaignInvalid as exc:
        raise HTTPException(409 if isinstance(exc, CampaignStarted) else 422, str(exc)) from None
    await session.commit()
    return await _read(campaign, session)


@router.post("/{campaign_id}/copy", response_model=CampaignRead, status_code=201, responses=errors(404))
async def copy(campaign_id: PathId, user: User = Depends(require_role(*BUILDERS)),
               session: AsyncSession = Depends(db_session)) -> CampaignRead:
    """A new draft like this campaign, to change and start (a started campaign is not edited)."""
    copied = await campaigns.copy_campaign(await _campaign(campaign_id, session), actor=user, db_session=session)
    await session.commit()
    return await _read(copied, session)


@router.get("", response_model=list[CampaignRead], responses=errors())
async def list_campaigns(_: User = Depends(require_role(*READERS)),
                         session: AsyncSession = Depends(db_session)) -> list[CampaignRead]:
    campaigns = (await session.scalars(select(Campaign).order_by(Campaign.id.desc()))).all()
    return [await _read(c, session) for c in campaigns]


@router.get("/{campaign_id}", response_model=CampaignRead, responses=errors(404))
async def get(campaign_id: PathId, _: User = Depends(require_role(*READERS)),
              session: AsyncSession = Depends(db_session)) -> CampaignRead:
    return await _read(await _campaign(campaign_id, session), session)


@router.post("/{campaign_id}/status", responses=errors(404, 409))
async def set_status(campaign_id: PathId, body: CampaignStatusUpdate, user: User = Depends(require_role(*BUILDERS)),
                     ctx: ApiContext = Depends(api_context), session: AsyncSession = Depends(db_session)) -> dict:
    campaign = await _campaign(campaign_id, session)
    try:
        enrolled = await campaigns.set_status(campaign, CampaignStatus(body.status), actor=user, db_session=session)
    except CampaignInvalid as exc:
        raise HTTPException(409, str(exc)) from None
    await session.commit()
    return {"id": campaign.id, "status": campaign.status.value, "enrolled": enrolled}


@router.get("/{campaign_id}/results", responses=errors(404))
async def results(campaign_id: PathId, _: User = Depends(require_role(*READERS)),
                  session: AsyncSession = Depends(db_session)) -> dict:
    return await campaign_results(await _campaign(campaign_id, session), db_session=session)


@router.get("/{campaign_id}/enrolments", response_model=list[EnrolmentRead], responses=errors(404))
async def enrolments(campaign_id: PathId, status: EnrolmentStatus | None = None,
                     limit: int = Query(100, ge=1, le=1000), offset: Offset = 0,
                     _: User = Depends(require_role(*READERS)),
                     session: AsyncSession = Depends(db_session)) -> list[EnrolmentRead]:
    await _campaign(campaign_id, session)
    stmt = select(Enrolment).where(Enrolment.campaign_id == campaign_id).order_by(Enrolment.id)
    if status is not None:
        stmt = stmt.where(Enrolment.status == status)
    return [EnrolmentRead.model_validate(e) for e in (await session.scalars(stmt.limit(limit).offset(offset))).all()]


@router.post("/{campaign_id}/enrolments", responses=errors(404, 409))
async def enrol(campaign_id: PathId, body: EnrolContacts, _: User = Depends(require_role(*BUILDERS)),
                session: AsyncSession = Depends(db_session)) -> dict:
    campaign = await _campaign(campaign_id, session)
    if campaign.status not in (CampaignStatus.DRAFT, CampaignStatus.ACTIVE, CampaignStatus.PAUSED):
        raise HTTPException(409, f"campaign {campaign.name!r} has ended; nobody can join it")
    known = set((await session.scalars(select(Contact.id).where(Contact.id.in_(body.contact_ids),
                                                                Contact.merged_into_id.is_(None)))).all())
    missing = sorted(set(body.contact_ids) - known)
    if missing:
        raise HTTPException(422, f"no such contacts: {', '.join(map(str, missing[:20]))}")
    enrolled = await audience.enrol_contacts(campaign, body.contact_ids, db_session=session)
    await session.commit()
    return {"enrolled": enrolled, "already_enrolled": len(set(body.contact_ids)) - enrolled}


@router.post("/{campaign_id}/enrolments/{enrolment_id}/exit", response_model=EnrolmentRead, responses=errors(404))
async def exit_enrolment(campaign_id: PathId, enrolment_id: PathId, user: User = Depends(require_role(*BUILDERS)),
                         session: AsyncSession = Depends(db_session)) -> EnrolmentRead:
    enrolment = await session.get(Enrolment, enrolment_id)
    if enrolment is None or enrolment.campaign_id != campaign_id:
        raise HTTPException(404, f"enrolment {enrolment_id} not found in campaign {campaign_id}")
    await audience.exit_enrolment(enrolment, "manual", actor=user, db_session=session)
    await session.commit()
    return EnrolmentRead.model_validate(enrolment)
