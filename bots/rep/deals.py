"""A rep's deals from their chat app: `/deal` lists the open ones; `/deal D` shows one as a card
with buttons (on to the next stage, won, lost: then a button per common reason);
`/deal D stage negotiation`, `/deal D amount 50000`, `/deal D won`, `/deal D lost 价格太高` move
one on (`/商机` in Chinese)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from sqlalchemy import select

from bots.rep.texts import say
from crm_core.deals import service as deals
from crm_core.deals.service import DealRefused
from crm_core.leads.service import LeadRefused
from crm_core.models import Deal
from crm_core.ports import Button

if TYPE_CHECKING:
    from bots.rep.workspace import Session

_ACTION = re.compile(r"^[Dd#]?(\d+)\s+(\S+)\s*(.*)$", re.S)
_ONE = re.compile(r"^[Dd#]?(\d+)$")
_ACTIONS = {"stage": "stage", "阶段": "stage", "amount": "amount", "金额": "amount",
            "won": "won", "赢单": "won", "lost": "lost", "丢单": "lost"}


def _line(deal: Deal, rules: deals.DealRules, lang: str) -> str:
    return f"D{deal.id} · {deal.title} · {deal.amount:,.0f} {deal.currency} · " \
           f"{rules.name(deal.stage, lang)} ({rules.probability(deal.stage)}%)"


async def command(session: Session, rest: str, rules: deals.DealRules) -> None:
    if not rest:
        rows = (await session.db.scalars(select(Deal).where(Deal.owner_user_id == session.user.id,
                                                            Deal.status == "open").order_by(Deal.id).limit(30))).all()
        if not rows:
            session.say("deal_none")
            return
        session.ctx.reply("\n".join([say("deal_list", session.lang, count=len(rows)),
                                     *(_line(d, rules, session.lang) for d in rows)]))
        return
    one = _ONE.match(rest)
    if one:
        deal = await _deal(session, int(one.group(1)))
        if deal is not None:
            _card(session, deal, rules)
        return
    match = _ACTION.match(rest)
    action = _ACTIONS.get(match.group(2).lower()) if match else None
    if match is None or action is None:
        session.say("deal_usage")
        return
    deal_id, argument = int(match.group(1)), match.group(3).strip()
    deal = await _deal(session, deal_id)
    if deal is None:
        return
    await _act(session, deal, action, argument, rules)


async def _deal(session: Session, deal_id: int) -> Deal | None:
    deal = await session.db.scalar(select(Deal).where(Deal.id == deal_id, deals.deals_visible(session.user)))
    if deal is None:
        session.say("deal_missing", id=deal_id)
    return deal


def _next_stage(deal: Deal, rules: deals.DealRules) -> str | None:
    """The open stage after the deal's, if any."""
    open_stages = [s for s in rules.names if s not in ("won", "lost")]
    if deal.stage not in open_stages or deal.stage == open_stages[-1]:
        return None
    return open_stages[open_stages.index(deal.stage) + 1]


def _card(session: Session, deal: Deal, rules: deals.DealRules) -> None:
    """The deal with a button per next move: on to the next stage, won."""
    buttons = []
    if deal.status == "open":
        following = _next_stage(deal, rules)
        if following:
            named = rules.name(following, session.lang)
            buttons.append(Button(say("deal_button_next", session.lang, stage=named), f"deal_next:{deal.id}"))
        buttons.append(Button(say("deal_button_won", session.lang), f"deal_won:{deal.id}"))
        buttons.append(Button(say("deal_button_lost", session.lang), f"deal_lost:{deal.id}"))
    lines = [_line(deal, rules, session.lang)]
    if deal.next_step:
        lines.append(say("deal_next_step", session.lang, step=deal.next_step))
    if deal.status == "open":
        lines.append(say("deal_card_hint", session.lang, id=deal.id))
    session.ctx.reply("\n".join(lines), buttons, title=f"D{deal.id} · {deal.title}")


LOST_REASONS = ("price", "competitor", "budget", "silent", "timing")
CLICKS = ("deal_next", "deal_won", "deal_lost", *(f"deal_lost_{reason}" for reason in LOST_REASONS))


def _ask_why_lost(session: Session, deal: Deal) -> None:
    """The common reasons a deal is lost, one button each; any other by command."""
    buttons = [Button(say(f"deal_lost_{reason}", session.lang), f"deal_lost_{reason}:{deal.id}")
               for reason in LOST_REASONS]
    session.ctx.reply(say("deal_lost_why", session.lang, id=deal.id), buttons, title=f"D{deal.id} · {deal.title}")


async def click(session: Session, action: str, deal_id: int, rules: deals.DealRules) -> None:
    """A deal card's button (`CLICKS`): on to the next stage, won, lost (which asks why), lost
    for one of the common reasons."""
    deal = await _deal(session, deal_id)
    if deal is None:
        return
    if action == "deal_lost":
        if deal.status != "open":
            session.say("deal_refused", reason=f"D{deal.id} is {deal.status} already")
            return
        _ask_why_lost(session, deal)
    elif action.startswith("deal_lost_"):
        await _act(session, deal, "lost", say(action, session.lang), rules)
    elif action == "deal_next":
        following = _next_stage(deal, rules)
        if deal.status != "open" or following is None:
            session.say("deal_refused", reason=f"D{deal.id} is {deal.status}, {deal.stage}: nothing after it here")
            return
        await _act(session, deal, "stage", following, rules)
    else:
        await _act(session, deal, "won", "", rules)


async def _act(session: Session, deal: Deal, action: str, argument: str, rules: deals.DealRules) -> None:
    try:
        if action == "amount":
            amount = float(argument.replace(",", "").replace("，", "")) if argument else -1
            if deal.status != "open" or not 0 <= amount <= 1e12:
                raise DealRefused("amount: a number from 0, like /deal 3 amount 50000, on an open deal")
            deal.amount = amount
        else:
            stage = deals.stage_named(argument, rules) if action == "stage" else action
            if not stage:
                raise DealRefused(f"stages: {', '.join(rules.names)}")
            await deals.move(deal, stage, actor=session.user, rules=rules, lead_rules=session.lead_rules,
                             lost_reason=argument if action == "lost" else None, db_session=session.db)
            session.ctx.enqueued = True  # a win tells the team
    except (DealRefused, LeadRefused, ValueError) as exc:
        session.say("deal_refused", reason=str(exc))
        return
    session.say("deal_saved", line=_line(deal, rules, session.lang))
    if deal.status == "open":
        _card(session, deal, rules)
