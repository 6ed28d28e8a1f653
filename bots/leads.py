"""Lead capture: what a customer says or does opens their lead and scores it.

A buying signal ("报价", "how much", "demo"), an event registration or a WeCom add
through a channel QR code (its State) opens the contact's lead, routed to a rep
by the lead rules, who gets a card at once; every later message scores it, and
crossing the hot score tells the owner once. Runs before the rep alerts, so the
new owner is not told twice about the same message.
"""

from __future__ import annotations

from sqlalchemy import select

from bots.rep.alerts import send_card
from crm_core.leads import service as leads
from crm_core.leads import sources
from crm_core.leads.service import LeadRules
from crm_core.models import CUSTOMER_MESSAGE_KINDS, ChannelAccount, Lead, User
from crm_core.ports import HandlerContext

SIGNALS = (("buying", "buying_signal"), ("event_registration", "event_registration"))


class LeadCapture:
    def __init__(self, rules: LeadRules | None = None) -> None:
        self.rules = rules or LeadRules()

    async def handle(self, ctx: HandlerContext) -> None:
        if ctx.contact.is_staff:
            return
        session, message = ctx.db_session, ctx.message
        intents = message.intents or []
        qr = next((item for item in message.attachments or [] if isinstance(item, dict)
                   and item.get("type") == "contact_added" and item.get("source")), None)
        signal = next((event for intent, event in SIGNALS if intent in intents), None)
        entities = message.entities or {}
        opened = None
        if qr is not None:
            opened = await leads.open_lead(ctx.contact.id, source_kind="qr", source=qr["source"], rules=self.rules,
                                           source_message_id=message.id, db_session=session)
        elif signal is not None and message.kind in CUSTOMER_MESSAGE_KINDS:
            opened = await leads.open_lead(ctx.contact.id, source_kind="signal", source=f"message {message.id}",
                                           company=entities.get("company"), rules=self.rules,
                                           source_message_id=message.id, db_session=session)
        lead = opened.lead if opened is not None else await leads.open_lead_of(ctx.contact.id, db_session=session)
        if lead is None:
            return
        if opened is not None and opened.created:
            await session.refresh(ctx.conversation, ["assignee_user_id"])
            channel = await session.scalar(select(ChannelAccount.kind).where(
                ChannelAccount.id == message.channel_account_id))
            await self._tell_owner(ctx, lead, "card_lead_routed", source=sources.describe(
                lead.source_kind, lead.source, channel=channel, at=message.created_at))
        hot = False
        if message.kind in CUSTOMER_MESSAGE_KINDS:
            for event in [e for _, e in SIGNALS if e == signal] + ["message"] + \
                         (["opt_in"] if "opt_in" in intents else []) + \
                         (["stated_contact"] if entities.get("phones") or entities.get("emails") else []):
                hot = await leads.score(lead, event, rules=self.rules, db_session=session,
                                        message_id=message.id) or hot
        if entities.get("company") and not lead.company:
            lead.company = entities["company"]
        if hot:
            await self._tell_owner(ctx, lead, "card_hot_lead", score=lead.score)

    async def _tell_owner(self, ctx: HandlerContext, lead: Lead, title_key: str, **params: object) -> None:
        owner = await ctx.db_session.get(User, lead.owner_user_id) if lead.owner_user_id else None
        if owner is None or not owner.is_active:
            return
        queued = await send_card(owner, title_key, ctx.conversation, key=f"{title_key}:{lead.id}:{ctx.message.id}",
                                 latest=ctx.message.text, db_session=ctx.db_session, lead=lead.id, **params)
        if queued:
            ctx.enqueued = True
            ctx.notified.add(owner.id)
