"""A customer's opt-out, answered: "STOP" / "退订" is confirmed once, in their
language; the consent ledger already has it (the worker records it before the
bots run). Repeats get no second confirmation, and no greeting either. A message
that may be an opt-out ("退订了还能再订阅吗") is not taken as one: the customer is
asked to confirm with a lone TD / STOP."""

from __future__ import annotations

from bots.language import reply_language
from crm_core.consent import service as consent
from crm_core.consent.service import UNSURE_OPT_OUT
from crm_core.ports import HandlerContext

CONFIRMATION = {
    "en": "You will receive no more marketing messages from us. Replies to your own questions still reach you.",
    "zh": "已为您退订，我们不会再向您发送营销信息；您咨询的问题仍会正常回复。",
}


SUBSCRIBED = {
    "en": "Thank you, you are subscribed. Reply STOP at any time to stop.",
    "zh": "感谢确认，您已成功订阅。回复“退订”即可随时取消。",
}


async def customer_language(ctx: HandlerContext) -> str:
    """The language of their words, else the one the bot last spoke with them, else their app's:
    a Chinese speaker's "STOP" is answered in Chinese."""
    state = await ctx.bot_session()
    spoken = state.language if state is not None else None
    return reply_language(ctx.message.text, ctx.identity.language or ctx.contact.language, known=spoken)


class OptInBot:
    """Confirms a grant the customer's own message just gave (a "yes" to a double opt-in
    question, or "subscribe me"), once, in their language."""

    async def handle(self, ctx: HandlerContext) -> None:
        if ctx.contact.is_staff or not ctx.message.text:
            return
        if not await consent.recorded_from(ctx.message.id, ctx.contact.id, granted=True, db_session=ctx.db_session,
                                           known=ctx.consent_recorded):
            return
        ctx.reply(SUBSCRIBED[await customer_language(ctx)])
        ctx.handled = True


ASK_TO_CONFIRM = {
    "en": "Would you like to stop our marketing messages? Reply STOP to confirm.",
    "zh": "您是想退订我们的营销消息吗？如需退订，请回复 TD 确认。",
}


class OptOutBot:
    async def handle(self, ctx: HandlerContext) -> None:
        intents = ctx.message.intents or []
        if ctx.contact.is_staff:
            return
        if UNSURE_OPT_OUT in intents and "opt_out" not in intents:
            # Not sure it is an opt-out: asked, never guessed; the rest of the message is answered as usual.
            ctx.reply(ASK_TO_CONFIRM[await customer_language(ctx)])
            return
        if "opt_out" not in intents:
            return
        if await consent.newly_withdrawn(ctx.contact.id, ctx.message.id, db_session=ctx.db_session):
            text = (ctx.message.text or "").strip()
            # "TD" / "T" is the Chinese SMS convention for 退订.
            lang = "zh" if text.upper() in ("TD", "T") else await customer_language(ctx)
            ctx.reply(CONFIRMATION[lang])
        ctx.handled = True  # an opt-out is not a conversation opener
