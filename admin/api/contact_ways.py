"""WeCom contact ways (渠道活码): QR codes customers add a rep with, the rota of reps behind each,
the tags, campaign and welcome an add through it brings, and its adds and losses by day.

Admins and operators make and change them (each change is made in WeCom first, then kept, and
audited); managers read them.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, status
from pydantic import BaseModel, Field, model_validator
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from admin.api.deps import ApiContext, api_context, db_session, require_role
from admin.api.errors import errors
from admin.api.ids import Id, PathId
from crm_core import audit
from crm_core.campaigns import contact_ways
from crm_core.campaigns.contact_ways import ContactWayInvalid, Rota
from crm_core.models import (
    Campaign,
    CampaignStatus,
    ChannelAccount,
    ContactWay,
    ContactWayEvent,
    Role,
    Team,
    User,
    UserHandle,
)

router = APIRouter(prefix="/contact-ways", tags=["contact ways"])
MANAGE = (Role.ADMIN, Role.OPERATOR)
VIEW = (Role.ADMIN, Role.OPERATOR, Role.MANAGER)


class Hours(BaseModel):
    start: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="HH:MM, local")
    end: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="HH:MM, local; before start: overnight")
    zone: str = Field(default="Asia/Shanghai", max_length=64)


class RotaWrite(BaseModel):
    users: list[Id] = Field(default_factory=list, max_length=contact_ways.MAX_USERS,
                            description="The reps behind the code (users with a WeCom handle on the app)")
    team_id: Id | None = Field(default=None, description="Or every rep of this team")
    daily_cap: int | None = Field(default=None, ge=1, le=10000, description="Adds per rep a day, then the next")
    fallback_user_id: Id | None = Field(default=None, description="Who is on the code when nobody else may be")
    hours: Hours | None = Field(default=None, description="Working hours; outside them, the fallback")
    round_robin: bool = Field(default=False, description="One rep on the code at a time, the next after each add "
                                                         "(else WeCom shares adds among all of them)")


class MiniProgram(BaseModel):
    appid: str = Field(pattern=r"^wx[0-9a-f]{16}$", description="A mini-program linked to the company in WeCom")
    page: str = Field(min_length=1, max_length=300, description="Its page: pages/index/index?from=qr")
    title: str | None = Field(default=None, max_length=64, description="The card's title (WeCom: 64 bytes)")


class WelcomeCard(BaseModel):
    """What a WeCom welcome carries beside its words: a picture alone, a link card, or a
    mini-program card (the picture as its cover)."""

    image_url: str | None = Field(default=None, max_length=500, pattern=r"^https?://",
                                  description="A JPEG or PNG (2 MB): sent alone, or as the card's cover")
    link_url: str | None = Field(default=None, max_length=500, pattern=r"^https?://")
    link_title: str | None = Field(default=None, max_length=128, description="The link card's title")
    miniprogram: MiniProgram | None = Field(default=None, description="A mini-program card (needs the picture)")

    @model_validator(mode="after")
    def _one_card(self) -> WelcomeCard:
        if self.miniprogram is not None and self.link_url:
            raise ValueError("a welcome carries one card: a link or a mini-program, not both")
        if self.miniprogram is not None and not self.image_url:
            raise ValueError("a mini-program card needs a cover: set the picture address (JPEG or PNG)")
        for card, title, limit in (("link", self.link_title, 128),
                                   ("mini-program", self.miniprogram.title if self.miniprogram else None, 64)):
            if title and len(title.encode("utf-8")) > limit:
                raise ValueError(f"the {card} card's title is too long for WeCom: at most {limit} bytes "
                                 "(a Chinese character is 3)")
        return self


class Welcome(WelcomeCard):
    zh: str | None = Field(default=None, max_length=1000)
    en: str | None = Field(default=None, max_length=1000)


class ContactWayWrite(BaseModel):
    channel_account_id: Id = Field(description="The WeCom app's channel account")
    name: str = Field(min_length=1, max_length=100, description="What the code is for: 展会2026 海报")
    state: str = Field(min_length=1, max_length=30, pattern=r"^[0-9A-Za-z_-]+$",
                       description="Names the code in WeCom's add events: letters, digits, _ or -")
    rota: RotaWrite
    tags: list[str] = Field(default_factory=list, max_length=contact_ways.MAX_TAGS)
    campaign_id: Id | None = None
    welcome: Welcome = Field(default_factory=Welcome)
    skip_verify: bool = Field(default=True, description="Customers are added without the rep accepting")


class ContactWayRead(BaseModel):
    id: int
    channel_account_id: int
    name: str
    state: str
    config_id: str | None
    qr_code: str | None
    rota: dict[str, Any]
    on_code: list[str]
    tags: list[str]
    campaign_id: int | None
    welcome: dict[str, Any]
    skip_verify: bool
    created_at: dt.datetime
    added: int = 0
    lost: int = 0


class ContactWayDetail(ContactWayRead):
    days: list[dict[str, Any]]


def _read(way: ContactWay, counts: dict[str, int] | None = None) -> ContactWayRead:
    return ContactWayRead(id=way.id, channel_account_id=way.channel_account_id, name=way.name, state=way.state,
                          config_id=way.config_id, qr_code=way.qr_code, rota=way.rota, on_code=way.on_code,
                          tags=way.tags, campaign_id=way.campaign_id, welcome=way.welcome,
                          skip_verify=way.skip_verify, created_at=way.created_at, **(counts or {}))


async def _way(way_id: int, session: AsyncSession) -> ContactWay:
    way = await session.get(ContactWay, way_id)
    if way is None or not way.is_active:
        raise HTTPException(404, f"no contact way {way_id}")
    return way


async def _totals(session: AsyncSession, way_ids: list[int]) -> dict[int, dict[str, int]]:
    rows = await session.execute(select(ContactWayEvent.contact_way_id, ContactWayEvent.kind, func.count())
                                 .where(ContactWayEvent.contact_way_id.in_(way_ids))
                                 .group_by(ContactWayEvent.contact_way_id, ContactWayEvent.kind))
    totals: dict[int, dict[str, int]] = {way_id: {"added": 0, "lost": 0} for way_id in way_ids}
    for way_id, kind, count in rows.all():
        if kind in ("added", "lost"):
            totals[way_id][kind] = count
    return totals


async def _apply(way: ContactWay, body: ContactWayWrite, session: AsyncSession) -> None:
    rota = Rota(users=tuple(body.rota.users), team_id=body.rota.team_id, daily_cap=body.rota.daily_cap,
                fallback_user_id=body.rota.fallback_user_id,
                hours=(body.rota.hours.start, body.rota.hours.end, body.rota.hours.zone) if body.rota.hours else None,
                round_robin=body.rota.round_robin)
    tags = list(dict.fromkeys(tag.strip() for tag in body.tags if tag.strip()))
    try:
        await contact_ways.check(await session.get(ChannelAccount, body.channel_account_id), body.name, body.state,
                                 rota, tags, body.campaign_id, db_session=session, way_id=way.id)
    except ContactWayInvalid as exc:
        raise HTTPException(422, str(exc)) from None
    way.channel_account_id, way.name, way.state = body.channel_account_id, body.name.strip(), body.state
    way.rota, way.tags, way.campaign_id = rota.to_dict(), tags, body.campaign_id
    way.welcome = body.welcome.model_dump(exclude_none=True)
    way.skip_verify = body.skip_verify


@router.get("", response_model=list[ContactWayRead], responses=errors())
async def list_contact_ways(_: User = Depends(require_role(*VIEW)),
                            session: AsyncSession = Depends(db_session)) -> list[ContactWayRead]:
    ways = (await session.scalars(select(ContactWay).where(ContactWay.is_active.is_(True))
                                  .order_by(ContactWay.id))).all()
    totals = await _totals(session, [w.id for w in ways])
    return [_read(way, totals[way.id]) for way in ways]


@router.get("/choices", responses=errors())
async def contact_way_choices(_: User = Depends(require_role(*MANAGE)),
                              session: AsyncSession = Depends(db_session)) -> dict[str, Any]:
    """What a contact way may be made of: the WeCom apps, the active users reached on each (with
    their WeCom userid), the teams and the campaigns."""
    apps = (await session.scalars(select(ChannelAccount).where(ChannelAccount.kind == "wecom")
                                  .order_by(ChannelAccount.id))).all()
    rows = (await session.execute(
        select(User.id, User.display_name, User.username, User.role, UserHandle.channel_account_id,
               UserHandle.external_id).join(UserHandle, UserHandle.user_id == User.id)
        .where(User.is_active.is_(True), UserHandle.channel_account_id.in_([a.id for a in apps]))
        .order_by(User.id))).all()
    teams = (await session.execute(select(Team.id, Team.name).order_by(Team.name))).all()
    campaigns = (await session.execute(select(Campaign.id, Campaign.name, Campaign.status)
                                       .where(Campaign.status != CampaignStatus.ENDED).order_by(Campaign.id))).all()
    return {"accounts": [{"id": a.id, "name": a.name} for a in apps],
            "users": [{"id": r.id, "name": r.display_name or r.username, "role": r.role.value,
                       "account_id": r.channel_account_id, "userid": r.external_id} for r in rows],
            "teams": [{"id": r.id, "name": r.name} for r in teams],
            "campaigns": [{"id": r.id, "name": r.name, "status": r.status.value} for r in campaigns]}


@router.post("", response_model=ContactWayRead, status_code=status.HTTP_201_CREATED, responses=errors(422))
async def create_contact_way(body: ContactWayWrite, user: User = Depends(require_role(*MANAGE)),
                             ctx: ApiContext = Depends(api_context),
                             session: AsyncSession = Depends(db_session)) -> ContactWayRead:
    """Made in WeCom with the rota's reps now (add_contact_way), then kept."""
    way = ContactWay(rota={}, on_code=[], tags=[], welcome={})
    await _apply(way, body, session)
    try:
        await ctx.contact_ways.save(way, db_session=session)
    except ContactWayInvalid as exc:
        raise HTTPException(422, str(exc)) from None
    session.add(way)
    await session.flush()
    await audit.record("contact_way.create", entity_type="contact_way", entity_id=way.id, actor=user,
                       db_session=session, details={"name": way.name, "state": way.state, "on_code": way.on_code})
    await session.commit()
    return _read(way)


@router.get("/{way_id}", response_model=ContactWayDetail, responses=errors(404))
async def get_contact_way(way_id: PathId, days: int = 30, _: User = Depends(require_role(*VIEW)),
                          session: AsyncSession = Depends(db_session)) -> ContactWayDetail:
    """The code with its adds, losses and net by day (the last `days` days, Asia/Shanghai)."""
    if not 1 <= days <= 366:
        raise HTTPException(422, "days: 1 to 366")
    way = await _way(way_id, session)
    totals = (await _totals(session, [way.id]))[way.id]
    return ContactWayDetail(**_read(way, totals).model_dump(),
                            days=await contact_ways.daily_counts(way.id, days=days, db_session=session))


@router.put("/{way_id}", response_model=ContactWayRead, responses=errors(404, 422))
async def update_contact_way(way_id: PathId, body: ContactWayWrite, user: User = Depends(require_role(*MANAGE)),
                             ctx: ApiContext = Depends(api_context),
                             session: AsyncSession = Depends(db_session)) -> ContactWayRead:
    way = await _way(way_id, session)
    if body.channel_account_id != way.channel_account_id:
        raise HTTPException(422, "a contact way stays on its WeCom app: make a new one for another app")
    await _apply(way, body, session)
    try:
        await ctx.contact_ways.save(way, db_session=session)
    except ContactWayInvalid as exc:
        raise HTTPException(422, str(exc)) from None
    await audit.record("contact_way.update", entity_type="contact_way", entity_id=way.id, actor=user,
                       db_session=session, details={"name": way.name, "state": way.state, "on_code": way.on_code})
    await session.commit()
    return _read(way, (await _totals(session, [way.id]))[way.id])


@router.delete("/{way_id}", status_code=204, responses=errors(404, 422))
async def delete_contact_way(way_id: PathId, user: User = Depends(require_role(*MANAGE)),
                             ctx: ApiContext = Depends(api_context),
                             session: AsyncSession = Depends(db_session)) -> None:
    """Removed in WeCom (del_contact_way: the printed code stops working); its counts are kept."""
    way = await _way(way_id, session)
    try:
        await ctx.contact_ways.delete(way, db_session=session)
    except ContactWayInvalid as exc:
        raise HTTPException(422, str(exc)) from None
    way.is_active = False
    await audit.record("contact_way.delete", entity_type="contact_way", entity_id=way.id, actor=user,
                       db_session=session, details={"name": way.name, "state": way.state})
    await session.commit()
