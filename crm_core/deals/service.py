"""Accounts and deals.

An account is a company; its contacts belong to it. A deal has an amount, a stage of the deal
pipeline (each stage with its probability, `DealRules`), an expected close date and the next
step. A lead converts to a deal keeping its history (the lead records the conversion); a won
deal's amount becomes an order of its lead, which moves the lead's value segment, and the
account's segment follows what its deals won; the owner's team hears of it. Every change is
audited.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core import audit, catalogues, visibility
from crm_core.db import utcnow
from crm_core.leads import service as leads
from crm_core.models import Account, AccountContact, Contact, Deal, Lead, Role, Team, User
from crm_core.people import reps
from crm_core.ports import OutboundMessage

DEFAULT_DEAL_STAGES = "qualification:10,needs_analysis:25,proposal:50,negotiation:75,won:100,lost:0"
# The default stages as people say them; a stage the company added is named in its settings.
STAGE_NAMES = {stage: catalogues.text(f"deal_stage.{stage}") for stage, _ in
               (part.split(":") for part in DEFAULT_DEAL_STAGES.split(","))}


def stage_named(words: str, rules: DealRules) -> str:
    """The stage `words` name, in either language ("商务谈判", "Negotiation", "negotiation")."""
    words = " ".join(words.split()).lower()
    for stage in rules.names:
        if words in (stage, stage.replace("_", " "), *(rules.name(stage, lang).lower() for lang in ("zh", "en"))):
            return stage
    return words
CURRENCIES = ("CNY", "USD", "EUR", "HKD", "JPY", "GBP", "SGD")


class DealRefused(ValueError):
    """A deal or account change that may not be made; the message says what to fix."""


@dataclass(frozen=True)
class DealRules:
    """The deal pipeline: stages in order, each with its probability (percent) and, for a stage
    the company added, its names for people (`labels`: Chinese, English); won and lost close."""

    stages: tuple[tuple[str, int], ...]
    labels: tuple[tuple[str, str, str], ...] = ()   # (stage, 中文名, English name)

    @classmethod
    def parse(cls, text: str) -> DealRules:
        """`stage:percent` or `stage:percent:中文名:English name`, comma-separated, in order."""
        stages, labels = [], []
        for part in (p.strip() for p in text.replace("，", ",").replace("：", ":").split(",") if p.strip()):
            name, percent, *named = (piece.strip() for piece in part.split(":"))
            name = name.lower()
            if not name or len(name) > 32 or not percent.isdigit() or not 0 <= int(percent) <= 100 \
                    or len(named) not in (0, 2) or any(not n or len(n) > 32 for n in named):
                raise ValueError(f"deal stage {part!r}: name:percent, like proposal:50 (0 to 100), or "
                                 "name:percent:中文名:English name, like demo:40:产品演示:Product demo")
            stages.append((name, int(percent)))
            if named:
                labels.append((name, named[0], named[1]))
        names = [name for name, _ in stages]
        if len(set(names)) != len(names) or not {"won", "lost"} <= set(names):
            raise ValueError("deal stages: distinct names that include won and lost")
        if dict(stages)["won"] != 100 or dict(stages)["lost"] != 0:
            raise ValueError("deal stages: won is 100 and lost is 0")
        if names[0] in ("won", "lost"):
            raise ValueError("deal stages: a new deal starts in the first stage, so it cannot be won or lost")
        return cls(tuple(stages), tuple(labels))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.stages)

    def probability(self, stage: str) -> int:
        return dict(self.stages).get(stage, 0)

    def name(self, stage: str, lang: str) -> str:
        """The stage as people say it in `lang`: the company's name for it, the default stages'
        own names, the company's name in the other language, else the stage itself."""
        named = next(({"zh": zh, "en": en} for label, zh, en in self.labels if label == stage), {})
        return named.get(lang) or STAGE_NAMES.get(stage, {}).get(lang) or next(iter(named.values()), stage)

    def names_of(self, stage: str) -> dict[str, str]:
        return {lang: self.name(stage, lang) for lang in ("zh", "en")}


def deals_visible(user: User) -> Any:
    """A rep's own deals; everyone's for the others (as leads)."""
    return Deal.owner_user_id == user.id if user.role == Role.REP else Deal.id.is_not(None)


def accounts_visible(user: User) -> Any:
    """A rep sees the accounts they own, have a deal with, or have a customer of."""
    if user.role != Role.REP:
        return Account.id.is_not(None)
    own_deal = select(Deal.account_id).where(Deal.owner_user_id == user.id, Deal.account_id.is_not(None))
    own_contact = select(AccountContact.account_id).where(AccountContact.contact_id.in_(
        visibility.contacts(user).with_only_columns(Contact.id)))
    return (Account.owner_user_id == user.id) | Account.id.in_(own_deal) | Account.id.in_(own_contact)


def _check_amount(amount: float, currency: str) -> None:
    if not 0 <= amount <= 1e12:
        raise DealRefused(f"amount {amount}: from 0 to 1,000,000,000,000")
    if currency not in CURRENCIES:
        raise DealRefused(f"currency {currency!r}: one of {', '.join(CURRENCIES)}")


def _check_products(products: list[dict[str, Any]]) -> list[dict[str, Any]]:
    checked = []
    for n, product in enumerate(products, start=1):
        name = str(product.get("name") or "").strip()
        try:
            quantity, price = float(product.get("quantity", 1)), float(product.get("price", 0))
        except (TypeError, ValueError):
            raise DealRefused(f"product {n}: quantity and price are numbers") from None
        if not name or quantity <= 0 or price < 0:
            raise DealRefused(f"product {n}: a name, a quantity above 0 and a price of 0 or more")
        checked.append({"name": name[:200], "quantity": quantity, "price": price})
    return checked


async def account_named(name: str, *, actor: User | None, db_session: AsyncSession, owner_user_id: int | None = None,
                        industry: str | None = None, region: str | None = None) -> Account:
    """The account of that name (case and spaces aside), made when new."""
    name = " ".join(name.split())
    if not name or len(name) > 200:
        raise DealRefused("account name: 1 to 200 characters")
    account = await db_session.scalar(select(Account).where(func.lower(Account.name) == name.lower()))
    if account is None:
        account = Account(name=name, owner_user_id=owner_user_id, industry=industry, region=region)
        db_session.add(account)
        await db_session.flush()
        await audit.record("account.create", entity_type="account", entity_id=account.id, actor=actor,
                           db_session=db_session, details={"name": name})
    return account


async def join(account: Account, contact_id: int, *, db_session: AsyncSession, only_if_none: bool = False) -> None:
    """The person works for `account` (from now on, instead of any other; `only_if_none`: unless
    they already work for one)."""
    link = await db_session.get(AccountContact, contact_id)
    if link is None:
        db_session.add(AccountContact(contact_id=contact_id, account_id=account.id))
        await db_session.flush()
    elif not only_if_none:
        link.account_id = account.id


async def create(*, title: str, owner: User | None, rules: DealRules, actor: User | None, db_session: AsyncSession,
                 amount: float = 0.0, currency: str = "CNY", stage: str | None = None,
                 contact_id: int | None = None, account_id: int | None = None, lead_id: int | None = None,
                 expected_close: dt.date | None = None, next_step: str | None = None,
                 products: list[dict[str, Any]] | None = None) -> Deal:
    title = " ".join(title.split())
    if not title or len(title) > 200:
        raise DealRefused("title: 1 to 200 characters, what is being sold")
    _check_amount(amount, currency)
    stage = (stage or rules.names[0]).strip().lower()
    if stage not in rules.names or stage in ("won", "lost"):
        open_stages = [s for s in rules.names if s not in ("won", "lost")]
        raise DealRefused(f"stage {stage!r}: a new deal is in one of {', '.join(open_stages)}")
    items = _check_products(products or [])
    if items and not amount:
        amount = round(sum(p["quantity"] * p["price"] for p in items), 2)
    if account_id is None and contact_id is not None:
        account_id = await db_session.scalar(select(AccountContact.account_id)
                                             .where(AccountContact.contact_id == contact_id))
    deal = Deal(title=title, owner_user_id=owner.id if owner else None, amount=amount, currency=currency, stage=stage,
                contact_id=contact_id, account_id=account_id, lead_id=lead_id, expected_close=expected_close,
                next_step=next_step, products=items)
    db_session.add(deal)
    await db_session.flush()
    await audit.record("deal.create", entity_type="deal", entity_id=deal.id, actor=actor, db_session=db_session,
                       details={"title": title, "amount": amount, "currency": currency, "stage": stage,
                                "lead_id": lead_id})
    return deal


async def convert_lead(lead: Lead, *, actor: User, rules: DealRules, db_session: AsyncSession,
                       title: str | None = None, amount: float = 0.0, currency: str = "CNY",
                       expected_close: dt.date | None = None) -> Deal:
    """A deal from the lead: the same person, owner and company (an account, made when new, the
    person joining it); the lead keeps its history and records the conversion."""
    if await db_session.scalar(select(Deal.id).where(Deal.lead_id == lead.id, Deal.status == "open")):
        raise DealRefused(f"lead {lead.id} already has an open deal: move that one on")
    contact = await db_session.get(Contact, lead.contact_id)
    account = None
    if lead.company:
        account = await account_named(lead.company, actor=actor, owner_user_id=lead.owner_user_id,
                                      industry=lead.industry, region=lead.region, db_session=db_session)
        if contact is not None:
            await join(account, contact.id, db_session=db_session, only_if_none=True)
    owner = await db_session.get(User, lead.owner_user_id) if lead.owner_user_id else actor
    person = contact.display_name if contact else None
    name = " · ".join(part for part in (lead.company, person) if part) or f"lead {lead.id}"
    deal = await create(title=title or name, owner=owner, rules=rules, actor=actor, amount=amount,
                        currency=currency, contact_id=lead.contact_id, account_id=account.id if account else None,
                        lead_id=lead.id, expected_close=expected_close, db_session=db_session)
    await leads.record(lead, "converted", db_session=db_session, actor=actor, deal_id=deal.id)
    return deal


async def move(deal: Deal, stage: str, *, actor: User, rules: DealRules, lead_rules: leads.LeadRules,
               db_session: AsyncSession, lost_reason: str | None = None) -> str:
    """To `stage`; won: the amount becomes an order of the lead (its segment moves), the account's
    segment follows, the owner's team hears; lost: with the reason. The previous stage."""
    stage = stage.strip().lower()
    if stage not in rules.names:
        raise DealRefused(f"unknown deal stage {stage!r}; stages: {', '.join(rules.names)}")
    if deal.status != "open":
        raise DealRefused(f"deal {deal.id} is {deal.status}; make a new one for new business")
    if stage == "lost" and not (lost_reason or "").strip():
        raise DealRefused("lost_reason: say why it was lost (price, timing, a competitor...)")
    previous, deal.stage = deal.stage, stage
    if stage in ("won", "lost"):
        deal.status, deal.closed_at = stage, utcnow()
    if stage == "lost":
        deal.lost_reason = (lost_reason or "").strip()
    if stage == "won":
        lead = await db_session.get(Lead, deal.lead_id) if deal.lead_id else None
        if lead is not None and deal.amount > 0:
            await leads.add_order(lead, deal.amount, rules=lead_rules, actor=actor, db_session=db_session)
        if deal.account_id is not None:
            await _account_segment(deal.account_id, lead_rules, db_session)
        await _tell_the_team(deal, db_session)
    await audit.record("deal.stage", entity_type="deal", entity_id=deal.id, actor=actor, db_session=db_session,
                       details={"previous": previous, "stage": stage, "lost_reason": deal.lost_reason})
    return previous


async def _account_segment(account_id: int, lead_rules: leads.LeadRules, session: AsyncSession) -> None:
    total, count = (await session.execute(select(func.coalesce(func.sum(Deal.amount), 0), func.count())
                                          .where(Deal.account_id == account_id, Deal.status == "won"))).one()
    account = await session.get(Account, account_id)
    account.segment = lead_rules.segment(float(total), int(count))


async def _tell_the_team(deal: Deal, session: AsyncSession) -> None:
    """A won deal to the owner's manager and teammates, in their chat apps."""
    owner = await session.get(User, deal.owner_user_id) if deal.owner_user_id else None
    if owner is None:
        return
    team_manager = (await session.scalar(select(Team.manager_user_id).where(Team.id == owner.team_id))
                    if owner.team_id else None)
    mates = set((await session.scalars(select(User.id).where(User.team_id == owner.team_id, User.is_active.is_(True))
                                       )).all()) if owner.team_id else set()
    audience = (mates | {owner.manager_user_id, team_manager}) - {None, owner.id}
    text, title = catalogues.text("deal.won"), catalogues.text("deal.won_title")
    name = owner.display_name or owner.username
    for user_id in sorted(audience):
        user = await session.get(User, user_id)
        if user is None or not user.is_active:
            continue
        lang = "en" if user.language == "en" else "zh"
        words = text[lang].format(owner=name, title=deal.title, amount=f"{deal.amount:,.0f}", currency=deal.currency)
        await reps.notify_user(user_id, OutboundMessage("", words, title=title[lang].format(owner=name)),
                               key=f"deal-won:{deal.id}", db_session=session)


async def forecast(viewer: User, rules: DealRules, *, db_session: AsyncSession) -> dict[str, Any]:
    """Open deals' amounts weighted by their stage's probability, by expected close month and by
    owner (in each currency)."""
    rows = (await db_session.execute(
        select(Deal.amount, Deal.currency, Deal.stage, Deal.expected_close, Deal.owner_user_id)
        .where(Deal.status == "open", deals_visible(viewer)))).all()
    owners = {u.id: u.display_name or u.username for u in (await db_session.scalars(
        select(User).where(User.id.in_({r[4] for r in rows if r[4]})))).all()}
    by_month: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0])
    by_owner: dict[tuple[int | None, str], list[float]] = defaultdict(lambda: [0.0, 0.0])
    for amount, currency, stage, close, owner in rows:
        weighted = amount * rules.probability(stage) / 100
        for bucket in (by_month[(close.strftime("%Y-%m") if close else "", currency)], by_owner[(owner, currency)]):
            bucket[0] += amount
            bucket[1] += weighted
    return {
        "by_month": [{"month": month or None, "currency": currency, "amount": round(a, 2), "weighted": round(w, 2)}
                     for (month, currency), (a, w) in sorted(by_month.items(), key=lambda kv: (kv[0][0] or "9999",
                                                                                                kv[0][1]))],
        "by_owner": [{"owner_user_id": owner, "owner": owners.get(owner), "currency": currency, "amount": round(a, 2),
                      "weighted": round(w, 2)}
                     for (owner, currency), (a, w) in sorted(by_owner.items(), key=lambda kv: -kv[1][1])],
    }
