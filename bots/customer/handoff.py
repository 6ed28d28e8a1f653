"""Handing a customer to a person, with the whole story.

The conversation is marked handed off (the bot goes quiet), and the rep who owns
it, or every rep while nobody does, gets a card in WeCom / DingTalk that says who
the customer is, what they asked, what the bot answered, how they feel and what
the lead form collected, so nobody has to ask the customer again. An upset
customer's card goes to the managers too.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bots.customer.texts import FIELD_NAMES
from bots.rep.texts import say as rep_say
from crm_core.conversations import handover
from crm_core.db import utcnow
from crm_core.leads.service import open_lead_of, stage_name
from crm_core.models import (
    CUSTOMER_MESSAGE_KINDS,
    BotSession,
    Conversation,
    Direction,
    Message,
    User,
)
from crm_core.outbox.service import write_replies
from crm_core.people import reps
from crm_core.ports import HandlerContext, OutboundMessage

_FEELINGS = {"negative": "负面", "positive": "正面", "neutral": "中性"}
REASONS = {
    "asked": {"en": "asked for a person", "zh": "要求转人工"},
    "not_understood": {"en": "the bot could not answer twice in a row", "zh": "机器人连续两次无法回答"},
    "upset": {"en": "the customer is upset", "zh": "客户情绪负面"},
    "complaint": {"en": "a complaint while filling in the lead form", "zh": "填写留资表单时提出投诉"},
}


async def hand_off(ctx: HandlerContext, reason: str, session_state: BotSession | None) -> dict[str, Any]:
    """Mark the conversation handed off and send the summary card to the reps; the options the
    customer's "a person is coming" carries (on 微信客服: which servicer WeCom moves the session to)."""
    conversation = ctx.conversation
    conversation.handoff_at, conversation.handoff_reason = utcnow(), reason
    db = ctx.db_session
    owner = await db.get(User, conversation.assignee_user_id) if conversation.assignee_user_id else None
    if owner is not None and not owner.is_active:
        owner = None
    candidates = [] if owner is not None else list(await reps.reps_for(conversation, db_session=db))
    before = conversation.assignee_user_id
    options = await handover.hand_over_option(conversation, owner, candidates, db_session=db)
    if conversation.assignee_user_id != before:  # routed to a servicer just now
        owner = await db.get(User, conversation.assignee_user_id)
    targets: dict[int, User] = {owner.id: owner} if owner is not None else {rep.id: rep for rep in candidates}
    if reason == "upset":
        for manager in await reps.managers_for(owner, db_session=db):
            targets[manager.id] = manager
    for user in targets.values():
        lang = user.language or "zh"
        card = OutboundMessage("", await summary(conversation, ctx, session_state, lang=lang),
                               reps.card_buttons(conversation.id, claimed=conversation.assignee_user_id is not None,
                                                 lang=lang),
                               title=rep_say("card_handoff", lang, id=conversation.id,
                                             reason=REASONS[reason]["zh" if lang == "zh" else "en"]))
        if await reps.notify_user(user.id, card, key=f"handoff:{ctx.message.id}:u{user.id}", db_session=db):
            ctx.enqueued = True
    return options


async def summary(conversation: Conversation, ctx: HandlerContext, state: BotSession | None, *, lang: str,
                  turns: int = 4) -> str:
    """Who, what they asked, what the bot answered, how they feel, what the form collected."""
    db: AsyncSession = ctx.db_session
    zh = lang == "zh"
    contact = ctx.contact
    card = await reps.contact_card(conversation, db_session=db, lang=lang)
    lines = [f"#{conversation.id} {card['name']} · {card['where']}".rstrip(" ·")]
    if card["keys"]:
        lines.append(("联系方式：" if zh else "contact: ") + ", ".join(card["keys"]))
    await write_replies(db)  # what the bot answered earlier in this transaction, too
    history = (await db.scalars(
        select(Message).where(Message.conversation_id == conversation.id, Message.kind.in_(CUSTOMER_MESSAGE_KINDS))
        .order_by(Message.id.desc()).limit(turns * 2))).all()
    asked = [m.text for m in reversed(history) if m.direction == Direction.INBOUND and m.text]
    answered = [m.text for m in reversed(history) if m.direction == Direction.OUTBOUND and m.text
                and m.author_user_id is None]
    if asked:
        lines.append("客户说：" if zh else "customer said:")
        lines += [f"  “{_short(text)}”" for text in asked[-turns:]]
    if answered:
        lines.append("机器人答：" if zh else "bot answered:")
        lines += [f"  “{_short(text)}”" for text in answered[-turns:]]
    scored = [m for m in history if m.direction == Direction.INBOUND and m.sentiment]
    if scored:
        latest = scored[0]
        negatives = sum(1 for m in scored if m.sentiment == "negative")
        feeling = _FEELINGS.get(latest.sentiment, latest.sentiment) if zh else latest.sentiment
        lines.append(("情绪：" if zh else "sentiment: ") +
                     f"{feeling} ({round((latest.sentiment_confidence or 0) * 100)}%)" +
                     (f"，{len(scored)} 条中 {negatives} 条负面" if zh else f", {negatives}/{len(scored)} negative"))
    fields = dict((state.form or {}).get("fields", {})) if state is not None else {}
    lead = await open_lead_of(contact.id, db_session=db)
    if lead is not None:
        fields = {**{k: v for k, v in (lead.details or {}).items() if v}, **fields}
        if lead.company and "company" not in fields:
            fields["company"] = lead.company
        lines.append(("线索：" if zh else "lead: ") + f"#{lead.id} {stage_name(lead.stage, lang)} · "
                     + ("评分 " if zh else "score ") + str(lead.score))
    if fields:
        lines.append(("表单：" if zh else "form: ") + "; ".join(
            f"{FIELD_NAMES.get(k, {}).get('zh', k) if zh else k}={v}" for k, v in fields.items()))
    return "\n".join(lines)


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
