"""One-off WeCom mass sends (群发) to customers: one task per rep, confirmed by the rep in WeCom, and
what WeCom says became of it (crm_core/campaigns/mass_sends.py). Admins and operators send;
managers read the results."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, status
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from admin.api.deps import ApiContext, api_context, db_session, require_role
from admin.api.errors import errors
from admin.api.ids import Id, PathId
from crm_core import audit
from crm_core.campaigns import mass_sends
from crm_core.contacts.naming import shown_names
from crm_core.db import utcnow
from crm_core.models import ChannelAccount, Contact, CustomerGroup, Identity, MassSend, MassSendTask, Role, User

router = APIRouter(prefix="/mass-sends", tags=["mass sends"])
MANAGE = (Role.ADMIN, Role.OPERATOR)
VIEW = (Role.ADMIN, Role.OPERATOR, Role.MANAGER)


class MassSendCreate(BaseModel):
    channel_account_id: Id = Field(description="The WeCom app's channel account")
    name: str = Field(min_length=1, max_length=100)
    text: str = Field(min_length=1, max_length=4000, description="What the customers read")
    to_groups: bool = Field(default=False, description="To the chosen reps' customer groups instead of customers")
    tags: list[str] = Field(default_factory=list, max_length=20, description="Customers with every one of these")
    user_ids: list[Id] = Field(default_factory=list, max_length=500, description="These reps' customers; empty: all")


class MassSendRead(BaseModel):
    id: int
    channel_account_id: int
    chat_type: str = Field(description="single: to customers; group: to customer groups")
    name: str
    text: str
    origin: str = Field(description="hub (sent from here) / wecom (made in WeCom's console) / personal (a rep's own)")
    creator: str | None = Field(description="Who made it in WeCom (their userid), when WeCom says")
    created_at: dt.datetime
    reps: int
    reps_sent: int
    customers: dict[str, int] = Field(description="By what WeCom says: waiting, sent, not_contact, over_limit")


class MassSendDetail(MassSendRead):
    tasks: list[dict[str, Any]]
    skipped: list[dict[str, Any]]


async def _tasks(session: AsyncSession, send_ids: list[int]) -> dict[int, list[MassSendTask]]:
    rows = (await session.scalars(select(MassSendTask).where(MassSendTask.mass_send_id.in_(send_ids))
                                  .order_by(MassSendTask.id))).all()
    found: dict[int, list[MassSendTask]] = {i: [] for i in send_ids}
    for row in rows:
        found[row.mass_send_id].append(row)
    return found


def _read(send: MassSend, tasks: list[MassSendTask]) -> MassSendRead:
    return MassSendRead(id=send.id, channel_account_id=send.channel_account_id, chat_type=send.chat_type,
                        name=send.name, text=send.text, origin=send.origin, creator=send.creator,
                        created_at=send.created_at, **mass_sends.summary(send, tasks))


@router.get("", response_model=list[MassSendRead], responses=errors())
async def list_mass_sends(_: User = Depends(require_role(*VIEW)),
                          session: AsyncSession = Depends(db_session)) -> list[MassSendRead]:
    sends = (await session.scalars(select(MassSend).order_by(MassSend.id.desc()).limit(200))).all()
    tasks = await _tasks(session, [s.id for s in sends])
    return [_read(send, tasks[send.id]) for send in sends]


@router.post("", response_model=MassSendDetail, status_code=status.HTTP_201_CREATED, responses=errors(422))
async def create_mass_send(body: MassSendCreate, user: User = Depends(require_role(*MANAGE)),
                           ctx: ApiContext = Depends(api_context),
                           session: AsyncSession = Depends(db_session)) -> MassSendDetail:
    """Tasks made in WeCom at once, one per rep whose customers match; each rep confirms theirs."""
    try:
        send = await mass_sends.plan(await session.get(ChannelAccount, body.channel_account_id), body.name,
                                     body.text, [t.strip() for t in body.tags if t.strip()], body.user_ids,
                                     actor=user, db_session=session, now=utcnow(), groups=body.to_groups)
    except mass_sends.MassSendInvalid as exc:
        raise HTTPException(422, str(exc)) from None
    await audit.record("mass_send.create", entity_type="mass_send", entity_id=send.id, actor=user,
                       db_session=session, details={"name": send.name, "audience": send.audience,
                                                    "skipped": len(send.skipped)})
    await session.commit()
    await ctx.mass_sends.run_once(listing=False)  # its tasks made now; WeCom's list is the job's
    async with ctx.sessions() as fresh:  # as WeCom answered, in its own transaction
        return await _detail(send.id, fresh)


@router.get("/{send_id}", response_model=MassSendDetail, responses=errors(404))
async def get_mass_send(send_id: PathId, _: User = Depends(require_role(*VIEW)),
                        session: AsyncSession = Depends(db_session)) -> MassSendDetail:
    return await _detail(send_id, session)


async def _detail(send_id: int, session: AsyncSession) -> MassSendDetail:
    send = await session.get(MassSend, send_id)
    if send is None:
        raise HTTPException(404, f"no mass send {send_id}")
    tasks = (await _tasks(session, [send.id]))[send.id]
    externals = {e for task in tasks for e in task.targets} | set(send.skipped or {})
    contact_of = dict((await session.execute(select(Identity.external_id, Identity.contact_id).where(
        Identity.channel_account_id == send.channel_account_id, Identity.external_id.in_(externals))))
        .all()) if externals else {}
    contacts = (await session.scalars(select(Contact).where(Contact.id.in_(set(contact_of.values()))))).all()
    names = await shown_names(contacts, db_session=session)
    group_names = dict((await session.execute(select(CustomerGroup.chat_id, CustomerGroup.name).where(
        CustomerGroup.channel_account_id == send.channel_account_id, CustomerGroup.chat_id.in_(externals))))
        .all()) if send.chat_type == "group" and externals else {}
    users = {u.id: u for u in (await session.scalars(select(User).where(
        User.id.in_({t.user_id for t in tasks if t.user_id})))).all()}

    def customer(external: str, state: str) -> dict[str, Any]:
        return {"external_userid": external, "contact_id": contact_of.get(external),
                "name": group_names.get(external) or names.get(contact_of.get(external, 0)) or external,
                "state": state}
    return MassSendDetail(
        **_read(send, tasks).model_dump(),
        tasks=[{"id": t.id, "user_id": t.user_id, "rep": (users[t.user_id].display_name or users[t.user_id].username)
                if t.user_id in users else t.sender_userid, "sender_userid": t.sender_userid, "status": t.status,
                "reason": t.reason, "customers": [customer(e, mass_sends.TARGET_STATES.get(s, "waiting"))
                                                  for e, s in t.targets.items()]} for t in tasks],
        skipped=[customer(e, why) for e, why in (send.skipped or {}).items()])
