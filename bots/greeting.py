"""The minimal customer rule until the real customer bot exists: greet a new
conversation, acknowledge later messages after a quiet spell. Never echoes."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from bots.language import reply_language
from crm_core.db import utcnow
from crm_core.models import CUSTOMER_MESSAGE_KINDS, Direction, Message
from crm_core.ports import HandlerContext

GREETING = {
    "en": "Hello{name}! Thanks for reaching out. We have your message and a member of our team will reply soon.",
    "zh": "您好{name}！感谢您的联系。我们已收到您的消息，工作人员会尽快回复您。",
}
ACKNOWLEDGEMENT = {
    "en": "Thanks, we have received your message and will get back to you soon.",
    "zh": "已收到您的消息，我们会尽快回复您，谢谢！",
}


class GreetingBot:
    def __init__(self, quiet_spell: dt.timedelta = dt.timedelta(minutes=10)) -> None:
        self.quiet_spell = quiet_spell

    async def handle(self, ctx: HandlerContext) -> None:
        message = ctx.message
        if message.kind not in CUSTOMER_MESSAGE_KINDS or ctx.conversation.assignee_user_id is not None:
            return  # edits, button presses and events need no reply; a person owns assigned chats
        lang = reply_language(message.text, ctx.identity.language)
        earlier_inbound = await ctx.db_session.scalar(
            select(func.count()).select_from(Message).where(
                Message.conversation_id == ctx.conversation.id,
                Message.direction == Direction.INBOUND,
                Message.kind.in_(CUSTOMER_MESSAGE_KINDS),
                Message.id < message.id,
            )
        )
        if not earlier_inbound:
            name = ctx.identity.display_name or ctx.contact.display_name
            suffix = (f", {name}" if lang == "en" else f"，{name}") if name else ""
            ctx.reply(GREETING[lang].format(name=suffix))
            return
        last_outbound = await ctx.db_session.scalar(
            select(func.max(Message.created_at)).where(
                Message.conversation_id == ctx.conversation.id, Message.direction == Direction.OUTBOUND
            )
        )
        if last_outbound is None or utcnow() - _aware(last_outbound) > self.quiet_spell:
            ctx.reply(ACKNOWLEDGEMENT[lang])


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
