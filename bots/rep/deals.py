"""A rep's deals from their chat app: `/deal` lists the open ones; `/deal D stage negotiation`,
`/deal D amount 50000`, `/deal D won`, `/deal D lost 价格太高` move one on (`/商机` in Chinese)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from sqlalchemy import select

from bots.rep.texts import say
from crm_core.deals import service as deals
from crm_core.deals.service import DealRefused
from crm_core.leads.service import LeadRefused
from crm_core.models import Deal

if TYPE_CHECKING:
    from bots.rep.workspace import Session

_ACTION = re.compile(r"^[Dd#]?(\d+)\s+(\S+)\s*(.*)$", re.S)
_ACTIONS = {"stage": "stage", "阶段": "stage", "amount": "amount", "金额": "amount",
            "won": "won", "赢单": "won", "lost": "lost", "丢单": "lost"}


def _line(deal: Deal, rules: deals.DealRules) -> str:
    return f"D{deal.id} · {deal.title} · {deal.amount:,.0f} {deal.currency} · {deal.stage} " \
           f"({rules.probability(deal.stage)}%)"


async def command(session: Session, rest: str, rules: deals.DealRules) -> None:
    if not rest:
        rows = (await session.db.scalars(select(Deal).where(Deal.owner_user_id == session.user.id,
                                                            Deal.status == "open").order_by(Deal.id).limit(30))).all()
        if not rows:
            session.say("deal_none")
            return
        session.ctx.reply("\n".join([say("deal_list", session.lang, count=len(rows)),
                                     *(_line(d, rules) for d in rows)]))
        return
    match = _ACTION.match(rest)
    action = _ACTIONS.get(match.group(2).lower()) if match else None
    if match is None or action is None:
        session.say("deal_usage")
        return
    deal_id, argument = int(match.group(1)), match.group(3).strip()
    deal = await session.db.scalar(select(Deal).where(Deal.id == deal_id, deals.deals_visible(session.user)))
    if deal is None:
        session.say("deal_missing", id=deal_id)
        return
    try:
        if action == "amount":
            amount = float(argument.replace(",", "").replace("，", "")) if argument else -1
            if deal.status != "open" or not 0 <= amount <= 1e12:
                raise DealRefused("amount: a number from 0, like /deal 3 amount 50000, on an open deal")
            deal.amount = amount
        else:
            stage = argument if action == "stage" else action
            if not stage:
                raise DealRefused(f"stages: {', '.join(rules.names)}")
            await deals.move(deal, stage, actor=session.user, rules=rules, lead_rules=session.lead_rules,
                             lost_reason=argument if action == "lost" else None, db_session=session.db)
            session.ctx.enqueued = True  # a win tells the team
    except (DealRefused, LeadRefused, ValueError) as exc:
        session.say("deal_refused", reason=str(exc))
        return
    session.say("deal_saved", line=_line(deal, rules))
