"""A name, a company, a phone number given to the lead form is data, not feeling.

Runs before the alerts: the sentiment model reads "张三" or "Acme Ltd" as it reads any short
text, and a rep would get a card saying the customer is upset because they gave their name.
A message the form is waiting for (name, company, contact, budget, time frame) that reads as a
valid answer for that field, and is not a complaint, is marked neutral with confidence 0.
"""

from __future__ import annotations

from bots.customer import form as lead_form
from crm_core.models import CUSTOMER_MESSAGE_KINDS
from crm_core.ports import HandlerContext

DATA_FIELDS = frozenset({"name", "company", "contact", "budget", "timeframe"})


class FormAnswers:
    async def handle(self, ctx: HandlerContext) -> None:
        message = ctx.message
        if ctx.contact.is_staff or message.kind not in CUSTOMER_MESSAGE_KINDS or not message.text \
                or message.sentiment in (None, "neutral") or "complaint" in (message.intents or []):
            return
        state = await ctx.bot_session()
        form = state.form if state is not None else None
        asking = (form or {}).get("asking")
        if (form or {}).get("status") != "open" or asking not in DATA_FIELDS:
            return
        if lead_form.parse(asking, message.text).value is not None:
            message.sentiment, message.sentiment_score, message.sentiment_confidence = "neutral", 0.0, 0.0
