"""WeCom moments (朋友圈): a post for reps to publish to their customers' moments, shown to the
customers with chosen tags, and which reps published it (hub/moments.py carries it out); posts
made outside the hub (WeCom's console, a rep's own) listed too; each post's reach. Admins and
operators post; managers read."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from admin.api.deps import ApiContext, api_context, db_session, require_role
from admin.api.errors import errors
from admin.api.ids import Id, PathId
from crm_core import audit
from crm_core.models import ChannelAccount, Moment, Role, User, UserHandle

router = APIRouter(prefix="/moments", tags=["moments"])
MANAGE = (Role.ADMIN, Role.OPERATOR)
VIEW = (Role.ADMIN, Role.OPERATOR, Role.MANAGER)


class MomentCreate(BaseModel):
    channel_account_id: Id = Field(description="The WeCom app's channel account")
    text: str = Field(min_length=1, max_length=2000)
    link_url: str | None = Field(default=None, max_length=500, pattern=r"^https?://")
    link_title: str | None = Field(default=None, max_length=64)
    image_urls: list[Annotated[str, Field(max_length=500, pattern=r"^https?://")]] = Field(
        default_factory=list, max_length=9, description="Up to 9 pictures (JPEG or PNG, 2 MB); with a link, one: "
                                                         "its cover")
    user_ids: list[Id] = Field(default_factory=list, max_length=500, description="The reps who publish it; empty: all")
    tags: list[str] = Field(default_factory=list, max_length=20,
                            description="Customers with these WeCom corp tags see it; empty: all customers")


    @model_validator(mode="after")
    def _pictures_or_link(self) -> MomentCreate:
        if self.link_url and len(self.image_urls) > 1:
            raise ValueError("a moment carries pictures (up to 9) or one link with one picture as its cover, "
                             "not both: remove the link or keep one picture")
        return self


class MomentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    channel_account_id: int
    text: str
    link_url: str | None
    image_urls: list[str]
    senders: list[str]
    tags: list[str]
    origin: str = Field(description="hub (posted here) / wecom (posted in WeCom's console) / personal (a rep's own)")
    creator: str | None = Field(description="A rep's own post: their WeCom userid")
    status: str = Field(description="pending / making (asking WeCom) / creating (WeCom makes it) / created / failed")
    reason: str | None
    published: dict[str, bool] = Field(description="Each rep's WeCom userid: whether they published it")
    reach: dict[str, dict[str, int]] = Field(description="Each publishing rep's userid: customers who can see "
                                                         "their post, likes, comments (read hourly)")
    created_at: dt.datetime


@router.get("", response_model=list[MomentRead], responses=errors())
async def list_moments(_: User = Depends(require_role(*VIEW)),
                       session: AsyncSession = Depends(db_session)) -> list[MomentRead]:
    rows = (await session.scalars(select(Moment).order_by(Moment.id.desc()).limit(200))).all()
    return [MomentRead.model_validate(row) for row in rows]


@router.post("", response_model=MomentRead, status_code=status.HTTP_201_CREATED, responses=errors(422))
async def create_moment(body: MomentCreate, user: User = Depends(require_role(*MANAGE)),
                        ctx: ApiContext = Depends(api_context),
                        session: AsyncSession = Depends(db_session)) -> MomentRead:
    account = await session.get(ChannelAccount, body.channel_account_id)
    if account is None or account.kind != "wecom":
        raise HTTPException(422, "moments go through a WeCom app's channel account (kind wecom)")
    senders = list(dict.fromkeys((await session.scalars(select(UserHandle.external_id).where(
        UserHandle.channel_account_id == account.id, UserHandle.user_id.in_(body.user_ids))
        .order_by(UserHandle.id))).all())) if body.user_ids else []
    if body.user_ids and not senders:
        raise HTTPException(422, "none of the chosen users has a WeCom userid on this app: link their handles first")
    moment = Moment(channel_account_id=account.id, text=body.text.strip(), link_url=body.link_url,
                    link_title=body.link_title, image_urls=list(body.image_urls), senders=senders,
                    tags=[t.strip() for t in body.tags if t.strip()],
                    published={}, created_by_user_id=user.id)
    session.add(moment)
    await session.flush()
    await audit.record("moment.create", entity_type="moment", entity_id=moment.id, actor=user, db_session=session,
                       details={"senders": senders, "tags": moment.tags, "pictures": len(moment.image_urls)})
    await session.commit()
    await ctx.moments.run_once(listing=False)  # made in WeCom now; WeCom's list is the job's
    async with ctx.sessions() as fresh:
        return MomentRead.model_validate(await fresh.get(Moment, moment.id))


@router.get("/{moment_id}", response_model=MomentRead, responses=errors(404))
async def get_moment(moment_id: PathId, _: User = Depends(require_role(*VIEW)),
                     session: AsyncSession = Depends(db_session)) -> MomentRead:
    moment = await session.get(Moment, moment_id)
    if moment is None:
        raise HTTPException(404, f"no moment {moment_id}")
    return MomentRead.model_validate(moment)
