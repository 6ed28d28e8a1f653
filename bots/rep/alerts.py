"""Cards to reps about customers: new leads, replies on their conversations, churn.

Runs on every customer message (never marks it handled: the customer bot still
answers). A WeCom "customer added a rep" event also assigns the conversation
to that rep, records the QR code's State as the lead source, and sends the
account's welcome message with the event's WelcomeCode. Where the State is one of the
hub's contact ways (渠道活码), the code's tags, campaign and welcome apply, and the add (or a
later loss) is counted for it.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from bots.language import reply_language
from bots.rep.texts import say
from crm_core.campaigns import contact_ways
from crm_core.conversations.service import first_customer_message, person_takes_over
from crm_core.leads.service import stage_name
from crm_core.models import CUSTOMER_MESSAGE_KINDS, ChannelAccount, Conversation, User
from crm_core.outbox.service import enqueue_to_conversation
from crm_core.people import reps
from crm_core.ports import HandlerContext, OutboundMessage

# Normalized events that carry where the customer came from (WeCom State, WeChat QR scene).
SOURCE_EVENTS = ("contact_added", "followed", "scan")


class RepAlerts:
    def __init__(self, negative_confidence: float = 0.7) -> None:
        # A customer message scored negative at least this surely raises an alert.
        self.negative_confidence = negative_confidence

    async def handle(self, ctx: HandlerContext) -> None:
        if ctx.contact.is_staff:
            return
        message = ctx.message
        for item in message.attachments or []:
            kind = item.get("type") if isinstance(item, dict) else None
            if kind in SOURCE_EVENTS and item.get("source") and not ctx.contact.source:
                ctx.contact.source = item["source"]  # the QR code / campaign that brought them first
            if kind == "contact_added":
                await self._contact_added(ctx, item)
            elif kind == "customer_left":
                await self._churn(ctx, item)
            if kind in ("customer_left", "rep_removed_customer"):
                found = await reps.user_by_handle(ctx.message.channel_account_id, item.get("rep") or "",
                                                  db_session=ctx.db_session)
                await contact_ways.left(ctx.message.channel_account_id, ctx.contact.id,
                                        found[0].id if found else None, db_session=ctx.db_session)
        if message.kind not in CUSTOMER_MESSAGE_KINDS:
            return
        if message.sentiment == "negative" and (message.sentiment_confidence or 0) >= self.negative_confidence:
            await self._negative(ctx)
        conversation = ctx.conversation
        if conversation.assignee_user_id is not None:
            await _alert_owner(ctx, conversation)
            return
        if await first_customer_message(ctx):
            await alert_new_lead(ctx, conversation, key=f"lead:{message.id}")

    async def _contact_added(self, ctx: HandlerContext, item: dict) -> None:
        found = None
        if item.get("rep"):
            found = await reps.user_by_handle(ctx.message.channel_account_id, item["rep"], db_session=ctx.db_session)
        if found is not None and ctx.conversation.assignee_user_id is None:
            ctx.conversation.assignee_user_id = found[0].id
            person_takes_over(ctx.conversation, "rep_contact")  # the rep's own WeChat contact, not the bot's
            await _card(ctx, found[0], "card_added", key=f"added:{ctx.message.id}")
        way = await contact_ways.arrived(ctx.message.channel_account_id, item.get("source"), ctx.contact.id,
                                         found[0].id if found else None, db_session=ctx.db_session)
        if way is not None and ctx.contact.source in (None, item.get("source")):
            ctx.contact.source = way.name  # the code as the operator named it, not its state
        if item.get("welcome_code"):
            account = await ctx.db_session.get(ChannelAccount, ctx.message.channel_account_id)
            lang = reply_language(None, ctx.identity.language or ctx.contact.language or "zh")
            welcome = (way.welcome or {}) if way is not None else {}
            text = welcome.get(lang) or welcome.get("zh" if lang == "en" else "en") \
                or ((account.settings or {}).get(f"welcome_message_{lang}") if account else None)
            if text:
                await enqueue_to_conversation(
                    ctx.conversation,
                    OutboundMessage(ctx.conversation.external_thread_id, text, image_url=welcome.get("image_url"),
                                    link_url=welcome.get("link_url"), title=welcome.get("link_title"),
                                    options={"welcome_code": item["welcome_code"],
                                             "welcome_deadline": item.get("welcome_deadline"),
                                             **({"miniprogram": welcome["miniprogram"]}
                                                if welcome.get("miniprogram") else {})}),
                    idempotency_key=f"welcome:{ctx.message.id}", db_session=ctx.db_session)
                ctx.enqueued = True

    async def _negative(self, ctx: HandlerContext) -> None:
        """An unhappy customer: the owner (every rep while unclaimed) and the manager hear of it at once."""
        targets: dict[int, User] = {}
        owner = await ctx.db_session.get(User, ctx.conversation.assignee_user_id) \
            if ctx.conversation.assignee_user_id else None
        if owner is not None and owner.is_active:
            targets[owner.id] = owner
            manager = await reps.manager_of(owner, db_session=ctx.db_session)
            if manager is not None:
                targets[manager.id] = manager
        else:
            for user in await reps.active_reps_with_handles(db_session=ctx.db_session):
                targets[user.id] = user
            for user in await reps.active_managers_with_handles(db_session=ctx.db_session):
                targets[user.id] = user
        percent = round((ctx.message.sentiment_confidence or 0) * 100)
        for user in targets.values():
            await _card(ctx, user, "card_negative", key=f"negative:{ctx.message.id}", percent=percent)

    async def _churn(self, ctx: HandlerContext, item: dict) -> None:
        """The customer deleted a rep: tell that rep, their manager and the conversation's owner."""
        targets: dict[int, User] = {}
        rep_name = item.get("rep") or "?"
        if item.get("rep"):
            found = await reps.user_by_handle(ctx.message.channel_account_id, item["rep"], db_session=ctx.db_session)
            if found is not None:
                rep = found[0]
                rep_name = rep.display_name or rep.username
                targets[rep.id] = rep
                manager = await reps.manager_of(rep, db_session=ctx.db_session)
                if manager is not None:
                    targets[manager.id] = manager
        if ctx.conversation.assignee_user_id is not None and ctx.conversation.assignee_user_id not in targets:
            owner = await ctx.db_session.get(User, ctx.conversation.assignee_user_id)
            if owner is not None:
                targets[owner.id] = owner
        for user in targets.values():
            await _card(ctx, user, "card_churn", key=f"churn:{ctx.message.id}", rep=rep_name)


async def alert_new_lead(ctx: HandlerContext, conversation: Conversation, *, key: str,
                         exclude_user_id: int | None = None) -> int:
    """A claimable card to every active rep reachable in a chat app (those of the teams
    taking the customer's channel, if any); how many got it."""
    count = 0
    for rep in await reps.reps_for(conversation, db_session=ctx.db_session):
        if rep.id != exclude_user_id:
            count += await _card(ctx, rep, "card_new_lead", key=key, conversation=conversation)
    return count


async def _alert_owner(ctx: HandlerContext, conversation: Conversation) -> None:
    owner = await ctx.db_session.get(User, conversation.assignee_user_id)
    if owner is not None and owner.is_active and owner.id not in ctx.notified:
        await _card(ctx, owner, "card_reply", key=f"reply:{ctx.message.id}", conversation=conversation)


async def _card(ctx: HandlerContext, user: User, title_key: str, *, key: str,
                conversation: Conversation | None = None, **params: object) -> int:
    conversation = conversation or ctx.conversation
    latest = ctx.message.text if ctx.message.conversation_id == conversation.id else None
    queued = await send_card(user, title_key, conversation, key=key, latest=latest, db_session=ctx.db_session,
                             **params)
    if queued:
        ctx.enqueued = True
        ctx.notified.add(user.id)  # one card per person per message: later handlers leave them be
    return queued


async def send_card(user: User, title_key: str, conversation: Conversation, *, key: str, latest: str | None,
                    db_session: AsyncSession, **params: object) -> int:
    """A card about `conversation` to `user` in their language, all of it (a parameter given in
    both languages, {"en": ..., "zh": ...}, is told in theirs), with the buttons that fit its
    state; how many of the user's chat apps it was queued to."""
    lang = user.language or "zh"
    card = await reps.contact_card(conversation, db_session=db_session, lang=lang)
    told = {name: value.get(lang, value.get("en")) if isinstance(value, dict) else value
            for name, value in params.items()}
    title = say(title_key, lang, id=conversation.id, name=card["name"], **told)
    body = [f"#{conversation.id} {card['name']} · {card['where']}"]
    if card["source"]:
        body.append(say("card_source", lang, source=card["source"]))
    if latest:
        body.append(f"“{latest[:300]}”")
    body.append(say("card_stage_owner", lang, stage=stage_name(card["stage"], lang), owner=card["owner"] or "-"))
    buttons = reps.card_buttons(conversation.id, claimed=conversation.assignee_user_id is not None, lang=lang)
    return await reps.notify_user(user.id, OutboundMessage("", "\n".join(body), buttons, title=title),
                                  key=f"{key}:u{user.id}", db_session=db_session)
