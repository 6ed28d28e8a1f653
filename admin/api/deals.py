"""Deals and accounts: the pipeline board, the forecast, a lead converted to a deal, an
account with everything about it. A rep works their own deals and the accounts they are part
of; managers, operators and admins all of them. Every change is audited."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from admin.api.deps import ApiContext, api_context, db_session, require_role
from admin.api.errors import errors
from admin.api.ids import Id, PathId, QueryId
from crm_core import audit, visibility
from crm_core.contacts import naming
from crm_core.db import utcnow
from crm_core.deals import service as deals
from crm_core.deals.service import CURRENCIES, DealRefused
from crm_core.leads.service import LeadRefused
from crm_core.models import Account, AccountContact, Contact, Conversation, Deal, Lead, Role, Task, User

router = APIRouter(tags=["deals"])
EVERYONE = (Role.ADMIN, Role.OPERATOR, Role.MANAGER, Role.REP)
Currency = Annotated[str, Field(pattern="^(" + "|".join(CURRENCIES) + ")$",
                                description="One of " + ", ".join(CURRENCIES))]
CompanySize = Annotated[str, Field(pattern="^(1-10|11-50|51-200|201-1000|1001-5000|5000\\+)$",
                                   description="Employees: 1-10, 11-50, 51-200, 201-1000, 1001-5000 or 5000+")]


class Product(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    quantity: float = Field(default=1, gt=0, le=1e9)
    price: float = Field(default=0, ge=0, le=1e12)


class DealWrite(BaseModel):
    title: str = Field(min_length=1, max_length=200)
    amount: float = Field(default=0, ge=0, le=1e12, description="Unset with products: their sum")
    currency: Currency = "CNY"
    stage: str | None = Field(default=None, max_length=32, description="Unset: the pipeline's first stage")
    contact_id: Id | None = None
    account_id: Id | None = None
    owner_user_id: Id | None = Field(default=None, description="Unset: the writer")
    expected_close: dt.date | None = None
    next_step: str | None = Field(default=None, max_length=300)
    products: list[Product] = Field(default_factory=list, max_length=100)


class DealChange(BaseModel):
    title: str | None = Field(default=None, min_length=1, max_length=200)
    amount: float | None = Field(default=None, ge=0, le=1e12)
    currency: Currency | None = None
    stage: str | None = Field(default=None, max_length=32)
    lost_reason: str | None = Field(default=None, max_length=1000)
    expected_close: dt.date | None = None
    next_step: str | None = Field(default=None, max_length=300)
    owner_user_id: Id | None = None
    products: list[Product] | None = Field(default=None, max_length=100)


class DealRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    title: str
    amount: float
    currency: str
    stage: str
    stage_names: dict[str, str] = Field(default_factory=dict, description="The stage as people say it: zh, en")
    status: str
    probability: int = 0
    account_id: int | None
    contact_id: int | None
    lead_id: int | None
    owner_user_id: int | None
    owner_name: str | None = None
    contact_name: str | None = None
    account_name: str | None = None
    expected_close: dt.date | None
    next_step: str | None
    lost_reason: str | None
    products: list[dict[str, Any]]
    created_at: dt.datetime
    closed_at: dt.datetime | None


class Convert(BaseModel):
    title: str | None = Field(default=None, max_length=200)
    amount: float = Field(default=0, ge=0, le=1e12)
    currency: Currency = "CNY"
    expected_close: dt.date | None = None


class AccountWrite(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    industry: str | None = Field(default=None, max_length=100)
    region: str | None = Field(default=None, max_length=100)
    size: CompanySize | None = None
    parent_account_id: Id | None = None
    owner_user_id: Id | None = None


class AccountRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    industry: str | None
    region: str | None
    size: str | None
    parent_account_id: int | None
    owner_user_id: int | None
    segment: str
    created_at: dt.datetime


class AccountDetail(AccountRead):
    contacts: list[dict[str, Any]]
    conversations: list[dict[str, Any]]
    deals: list[DealRead]
    tasks: list[dict[str, Any]]
    subsidiaries: list[AccountRead]


def _refused(exc: Exception) -> HTTPException:
    return HTTPException(422, str(exc))


async def _reads(rows: list[Deal], rules: deals.DealRules, session: AsyncSession) -> list[DealRead]:
    owners = {u.id: u.display_name or u.username for u in (await session.scalars(
        select(User).where(User.id.in_({d.owner_user_id for d in rows if d.owner_user_id})))).all()}
    contacts = (await session.scalars(select(Contact).where(Contact.id.in_({d.contact_id for d in rows
                                                                            if d.contact_id})))).all()
    names = await naming.shown_names(contacts, db_session=session)
    accounts = dict((await session.execute(select(Account.id, Account.name).where(
        Account.id.in_({d.account_id for d in rows if d.account_id})))).all())
    return [DealRead.model_validate(d).model_copy(update={
        "probability": rules.probability(d.stage), "stage_names": rules.names_of(d.stage),
        "owner_name": owners.get(d.owner_user_id),
        "contact_name": names.get(d.contact_id), "account_name": accounts.get(d.account_id)}) for d in rows]


async def _deal(deal_id: int, user: User, session: AsyncSession) -> Deal:
    deal = await session.scalar(select(Deal).where(Deal.id == deal_id, deals.deals_visible(user)))
    if deal is None:
        raise HTTPException(404, f"no deal {deal_id}")
    return deal


async def _owner(owner_id: int | None, user: User, session: AsyncSession) -> User:
    if owner_id is None or owner_id == user.id:
        return user
    if user.role == Role.REP:
        raise HTTPException(403, "reps keep their own deals; ask your manager to give one to a colleague")
    owner = await session.get(User, owner_id)
    if owner is None or not owner.is_active:
        raise HTTPException(422, f"owner_user_id: no active user {owner_id}")
    return owner


async def _account(account_id: int, user: User, session: AsyncSession) -> Account:
    account = await session.scalar(select(Account).where(Account.id == account_id, deals.accounts_visible(user)))
    if account is None:
        raise HTTPException(404, f"no account {account_id}")
    return account


@router.get("/deals", response_model=list[DealRead], responses=errors())
async def list_deals(status_: str | None = Query(None, alias="status", pattern="^(open|won|lost)$"),
                     stage: str | None = Query(None, max_length=32), owner_user_id: QueryId = None,
                     account_id: QueryId = None, contact_id: QueryId = None,
                     limit: int = Query(500, ge=1, le=2000), user: User = Depends(require_role(*EVERYONE)),
                     ctx: ApiContext = Depends(api_context),
                     session: AsyncSession = Depends(db_session)) -> list[DealRead]:
    stmt = select(Deal).where(deals.deals_visible(user))
    for column, value in ((Deal.status, status_), (Deal.stage, stage), (Deal.owner_user_id, owner_user_id),
                          (Deal.account_id, account_id), (Deal.contact_id, contact_id)):
        if value is not None:
            stmt = stmt.where(column == value)
    rows = list((await session.scalars(stmt.order_by(Deal.id).limit(limit))).all())
    return await _reads(rows, ctx.deal_rules, session)


class Column(BaseModel):
    stage: str
    names: dict[str, str] = Field(description="The stage as people say it: zh, en")
    probability: int
    count: int
    amount: dict[str, float] = Field(description="Per currency")
    weighted: dict[str, float]
    deals: list[DealRead]


@router.get("/deals/board", response_model=list[Column], responses=errors())
async def deal_board(owner_user_id: QueryId = None, user: User = Depends(require_role(*EVERYONE)),
                     ctx: ApiContext = Depends(api_context),
                     session: AsyncSession = Depends(db_session)) -> list[Column]:
    """The kanban: a column per stage with its deals (won and lost: the last 90 days) and totals."""
    rules = ctx.deal_rules
    since = utcnow() - dt.timedelta(days=90)
    stmt = select(Deal).where(deals.deals_visible(user), (Deal.status == "open") | (Deal.closed_at >= since))
    if owner_user_id is not None:
        stmt = stmt.where(Deal.owner_user_id == owner_user_id)
    rows = await _reads(list((await session.scalars(stmt.order_by(Deal.updated_at.desc()).limit(2000))).all()),
                        rules, session)
    board = []
    for stage, percent in rules.stages:
        mine = [d for d in rows if d.stage == stage]
        amount: dict[str, float] = {}
        for d in mine:
            amount[d.currency] = round(amount.get(d.currency, 0) + d.amount, 2)
        board.append(Column(stage=stage, names=rules.names_of(stage), probability=percent, count=len(mine),
                            amount=amount,
                            weighted={c: round(a * percent / 100, 2) for c, a in amount.items()}, deals=mine))
    return board


@router.get("/deals/forecast", responses=errors())
async def deal_forecast(user: User = Depends(require_role(*EVERYONE)), ctx: ApiContext = Depends(api_context),
                        session: AsyncSession = Depends(db_session)) -> dict[str, Any]:
    """Open deals weighted by their stage's probability: by expected close month, by owner."""
    return await deals.forecast(user, ctx.deal_rules, db_session=session)


@router.post("/deals", response_model=DealRead, status_code=status.HTTP_201_CREATED, responses=errors(403, 404, 422))
async def create_deal(body: DealWrite, user: User = Depends(require_role(*EVERYONE)),
                      ctx: ApiContext = Depends(api_context), session: AsyncSession = Depends(db_session)) -> DealRead:
    owner = await _owner(body.owner_user_id, user, session)
    if body.contact_id is not None and not await visibility.may_see_contact(user, body.contact_id, db_session=session):
        raise HTTPException(404, f"contact_id: no contact {body.contact_id}")
    if body.account_id is not None:
        await _account(body.account_id, user, session)
    try:
        deal = await deals.create(title=body.title, owner=owner, rules=ctx.deal_rules, actor=user, amount=body.amount,
                                  currency=body.currency, stage=body.stage, contact_id=body.contact_id,
                                  account_id=body.account_id, expected_close=body.expected_close,
                                  next_step=body.next_step, products=[p.model_dump() for p in body.products],
                                  db_session=session)
    except DealRefused as exc:
        raise _refused(exc) from None
    await session.commit()
    return (await _reads([deal], ctx.deal_rules, session))[0]


@router.post("/leads/{lead_id}/deal", response_model=DealRead, status_code=status.HTTP_201_CREATED,
             responses=errors(404, 422))
async def convert_lead(lead_id: PathId, body: Convert, user: User = Depends(require_role(*EVERYONE)),
                       ctx: ApiContext = Depends(api_context), session: AsyncSession = Depends(db_session)) -> DealRead:
    """The lead becomes a deal (its company an account); the lead keeps its history."""
    lead = await session.get(Lead, lead_id)
    if lead is None or not visibility.may_see_lead(user, lead):
        raise HTTPException(404, f"lead {lead_id} not found")
    try:
        deal = await deals.convert_lead(lead, actor=user, rules=ctx.deal_rules, title=body.title, amount=body.amount,
                                        currency=body.currency, expected_close=body.expected_close,
                                        db_session=session)
    except DealRefused as exc:
        raise _refused(exc) from None
    await session.commit()
    return (await _reads([deal], ctx.deal_rules, session))[0]


@router.get("/deals/{deal_id}", response_model=DealRead, responses=errors(404))
async def get_deal(deal_id: PathId, user: User = Depends(require_role(*EVERYONE)),
                   ctx: ApiContext = Depends(api_context), session: AsyncSession = Depends(db_session)) -> DealRead:
    return (await _reads([await _deal(deal_id, user, session)], ctx.deal_rules, session))[0]


@router.patch("/deals/{deal_id}", response_model=DealRead, responses=errors(403, 404, 422))
async def change_deal(body: DealChange, deal_id: PathId, user: User = Depends(require_role(*EVERYONE)),
                      ctx: ApiContext = Depends(api_context), session: AsyncSession = Depends(db_session)) -> DealRead:
    deal = await _deal(deal_id, user, session)
    changes: dict[str, Any] = {}
    try:
        if deal.status != "open" and body.model_dump(exclude_unset=True, exclude={"stage"}):
            raise DealRefused(f"deal {deal.id} is {deal.status}: it is kept as it closed")
        if body.title is not None and not body.title.strip():
            raise DealRefused("title: 1 to 200 characters, what is being sold")
        for name in ("title", "amount", "currency", "expected_close", "next_step"):
            value = getattr(body, name)
            if name in body.model_fields_set and value is not None and value != getattr(deal, name):
                setattr(deal, name, value)
                changes[name] = value.isoformat() if isinstance(value, dt.date) else value
        if body.products is not None:
            deal.products = changes["products"] = [p.model_dump() for p in body.products]
        if body.owner_user_id is not None and body.owner_user_id != deal.owner_user_id:
            deal.owner_user_id = changes["owner_user_id"] = (await _owner(body.owner_user_id, user, session)).id
        if changes:
            await audit.record("deal.update", entity_type="deal", entity_id=deal.id, actor=user, db_session=session,
                               details=changes)
        if body.stage is not None and body.stage.strip().lower() != deal.stage:
            await deals.move(deal, body.stage, actor=user, rules=ctx.deal_rules, lead_rules=ctx.lead_rules,
                             lost_reason=body.lost_reason, db_session=session)
    except (DealRefused, LeadRefused) as exc:
        raise _refused(exc) from None
    await session.commit()
    if deal.status == "won":
        ctx.on_enqueued()  # the team's news
    return (await _reads([deal], ctx.deal_rules, session))[0]


# ---- accounts ---------------------------------------------------------------------------------

@router.get("/accounts", response_model=list[AccountRead], responses=errors())
async def list_accounts(q: str | None = Query(None, max_length=100), user: User = Depends(require_role(*EVERYONE)),
                        session: AsyncSession = Depends(db_session)) -> list[AccountRead]:
    stmt = select(Account).where(deals.accounts_visible(user))
    if q:
        stmt = stmt.where(func.lower(Account.name).contains(q.strip().lower()))
    return [AccountRead.model_validate(a) for a in (await session.scalars(stmt.order_by(Account.name)
                                                                           .limit(500))).all()]


@router.post("/accounts", response_model=AccountRead, status_code=status.HTTP_201_CREATED,
             responses=errors(404, 409, 422))
async def create_account(body: AccountWrite, user: User = Depends(require_role(*EVERYONE)),
                         session: AsyncSession = Depends(db_session)) -> AccountRead:
    name = " ".join(body.name.split())
    taken = await session.scalar(select(Account.id).where(func.lower(Account.name) == name.lower()))
    if taken is not None:
        raise HTTPException(409, f"account {taken} is already called {name!r}: use it")
    if body.parent_account_id is not None:
        await _account(body.parent_account_id, user, session)
    owner = await _owner(body.owner_user_id, user, session)
    account = Account(name=name, industry=body.industry, region=body.region, size=body.size,
                      parent_account_id=body.parent_account_id, owner_user_id=owner.id)
    session.add(account)
    await session.flush()
    await audit.record("account.create", entity_type="account", entity_id=account.id, actor=user,
                       db_session=session, details={"name": name})
    await session.commit()
    return AccountRead.model_validate(account)


class AccountChange(BaseModel):
    industry: str | None = Field(default=None, max_length=100)
    region: str | None = Field(default=None, max_length=100)
    size: CompanySize | None = None
    parent_account_id: Id | None = None
    owner_user_id: Id | None = None
    add_contact_ids: list[Id] = Field(default_factory=list, max_length=500,
                                      description="Contacts who work for it (each one the user may read)")


@router.patch("/accounts/{account_id}", response_model=AccountRead, responses=errors(403, 404, 422))
async def change_account(body: AccountChange, account_id: PathId, user: User = Depends(require_role(*EVERYONE)),
                         session: AsyncSession = Depends(db_session)) -> AccountRead:
    account = await _account(account_id, user, session)
    changes: dict[str, Any] = {}
    for name in ("industry", "region", "size"):
        if name in body.model_fields_set:
            setattr(account, name, getattr(body, name))
            changes[name] = getattr(body, name)
    if body.parent_account_id is not None:
        parent = await _account(body.parent_account_id, user, session)
        seen, up = {account.id}, parent
        while up is not None:
            if up.id in seen:
                raise HTTPException(422, "parent_account_id: that would make the account its own parent")
            seen.add(up.id)
            up = await session.get(Account, up.parent_account_id) if up.parent_account_id else None
        account.parent_account_id = changes["parent_account_id"] = parent.id
    if body.owner_user_id is not None:
        account.owner_user_id = changes["owner_user_id"] = (await _owner(body.owner_user_id, user, session)).id
    for contact_id in body.add_contact_ids:
        if not await visibility.may_see_contact(user, contact_id, db_session=session):
            raise HTTPException(404, f"add_contact_ids: no contact {contact_id}")
        await deals.join(account, contact_id, db_session=session)
    if body.add_contact_ids:
        changes["add_contact_ids"] = body.add_contact_ids
    await audit.record("account.update", entity_type="account", entity_id=account.id, actor=user, db_session=session,
                       details=changes)
    await session.commit()
    return AccountRead.model_validate(account)


@router.get("/accounts/{account_id}", response_model=AccountDetail, responses=errors(404))
async def get_account(account_id: PathId, user: User = Depends(require_role(*EVERYONE)),
                      ctx: ApiContext = Depends(api_context),
                      session: AsyncSession = Depends(db_session)) -> AccountDetail:
    """Everything about the company, across channels: its contacts (those the user may read),
    their conversations, the deals, the tasks, its subsidiaries."""
    account = await _account(account_id, user, session)
    members = select(AccountContact.contact_id).where(AccountContact.account_id == account.id)
    contacts = (await session.scalars(visibility.contacts(user).where(Contact.id.in_(members))
                                      .order_by(Contact.id))).all()
    names = await naming.shown_names(contacts, db_session=session)
    ids = [c.id for c in contacts]
    conversations = (await session.scalars(visibility.conversations(user).where(Conversation.contact_id.in_(ids))
                                           .order_by(Conversation.last_message_at.desc()))).all()
    found = list((await session.scalars(select(Deal).where(deals.deals_visible(user), Deal.account_id == account.id)
                                        .order_by(Deal.id))).all())
    task_rows = (await session.scalars(select(Task).where(visibility.tasks(user), Task.contact_id.in_(ids))
                                       .order_by(Task.due_at))).all()
    children = (await session.scalars(select(Account).where(Account.parent_account_id == account.id,
                                                            deals.accounts_visible(user)))).all()
    return AccountDetail(
        **AccountRead.model_validate(account).model_dump(),
        contacts=[{"id": c.id, "name": names[c.id], "stage": c.stage} for c in contacts],
        conversations=[{"id": c.id, "contact_id": c.contact_id, "status": c.status.value,
                        "last_message_at": c.last_message_at} for c in conversations],
        deals=await _reads(found, ctx.deal_rules, session),
        tasks=[{"id": t.id, "title": t.title, "due_at": t.due_at, "done_at": t.done_at, "contact_id": t.contact_id}
               for t in task_rows],
        subsidiaries=[AccountRead.model_validate(a) for a in children])
