"""A customer's opt-out, answered: "STOP" / "退订" is confirmed once, in their
language; the consent ledger already has it (the worker records it before the
bots run). Repeats get no second confirmation, and no greeting either."""

from __future__ import annotations

from bots.language import reply_language
from crm_core.consent import service as consent
from crm_core.ports import HandlerContext

CONFIRMATION = {
    "en": "You will receive no more marketing messages from us. Replies to your own questions still reach you.",
    "zh": "已为您退订，我们不会再向您发送营销信息；您咨询的问题仍会正常回复。",
}


SUBSCRIBED = {
    "en": "Thank you, you are subscribed. Reply STOP at any time to stop.",
    "zh": "感谢确认，您已成功订阅。回复“退订”即可随时取消。",
}


class OptInBot:
    """Confirms a grant the customer's own message just gave (a "yes" to a double opt-in
    question, or "subscribe me"), once, in their language."""

    async def handle(self, ctx: HandlerContext) -> None:
        if ctx.contact.is_staff or not ctx.message.text:
            return
        if not await consent.recorded_from(ctx.message.id, ctx.contact.id, granted=True, db_session=ctx.db_session):
            return
        ctx.reply(SUBSCRIBED[reply_language(ctx.message.text, ctx.identity.language or ctx.contact.language)])
        ctx.handled = True


class OptOutBot:
    async def handle(self, ctx: HandlerContext) -> None:
        if "opt_out" not in (ctx.message.intents or []) or ctx.contact.is_staff:
            return
        if await consent.newly_withdrawn(ctx.contact.id, ctx.message.id, db_session=ctx.db_session):
            text = (ctx.message.text or "").strip()
            # "TD" / "T" is the Chinese SMS convention for 退订.
            lang = "zh" if text.upper() in ("TD", "T") else reply_language(text, ctx.identity.language)
            ctx.reply(CONFIRMATION[lang])
        ctx.handled = True  # an opt-out is not a conversation opener
