"""WeCom customer transfers (在职 / 离职继承): how each customer's move to another rep stands, and
the customers of people who already left WeCom, to hand to a rep in one action.

Admins and managers use them (as they hand a rep's conversations over).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from admin.api.deps import ApiContext, api_context, db_session, require_role
from admin.api.errors import errors
from admin.api.ids import Id
from channels.tencent_client import ApiError, ApiUnavailable
from crm_core.contacts.naming import shown_names
from crm_core.models import ChannelAccount, Contact, CustomerGroup, CustomerTransfer, Identity, Role, User
from crm_core.people import succession

router = APIRouter(prefix="/customer-transfers", tags=["customer transfers"])
SUPERVISORS = (Role.ADMIN, Role.MANAGER)


class TransferRead(BaseModel):
    id: int
    channel_account_id: int
    contact_id: int | None
    contact_name: str | None
    external_userid: str
    handover_userid: str
    takeover_userid: str
    resigned: bool
    is_group: bool = Field(description="A customer group (its chat id in external_userid; its name as contact_name)")
    status: str = Field(description="pending / asking / waiting (for the customer) / done / refused / over_limit / "
                                    "failed")
    reason: str | None = Field(description="In English; `errcode` is WeCom's where it refused the customer")
    errcode: int | None
    created_at: dt.datetime
    updated_at: dt.datetime


class UnassignedRead(BaseModel):
    handover_userid: str
    external_userid: str
    dimission_time: int | None = None
    contact_id: int | None = None
    contact_name: str | None = None


class UnassignedHandover(BaseModel):
    channel_account_id: Id
    to_user_id: Id = Field(description="The rep who takes them (with a WeCom userid on the app)")
    external_userids: list[str] = Field(default_factory=list, max_length=10000,
                                        description="Which of the unassigned customers; empty: all of them")


async def _wecom_app(account_id: int, session: AsyncSession) -> ChannelAccount:
    account = await session.get(ChannelAccount, account_id)
    if account is None or account.kind != "wecom":
        raise HTTPException(404, f"no WeCom app's channel account {account_id}")
    return account


@router.get("", response_model=list[TransferRead], responses=errors())
async def list_transfers(status: str | None = Query(default=None, pattern="^(pending|waiting|done|refused|"
                                                                          "over_limit|failed)$"),
                         limit: int = Query(default=200, ge=1, le=1000),
                         _: User = Depends(require_role(*SUPERVISORS)),
                         session: AsyncSession = Depends(db_session)) -> list[TransferRead]:
    """The latest transfers, newest first, with each customer's name."""
    query = select(CustomerTransfer).order_by(CustomerTransfer.id.desc()).limit(limit)
    if status:
        query = query.where(CustomerTransfer.status == status)
    return await _reads((await session.scalars(query)).all(), session)


@router.get("/unassigned", response_model=list[UnassignedRead], responses=errors(404))
async def unassigned(account_id: int = Query(ge=1, le=2**63 - 1), _: User = Depends(require_role(*SUPERVISORS)),
                     ctx: ApiContext = Depends(api_context),
                     session: AsyncSession = Depends(db_session)) -> list[UnassignedRead]:
    """Customers of people who left the company, not handed to anyone yet (WeCom's own list)."""
    await _wecom_app(account_id, session)
    try:
        found = await ctx.succession.unassigned(account_id)
    except (ApiError, ApiUnavailable) as exc:
        raise HTTPException(400, f"WeCom did not give the list: {exc}") from None
    return await _named(account_id, found, session)


@router.post("/unassigned", response_model=list[TransferRead], status_code=201, responses=errors(404, 422))
async def hand_unassigned(body: UnassignedHandover, actor: User = Depends(require_role(*SUPERVISORS)),
                          ctx: ApiContext = Depends(api_context),
                          session: AsyncSession = Depends(db_session)) -> list[TransferRead]:
    """离职继承: the chosen (or all) customers of people who left go to one rep, in WeCom and in the hub."""
    await _wecom_app(body.channel_account_id, session)
    heir = await session.get(User, body.to_user_id)
    if heir is None:
        raise HTTPException(404, f"no user {body.to_user_id}")
    try:
        found = await ctx.succession.unassigned(body.channel_account_id)
    except (ApiError, ApiUnavailable) as exc:
        raise HTTPException(400, f"WeCom did not give the list: {exc}") from None
    wanted = set(body.external_userids)
    unknown = wanted - {f["external_userid"] for f in found}
    if unknown:
        raise HTTPException(422, f"not in WeCom's unassigned list: {', '.join(sorted(unknown)[:5])}")
    chosen = [(f["handover_userid"], f["external_userid"]) for f in found
              if not wanted or f["external_userid"] in wanted]
    try:
        rows = await succession.plan_resigned(body.channel_account_id, chosen, heir, db_session=session)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    await succession.assign_in_hub(rows, heir, actor, db_session=session)
    await session.commit()
    ctx.on_enqueued()
    await ctx.succession.run_once()
    async with ctx.sessions() as fresh:  # as WeCom answered, asked in their own transaction
        return await _reads((await fresh.scalars(select(CustomerTransfer).where(
            CustomerTransfer.id.in_([r.id for r in rows])).order_by(CustomerTransfer.id))).all(), fresh)


async def _reads(rows: Sequence[CustomerTransfer], session: AsyncSession) -> list[TransferRead]:
    contacts = (await session.scalars(select(Contact).where(
        Contact.id.in_({r.contact_id for r in rows if r.contact_id})))).all()
    names = await shown_names(contacts, db_session=session)
    chats = [r.external_userid for r in rows if r.is_group]
    groups = dict((await session.execute(select(CustomerGroup.chat_id, CustomerGroup.name).where(
        CustomerGroup.chat_id.in_(chats)))).all()) if chats else {}
    return [TransferRead(**{k: getattr(r, k) for k in TransferRead.model_fields if k != "contact_name"},
                         contact_name=groups.get(r.external_userid) if r.is_group
                         else names.get(r.contact_id) if r.contact_id else None) for r in rows]


async def _named(account_id: int, found: list[dict], session: AsyncSession) -> list[UnassignedRead]:
    contacts = dict((await session.execute(select(Identity.external_id, Identity.contact_id).where(
        Identity.channel_account_id == account_id,
        Identity.external_id.in_([f["external_userid"] for f in found])))).all()) if found else {}
    rows = (await session.scalars(select(Contact).where(Contact.id.in_(set(contacts.values()))))).all()
    names = await shown_names(rows, db_session=session)
    return [UnassignedRead(**f, contact_id=contacts.get(f["external_userid"]),
                           contact_name=names.get(contacts.get(f["external_userid"], 0))) for f in found]
