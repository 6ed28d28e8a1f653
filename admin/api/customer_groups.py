"""WeCom customer groups (客户群) as WeCom describes them: owner, name, members (customers linked to
their contacts, colleagues), how each joined. Supervisors read them; admins and operators may
have every group read again from WeCom now."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from admin.api.deps import ApiContext, api_context, db_session, require_role
from admin.api.errors import errors
from admin.api.ids import PathId
from crm_core.models import CustomerGroup, CustomerGroupMember, Role, User

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
