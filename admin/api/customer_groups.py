"""WeCom customer groups (客户群) as WeCom describes them: owner, name, members (customers linked to
their contacts, colleagues), how each joined. Supervisors read them; admins and operators may
have every group read again from WeCom now."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from admin.api.contact_ways import WelcomeCard
from admin.api.deps import ApiContext, api_context, db_session, require_role
from admin.api.errors import errors
from admin.api.ids import Id, PathId
from channels.tencent_client import ApiError, ApiUnavailable
from crm_core import audit
from crm_core.models import ChannelAccount, CustomerGroup, CustomerGroupMember, GroupJoinWay, Role, User

router = APIRouter(prefix="/customer-groups", tags=["customer groups"])
VIEW = (Role.ADMIN, Role.OPERATOR, Role.MANAGER)


class GroupRead(BaseModel):
    id: int
    channel_account_id: int
    chat_id: str
    name: str
    owner_userid: str
    created_at: dt.datetime | None
    dismissed_at: dt.datetime | None
    customers: int
    staff: int


class GroupDetail(GroupRead):
    notice: str | None
    members: list[dict[str, Any]]


async def _counts(session: AsyncSession, ids: list[int]) -> dict[int, dict[bool, int]]:
    rows = await session.execute(select(CustomerGroupMember.group_id, CustomerGroupMember.is_customer, func.count())
                                 .where(CustomerGroupMember.group_id.in_(ids))
                                 .group_by(CustomerGroupMember.group_id, CustomerGroupMember.is_customer))
    counts: dict[int, dict[bool, int]] = {i: {True: 0, False: 0} for i in ids}
    for group_id, is_customer, count in rows.all():
        counts[group_id][bool(is_customer)] = count
    return counts


def _read(group: CustomerGroup, counts: dict[bool, int]) -> dict[str, Any]:
    return {"id": group.id, "channel_account_id": group.channel_account_id, "chat_id": group.chat_id,
            "name": group.name, "owner_userid": group.owner_userid, "created_at": group.created_at,
            "dismissed_at": group.dismissed_at, "customers": counts[True], "staff": counts[False]}


@router.get("", response_model=list[GroupRead], responses=errors())
async def list_groups(_: User = Depends(require_role(*VIEW)),
                      session: AsyncSession = Depends(db_session)) -> list[GroupRead]:
    groups = (await session.scalars(select(CustomerGroup).order_by(CustomerGroup.dismissed_at.is_not(None),
                                                                  CustomerGroup.id))).all()
    counts = await _counts(session, [g.id for g in groups])
    return [GroupRead(**_read(g, counts[g.id])) for g in groups]


@router.post("/sync", responses=errors())
async def sync_groups(_: User = Depends(require_role(Role.ADMIN, Role.OPERATOR)),
                      ctx: ApiContext = Depends(api_context)) -> dict[str, int]:
    """Read every group of every WeCom app again now; how many were read."""
    return {"read": await ctx.groups.run_once(everything=True)}


class JoinWayWrite(BaseModel):
    channel_account_id: Id = Field(description="The WeCom app's channel account")
    name: str = Field(min_length=1, max_length=30, description="What the code is for (WeCom's remark)")
    state: str = Field(min_length=1, max_length=30, pattern=r"^[0-9A-Za-z_-]+$",
                       description="Names the code on the members who join through it")
    group_ids: list[Id] = Field(min_length=1, max_length=5, description="The groups, in the order they fill")
    auto_create_room: bool = Field(default=True, description="When all are full, WeCom makes the next group")
    room_base_name: str | None = Field(default=None, max_length=40)
    welcome: str | None = Field(default=None, max_length=1000, description="The group welcome its owners use")
    welcome_card: WelcomeCard = Field(default_factory=WelcomeCard,
                                      description="Beside its words: a picture, a link card or a mini-program card")


class JoinWayRead(BaseModel):
    id: int
    channel_account_id: int
    name: str
    state: str
    chat_ids: list[str]
    auto_create_room: bool
    qr_code: str | None
    welcome: str | None
    welcome_card: dict[str, Any]
    welcome_template_id: str | None
    joined: int = Field(description="Members in the groups who came through this code now")


async def _join_way(way_id: int, session: AsyncSession) -> GroupJoinWay:
    way = await session.get(GroupJoinWay, way_id)
    if way is None or not way.is_active:
        raise HTTPException(404, f"no group QR code {way_id}")
    return way


async def _join_read(way: GroupJoinWay, session: AsyncSession) -> JoinWayRead:
    joined = await session.scalar(select(func.count()).select_from(CustomerGroupMember)
                                  .join(CustomerGroup, CustomerGroup.id == CustomerGroupMember.group_id)
                                  .where(CustomerGroup.channel_account_id == way.channel_account_id,
                                         CustomerGroupMember.state == way.state)) or 0
    return JoinWayRead(id=way.id, channel_account_id=way.channel_account_id, name=way.name, state=way.state,
                       chat_ids=way.chat_ids, auto_create_room=way.auto_create_room, qr_code=way.qr_code,
                       welcome=way.welcome, welcome_card=way.welcome_card or {},
                       welcome_template_id=way.welcome_template_id, joined=joined)


async def _apply_join_way(way: GroupJoinWay, body: JoinWayWrite, ctx: ApiContext, session: AsyncSession) -> None:
    groups = {g.id: g for g in (await session.scalars(select(CustomerGroup).where(
        CustomerGroup.id.in_(body.group_ids)))).all()}
    wrong = [i for i in body.group_ids if i not in groups or groups[i].channel_account_id != body.channel_account_id
             or groups[i].dismissed_at is not None]
    if wrong:
        raise HTTPException(422, f"groups {wrong} are not live customer groups of this WeCom app")
    taken = await session.scalar(select(GroupJoinWay.id).where(
        GroupJoinWay.channel_account_id == body.channel_account_id, GroupJoinWay.state == body.state,
        GroupJoinWay.id != (way.id or 0), GroupJoinWay.is_active.is_(True)))
    if taken is not None:
        raise HTTPException(422, f"state {body.state!r} is used by group QR code {taken}: choose another")
    way.channel_account_id, way.name, way.state = body.channel_account_id, body.name.strip(), body.state
    way.chat_ids = [groups[i].chat_id for i in body.group_ids]
    way.auto_create_room, way.room_base_name = body.auto_create_room, body.room_base_name
    way.welcome = (body.welcome or "").strip() or None
    way.welcome_card = body.welcome_card.model_dump(exclude_none=True)
    if way.welcome_card and not way.welcome:
        raise HTTPException(422, "a group welcome's picture or card goes with its words: write the welcome too")
    try:
        await ctx.groups.save_join_way(way, db_session=session)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None


@router.get("/statistics", responses=errors(404))
async def group_statistics(account_id: int = Query(ge=1, le=2**63 - 1), days: int = Query(default=14, ge=1, le=30),
                           owner: list[str] = Query(default_factory=list,
                                                    description="WeCom userids; none: every owner"),
                           _: User = Depends(require_role(*VIEW)), ctx: ApiContext = Depends(api_context),
                           session: AsyncSession = Depends(db_session)) -> dict[str, Any]:
    """Per day (China time) of the owners' groups, as WeCom counts them
    (groupchat/statistic_group_by_day): groups and members in all, new members, messages; and
    `left`: members the hub saw leave that day."""
    account = await session.get(ChannelAccount, account_id)
    if account is None or account.kind != "wecom":
        raise HTTPException(404, f"no WeCom app's channel account {account_id}")
    owners = owner or list((await session.scalars(select(CustomerGroup.owner_userid).distinct().where(
        CustomerGroup.channel_account_id == account_id, CustomerGroup.owner_userid != ""))).all())
    if not owners:
        return {"owners": [], "days": []}
    try:
        found = await ctx.groups.statistics(account_id, sorted(owners), days)
    except (ApiError, ApiUnavailable) as exc:
        raise HTTPException(400, f"WeCom did not give the statistics: {exc}") from None
    return {"owners": sorted(owners), "days": found}


@router.get("/join-ways", response_model=list[JoinWayRead], responses=errors())
async def list_join_ways(_: User = Depends(require_role(*VIEW)),
                         session: AsyncSession = Depends(db_session)) -> list[JoinWayRead]:
    ways = (await session.scalars(select(GroupJoinWay).where(GroupJoinWay.is_active.is_(True))
                                  .order_by(GroupJoinWay.id))).all()
    return [await _join_read(way, session) for way in ways]


@router.post("/join-ways", response_model=JoinWayRead, status_code=201, responses=errors(422))
async def create_join_way(body: JoinWayWrite, user: User = Depends(require_role(Role.ADMIN, Role.OPERATOR)),
                          ctx: ApiContext = Depends(api_context),
                          session: AsyncSession = Depends(db_session)) -> JoinWayRead:
    """A group QR code made in WeCom (groupchat/add_join_way) with its groups and welcome."""
    way = GroupJoinWay(chat_ids=[])
    await _apply_join_way(way, body, ctx, session)
    session.add(way)
    await session.flush()
    await audit.record("group_join_way.create", entity_type="group_join_way", entity_id=way.id, actor=user,
                       db_session=session, details={"name": way.name, "state": way.state, "chats": way.chat_ids})
    await session.commit()
    return await _join_read(way, session)


@router.put("/join-ways/{way_id}", response_model=JoinWayRead, responses=errors(404, 422))
async def update_join_way(way_id: PathId, body: JoinWayWrite,
                          user: User = Depends(require_role(Role.ADMIN, Role.OPERATOR)),
                          ctx: ApiContext = Depends(api_context),
                          session: AsyncSession = Depends(db_session)) -> JoinWayRead:
    way = await _join_way(way_id, session)
    if body.channel_account_id != way.channel_account_id:
        raise HTTPException(422, "a group QR code stays on its WeCom app: make a new one for another app")
    await _apply_join_way(way, body, ctx, session)
    await audit.record("group_join_way.update", entity_type="group_join_way", entity_id=way.id, actor=user,
                       db_session=session, details={"name": way.name, "state": way.state, "chats": way.chat_ids})
    await session.commit()
    return await _join_read(way, session)


@router.delete("/join-ways/{way_id}", status_code=204, responses=errors(404, 422))
async def delete_join_way(way_id: PathId, user: User = Depends(require_role(Role.ADMIN, Role.OPERATOR)),
                          ctx: ApiContext = Depends(api_context),
                          session: AsyncSession = Depends(db_session)) -> None:
    way = await _join_way(way_id, session)
    try:
        await ctx.groups.delete_join_way(way, db_session=session)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    way.is_active = False
    await audit.record("group_join_way.delete", entity_type="group_join_way", entity_id=way.id, actor=user,
                       db_session=session, details={"name": way.name})
    await session.commit()


@router.get("/{group_id}", response_model=GroupDetail, responses=errors(404))
async def get_group(group_id: PathId, _: User = Depends(require_role(*VIEW)),
                    session: AsyncSession = Depends(db_session)) -> GroupDetail:
    group = await session.get(CustomerGroup, group_id)
    if group is None:
        raise HTTPException(404, f"no customer group {group_id}")
    members = (await session.scalars(select(CustomerGroupMember).where(CustomerGroupMember.group_id == group.id)
                                     .order_by(CustomerGroupMember.is_customer, CustomerGroupMember.id))).all()
    return GroupDetail(**_read(group, (await _counts(session, [group.id]))[group.id]), notice=group.notice,
                       members=[{"userid": m.userid, "is_customer": m.is_customer, "contact_id": m.contact_id,
                                 "name": m.name, "joined_at": m.joined_at, "join_scene": m.join_scene}
                                for m in members])
