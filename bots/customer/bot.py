"""The customer bot: the first to answer a customer on every channel.

For each customer message, in this order:
1. While a person has the conversation (claimed, assigned, or a rep wrote in it:
   `crm_core.conversations.service.has_a_person`) it stays silent, unless the
   customer asks for the bot back ("bot", "机器人"). Handed off but nobody has
   it yet, it answers what it can (FAQ, the lead form), each answer saying a
   person is coming, and does not hand off again.
2. A pending satisfaction question takes a 1-5 answer (a button or a number).
3. "人工" / "human", a strongly negative complaint, or a second question in a row
   it cannot answer hands the conversation to a person with a summary.
4. Events: registering ("报名" names one, or the options to choose from), "am I
   registered?", and cancelling.
5. A lead form in progress takes the answer, a correction ("sorry, my number
   is ..."), or a "stop"; a complaint is no answer: the form waits and a person
   takes over (3.); a buying signal starts one. The form asks only what is
   missing, re-asks with the reason when an answer is not valid, survives days
   of silence, and ends in the lead's details, a card to the rep, and the
   marketing consent question (asked once, in the customer's channel).
6. Otherwise the FAQ: an answer when the match is sure enough, else an honest
   "not sure" with a button to a person.
A number answers the options of the bot's last message ("1" for its first
button), so channels without buttons work the same.

One reply per customer message, in the customer's language (the account's
default when the message has no words to tell).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from typing import Any

from sqlalchemy import bindparam, func, select

from bots.customer import form as lead_form
from bots.customer.faq import FaqIndexes
from bots.customer.handoff import hand_off
from bots.customer.texts import CHANNEL_NAMES, FIELD_NAMES, say
from bots.language import TRADITIONAL, reply_language, words_language, writes_traditional
from bots.rep.alerts import send_card
from crm_core.campaigns import events
from crm_core.consent import service as consent
from crm_core.contacts.linking import reach_keys
from crm_core.conversations import csat
from crm_core.conversations.service import first_customer_message, has_a_person
from crm_core.db import held_or_get, utcnow
from crm_core.leads import service as leads
from crm_core.leads.service import LeadRules
from crm_core.models import (
    CUSTOMER_MESSAGE_KINDS,
    BotSession,
    ChannelAccount,
    ConsentRequest,
    Direction,
    Event,
    Lead,
    Message,
    MessageKind,
    MessagePurpose,
    User,
)
from crm_core.outbox.service import last_reply_queued_at
from crm_core.people import reps
from crm_core.ports import Button, HandlerContext

_BOT_BACK = re.compile(r"^\s*(bot|back to (the )?bot|机器人|自助|返回机器人|回到机器人)\s*[.!。！]*\s*$", re.I)
_LEAVE_FORM = re.compile(r"^\s*(stop the form|cancel|never ?mind|forget it|later|not now|算了|不用了|以后再说|"
                         r"先不了|取消|稍后)\s*[.!。！]*\s*$", re.I)
_NUMBER = re.compile(r"^\s*(?:第\s*)?(\d{1,2})\s*(?:个|项|号)?\s*[.。)]?\s*$")
_SCORE = re.compile(r"^\s*([1-5])\s*(?:分|/\s*5|stars?|星)?\s*[.!。！]*\s*$", re.I)
_NOT_WORDS = re.compile(r"\S+@\S+|https?://\S+|www\.\S+|[+\d][\d\s()-]{5,}\d")
# When the conversation was last written to (asked for small talk): built once, as the worker asks it often.
# Without flushing the session first: sent messages are written with Core statements (replies,
# campaign copies) and never wait in the session, whose pending changes (bot states, leads) this
# cannot see. A flush before it was a quarter of the worker's flushes, each about 330 us.
_LAST_SENT = (select(func.max(Message.created_at))
              .where(Message.conversation_id == bindparam("conversation_id"), Message.direction == Direction.OUTBOUND)
              .execution_options(autoflush=False))
# A question of the customer's own, not an answer to the form's.
_QUESTION = re.compile(r"[?？]\s*$|吗\s*[。.!！]?\s*$|呢\s*$|^\s*(what|how|why|when|where|which|who|can|could|do|does|is|are)\b|"
                       r"(什么|怎么|怎样|如何|为什么|多少|哪|几|是否|能否|可否|可不可以|有没有)", re.I)
_SMALL_TALK = re.compile(r"^\s*(hi|hello|hey|hiya|good (morning|afternoon|evening)|thanks?|thank you|thx|ok|okay|"
                         r"cool|great|bye|你好|您好|在吗|在不在|哈喽|嗨|谢谢|多谢|好的|好|嗯|收到|再见|拜拜)"
                         r"(\s+(again|there|so much|a lot))?\s*[!.。！~～]*\s*$|^\W*$", re.I)
_ASKS_REGISTERED = re.compile(r"\b(am i|are we|i'm|we're) (registered|signed up|booked|on the list)\b|"
                              r"我(报名|报上名|报好名)了吗|报名成功了吗|有没有报上名|是否报名成功|我的报名|查(询)?(一下)?报名", re.I)
_CANCELS_REGISTRATION = re.compile(r"\bcancel (my |the )?(registration|booking|rsvp)\b|取消报名|不去了|不参加了", re.I)


@dataclasses.dataclass(frozen=True)
class FaqAnswer:
    text: str                 # in the customer's language when the entry has it
    question: str             # the way of asking it matched
    image_url: str | None
    link_url: str | None


@dataclasses.dataclass(frozen=True)
class CustomerBotSettings:
    faq_threshold: float = 0.4           # below it the bot does not guess
    misses_before_handoff: int = 2       # questions in a row it could not answer
    upset_confidence: float = 0.85       # a negative message this sure goes to a person at once
    resume_after: dt.timedelta = dt.timedelta(hours=6)    # a form idle this long is greeted back
    form_recent: dt.timedelta = dt.timedelta(days=30)     # a form finished this recently is not asked again
    csat_window: dt.timedelta = dt.timedelta(days=3)      # a score is accepted this long after asking
    low_csat: int = 2                    # at or below: the manager hears of it
    timezone: str = "Asia/Shanghai"      # event times are told in it
    quiet_spell: dt.timedelta = dt.timedelta(minutes=10)  # small talk after this long is greeted again


class CustomerBot:
    def __init__(self, faq: FaqIndexes | None = None, settings: CustomerBotSettings | None = None,
                 lead_rules: LeadRules | None = None) -> None:
        self.faq = faq or FaqIndexes()
        self.settings = settings or CustomerBotSettings()
        self.lead_rules = lead_rules or LeadRules()

    async def handle(self, ctx: HandlerContext) -> None:
        message = ctx.message
        if ctx.contact.is_staff or message.kind not in (*CUSTOMER_MESSAGE_KINDS, MessageKind.CALLBACK):
            return
        state = await _state(ctx)
        account = await held_or_get(ctx.db_session, ChannelAccount, message.channel_account_id)
        lang = self._language(ctx, state, account)
        choice = await _choice(ctx)  # a pressed button, or the number of one
        text = (message.text or "").strip()
        conversation = ctx.conversation

        if await self._csat_answer(ctx, choice, text, lang):
            return  # a score is taken whoever owns the conversation
        waiting = conversation.handoff_at is not None  # for a person: nobody has the conversation yet
        if waiting:
            if choice == "bot:back" or _BOT_BACK.match(text):
                conversation.handoff_at = conversation.handoff_reason = None
                ctx.reply(say("bot_back", lang))
                return
            if has_a_person(conversation):
                return
        conversation.resolved_at = None  # they wrote again: it is live

        if await self._consent_declined(ctx, lang):
            return
        intents = message.intents or []
        # Strongly negative: the model is sure, and the words agree (a complaint). The model
        # alone calls short neutral answers ("张三", "三个月内") negative too often.
        upset = message.sentiment == "negative" and (message.sentiment_confidence or 0) >= \
            self.settings.upset_confidence and "complaint" in intents
        complaint_in_form = (state.form or {}).get("status") == "open" and "complaint" in intents
        if complaint_in_form:
            # Not an answer to the form: it waits (a buying signal later goes on from what they said).
            state.form = {**state.form, "status": "left"}
        if waiting and (choice == "handoff" or "human" in intents or upset or complaint_in_form):
            ctx.reply(say("person_coming", lang))  # already handed off: the reps have the card
            return
        if complaint_in_form and not upset and "human" not in intents and choice != "handoff":
            await self._hand_off(ctx, state, "complaint", lang)
            return
        if choice == "handoff" or "human" in intents or upset:
            await self._hand_off(ctx, state, "upset" if upset and "human" not in intents and choice != "handoff"
                                 else "asked", lang)
            return

        prefix = await self._hello(ctx, lang)
        form = dict(state.form or {})
        about_events = await self._events(ctx, choice, text, intents, lang)
        if about_events is not None:
            ctx.reply(prefix + about_events[0], about_events[1])
            return
        if message.kind == MessageKind.CALLBACK:
            return  # a button of an earlier message that means nothing now
        if form.get("status") == "open":
            reply = await self._form_turn(ctx, state, form, text, lang, account)
            if reply is not None:
                ctx.reply(prefix + reply)
                return
        elif "buying" in intents and not self._form_recent(form):
            ctx.reply(prefix + await self._start_form(ctx, state, lang))
            return

        answer = await self._faq_answer(ctx, text, lang)
        # While the form waits for an answer, every other reply ends by asking again.
        reminder = "\n\n" + say("form_still_need", lang, question=say(f"ask_{form['asking']}", lang)) \
            if form.get("status") == "open" else ""
        if waiting:
            reminder += "\n\n" + say("person_coming", lang)
        if answer is not None:
            state.misses = 0
            # With a picture or link it is a card: the question they asked as its title.
            card = bool(answer.image_url or answer.link_url)
            ctx.reply(prefix + answer.text + reminder, title=answer.question if card else None,
                      image_url=answer.image_url, link_url=answer.link_url)
            return
        if prefix and not _QUESTION.search(text) and "buying" not in intents:
            # A first "hello" is not a question the bot failed.
            ctx.reply(say("greeting", lang, name=_name_suffix(ctx, lang)))
            return
        if _SMALL_TALK.match(text):
            # "hello again", "thanks", "ok": no question, no miss; greeted only after a quiet spell.
            if await self._quiet_for(ctx, self.settings.quiet_spell):
                ctx.reply(say("greeting", lang, name=_name_suffix(ctx, lang)))
            return
        if waiting:
            ctx.reply(prefix + say("person_coming", lang))  # no second handoff, no button to one
            return
        state.misses += 1
        if state.misses >= self.settings.misses_before_handoff:
            await self._hand_off(ctx, state, "not_understood", lang)
            return
        ctx.reply(prefix + say("not_sure", lang) + reminder, [Button(say("talk_to_person", lang), "handoff")])

    # -- language and greeting ------------------------------------------------

    def _language(self, ctx: HandlerContext, state: BotSession, account: ChannelAccount | None) -> str:
        """zh or en (bots/language.py), kept as the customer's spoken language: TRADITIONAL for
        one who reads Traditional characters (what the bot says is converted for them)."""
        text = ctx.message.text if ctx.message.kind != MessageKind.CALLBACK else None
        default = (account.settings or {}).get("default_language") if account is not None else None
        # An address or a number says nothing of the language: "zhang@xingchen.cn" is no English.
        words = _NOT_WORDS.sub(" ", text or "")
        told = words_language(words)
        if told == "zh":
            state.language = TRADITIONAL if writes_traditional(words) else "zh"
        elif told == "en":
            state.language = "en"
        elif state.language is None and writes_traditional(None, ctx.identity.language):
            state.language = TRADITIONAL
        return reply_language(None, ctx.identity.language or ctx.contact.language or default, known=state.language)

    async def _hello(self, ctx: HandlerContext, lang: str) -> str:
        """"Hello, name! " on the first message of a conversation, else ""."""
        return say("hello", lang, name=_name_suffix(ctx, lang)) if await first_customer_message(ctx) else ""

    async def _quiet_for(self, ctx: HandlerContext, spell: dt.timedelta) -> bool:
        """Nothing was sent in this conversation for `spell`."""
        # A reply queued in this transaction and not written yet is later than any written.
        last = last_reply_queued_at(ctx.conversation.id, db_session=ctx.db_session) or \
            await ctx.db_session.scalar(_LAST_SENT, {"conversation_id": ctx.conversation.id})
        return last is None or utcnow() - last > spell

    # -- handoff --------------------------------------------------------------

    async def _hand_off(self, ctx: HandlerContext, state: BotSession, reason: str, lang: str) -> None:
        state.misses = 0
        options = await hand_off(ctx, reason, state)
        ctx.reply(say("handoff", lang), options=options)

    # -- FAQ ------------------------------------------------------------------

    async def _faq_answer(self, ctx: HandlerContext, text: str, lang: str) -> FaqAnswer | None:
        if not text:
            return None
        index = await self.faq.index_for(ctx.message.channel_account_id, db_session=ctx.db_session)
        matches = index.search(text, limit=1)
        if not matches or matches[0].score < self.settings.faq_threshold:
            return None
        item = matches[0].item
        return FaqAnswer(item.answers.get(lang) or next(iter(item.answers.values())), matches[0].question,
                         item.image_url, item.link_url)

    # -- the lead form --------------------------------------------------------

    def _form_recent(self, form: dict[str, Any]) -> bool:
        finished = form.get("finished_at")
        return form.get("status") == "done" and finished is not None and \
            utcnow() - dt.datetime.fromisoformat(finished) < self.settings.form_recent

    async def _start_form(self, ctx: HandlerContext, state: BotSession, lang: str) -> str:
        # A form they left earlier goes on from what they had said.
        fields: dict[str, str] = dict((state.form or {}).get("fields", {})) \
            if (state.form or {}).get("status") == "left" else {}
        name = ctx.contact.display_name or ctx.identity.display_name
        if name and not fields.get("name") and lead_form.parse("name", name).value:
            fields["name"] = name
        lead = await _open_lead(ctx)
        if lead is not None and lead.company and not fields.get("company"):
            fields["company"] = lead.company
        known = await _known_contact(ctx)
        if known and not fields.get("contact"):
            fields["contact"] = known
        given = lead_form.volunteered_contact(ctx.message.text or "")
        if given:
            fields["contact"] = given
        asking = lead_form.missing(fields)
        state.form = {"status": "open", "fields": fields, "asking": asking, "started_at": utcnow().isoformat(),
                      "touched_at": utcnow().isoformat(), "conversation_id": ctx.conversation.id}
        return _join(lang, say("form_intro", lang), say(f"ask_{asking}", lang))

    async def _form_turn(self, ctx: HandlerContext, state: BotSession, form: dict[str, Any], text: str, lang: str,
                         account: ChannelAccount | None) -> str | None:
        """The reply to a message while the form is open; None when the message is not for the form."""
        fields: dict[str, str] = dict(form.get("fields", {}))
        asking: str = form["asking"]
        touched = dt.datetime.fromisoformat(form.get("touched_at") or form["started_at"])
        welcome = say("form_resume", lang) if utcnow() - touched > self.settings.resume_after else ""
        form["touched_at"] = utcnow().isoformat()
        if _LEAVE_FORM.match(text):
            form["status"] = "left"
            state.form = form
            return say("form_left", lang)
        fixed = lead_form.correction(text, asking)
        if fixed is not None:
            field, parsed = fixed
            if parsed.value is None:
                state.form = form
                return _join(lang, say(parsed.problem, lang), say(f"ask_{field}", lang))
            fields[field] = parsed.value
            form["fields"] = fields
            state.form = form
            updated = say("form_updated", lang, field=FIELD_NAMES[field]["zh" if lang == "zh" else "en"],
                          value=parsed.value)
            return _join(lang, updated, say(f"ask_{asking}", lang))
        parsed = lead_form.parse(asking, text) if not _QUESTION.search(text) or asking == "need" \
            else lead_form.Parsed(None, "")
        if parsed.value is None:
            state.form = form
            if welcome:
                return _join(lang, welcome, say(f"ask_{asking}", lang))
            if not parsed.problem or await self._faq_answer(ctx, text, lang) is not None:
                return None  # a question of their own: answered below, then the form asks again
            return _join(lang, say(parsed.problem, lang), say(f"ask_{asking}", lang))
        fields[asking] = parsed.value
        if asking != "contact" and not fields.get("contact"):
            given = lead_form.volunteered_contact(text)
            if given:
                fields["contact"] = given
        next_field = lead_form.missing(fields)
        form.update(fields=fields, asking=next_field)
        if next_field is not None:
            state.form = form
            return _join(lang, welcome, say(f"ask_{next_field}", lang))
        form.update(status="done", finished_at=utcnow().isoformat())
        state.form = form
        return _join(lang, welcome, await self._finish_form(ctx, fields, lang, account))

    async def _finish_form(self, ctx: HandlerContext, fields: dict[str, str], lang: str,
                           account: ChannelAccount | None) -> str:
        db = ctx.db_session
        opened = await leads.open_lead(ctx.contact.id, source_kind="form", source=f"customer bot, message "
                                       f"{ctx.message.id}", company=fields.get("company"), rules=self.lead_rules,
                                       source_message_id=ctx.message.id, db_session=db)
        lead = opened.lead
        if fields.get("company"):
            lead.company = fields["company"]
        lead.details = {**(lead.details or {}), **{k: fields[k] for k in ("need", "budget", "timeframe", "contact")}}
        if not ctx.contact.display_name or ctx.contact.display_name == ctx.identity.display_name:
            ctx.contact.display_name = fields["name"]
        await leads.record(lead, "form_filled", db_session=db, **fields)
        await leads.score(lead, "stated_contact", rules=self.lead_rules, db_session=db, message_id=ctx.message.id)
        await db.refresh(ctx.conversation, ["assignee_user_id"])
        owner = await db.get(User, lead.owner_user_id) if lead.owner_user_id else None
        # The owner; while nobody owns it (claim routing), every rep, so the first to claim knows the answers.
        targets = [owner] if owner is not None and owner.is_active else \
            await reps.reps_for(ctx.conversation, db_session=db)
        for user in targets:
            if await send_card(user, "card_form_done", ctx.conversation, key=f"form:{lead.id}:{ctx.message.id}",
                               latest=_fields_text(fields, user.language or "zh"), db_session=db):
                ctx.enqueued = True
                ctx.notified.add(user.id)
        summary = _fields_text(fields, lang)
        reply = say("form_done", lang, name=_name_suffix(ctx, lang, fields.get("name")), summary=summary)
        question = await self._consent_question(ctx, lang, account)
        return reply + ("\n\n" + question if question else "")

    async def _consent_question(self, ctx: HandlerContext, lang: str, account: ChannelAccount | None) -> str | None:
        """Asked once, for this channel, only when the ledger has no marketing answer yet; the
        customer's "yes" is recorded by the worker as the confirmation of this request."""
        db = ctx.db_session
        kind = account.kind if account is not None else "?"
        if (await consent.decide(ctx.contact.id, purpose=MessagePurpose.MARKETING, channel=kind,
                                 db_session=db)).event is not None:
            return None
        asked = await db.scalar(select(ConsentRequest.id).where(ConsentRequest.contact_id == ctx.contact.id,
                                                                ConsentRequest.source == "customer_bot").limit(1))
        if asked is not None:
            return None
        channel = CHANNEL_NAMES.get(kind, {}).get("zh" if lang == "zh" else "en", kind)
        question = say("consent_question", lang, channel=channel)
        db.add(ConsentRequest(contact_id=ctx.contact.id, purpose=MessagePurpose.MARKETING, channel=kind,
                              source="customer_bot", actor_label="customer bot",
                              evidence={"question": question, "conversation_id": ctx.conversation.id,
                                        "after_message_id": ctx.message.id},
                              expires_at=utcnow() + dt.timedelta(days=consent.DOUBLE_OPT_IN_DAYS)))
        return question

    async def _consent_declined(self, ctx: HandlerContext, lang: str) -> bool:
        """This message said "no" to a consent question (the worker put the refusal in the
        ledger, `consent.answer_pending`): acknowledged, and nothing else is answered."""
        if not await consent.recorded_from(ctx.message.id, ctx.contact.id, granted=False, source="double_opt_in",
                                           db_session=ctx.db_session, known=ctx.consent_recorded):
            return False
        ctx.reply(say("consent_declined", lang))
        return True

    # -- events ---------------------------------------------------------------

    async def _events(self, ctx: HandlerContext, choice: str | None, text: str, intents: list[str],
                      lang: str) -> tuple[str, list[Button]] | None:
        """Registering, "am I registered?" and cancelling; None when the message is about none of it."""
        db, contact_id = ctx.db_session, ctx.contact.id
        zone = self.settings.timezone
        if _ASKS_REGISTERED.search(text):
            mine = await events.registrations_of(contact_id, db_session=db)
            if not mine:
                return say("event_status_none", lang), []
            lines = []
            for _, event in mine:
                about = events.describe(event, lang, zone)
                lines.append(f"- {about['name']}: {about['when']}{about['where']}")
            return say("event_status", lang, list="\n".join(lines)), []
        if _CANCELS_REGISTRATION.search(text):
            mine = await events.registrations_of(contact_id, db_session=db)
            named = events.named_in(text, [e for _, e in mine]) or [e for _, e in mine]
            if len(named) != 1:
                return (say("event_status_none", lang), []) if not named else None
            registration = next(r for r, e in mine if e.id == named[0].id)
            registration.status = "cancelled"
            return say("event_cancelled", lang, name=events.describe(named[0], lang, zone)["name"]), []
        chosen = None
        if choice and choice.startswith("event:") and choice[6:].isdigit():
            chosen = await db.get(Event, int(choice[6:]))
        elif "event_registration" not in intents:
            return None
        if chosen is None:
            open_events = await events.upcoming(db_session=db)
            if not open_events:
                return say("event_none", lang), []
            candidates = events.named_in(text, open_events) or list(open_events)
            if len(candidates) > 1:
                buttons = []
                for event in candidates[:5]:
                    about = events.describe(event, lang, zone)
                    buttons.append(Button(f"{about['name']} · {about['when'][:16]}", f"event:{event.id}"))
                return say("event_choose", lang), buttons
            chosen = candidates[0]
        about = events.describe(chosen, lang, zone)
        try:
            _, new = await events.register(chosen, contact_id, conversation_id=ctx.conversation.id,
                                           message_id=ctx.message.id, db_session=db)
        except events.EventFull:
            return say("event_full", lang, name=about["name"]), []
        return say("event_registered" if new else "event_already", lang, **about), []

    # -- satisfaction ---------------------------------------------------------

    async def _csat_answer(self, ctx: HandlerContext, choice: str | None, text: str, lang: str) -> bool:
        score = int(choice.split(":")[1]) if choice and choice.startswith("csat:") else None
        if score is None and _SCORE.match(text):
            score = int(_SCORE.match(text).group(1))
        if score is None:
            return False
        db = ctx.db_session
        survey = await csat.pending(ctx.conversation.id, self.settings.csat_window, db_session=db)
        if survey is None:
            return False
        survey.score, survey.answered_at, survey.answer_message_id = score, utcnow(), ctx.message.id
        if score <= self.settings.low_csat:
            rep = await db.get(User, survey.rep_user_id) if survey.rep_user_id else None
            for manager in await reps.managers_for(rep, db_session=db):
                if await send_card(manager, "card_low_csat", ctx.conversation, key=f"csat:{survey.id}",
                                   latest=ctx.message.text, db_session=db, score=score):
                    ctx.enqueued = True
            ctx.reply(say("csat_sorry", lang))
        else:
            ctx.reply(say("csat_thanks", lang))
        return True


async def _state(ctx: HandlerContext) -> BotSession:
    state = await ctx.bot_session(create=True)
    assert state is not None
    return state


async def _choice(ctx: HandlerContext) -> str | None:
    """The data of the button the customer pressed, or of the option whose number they wrote."""
    message = ctx.message
    if message.kind == MessageKind.CALLBACK:
        return message.text
    number = _NUMBER.match(message.text or "")
    if number is None:
        return None
    last = await ctx.db_session.scalar(
        select(Message).where(Message.conversation_id == ctx.conversation.id, Message.direction == Direction.OUTBOUND,
                              Message.id < message.id).order_by(Message.id.desc()).limit(1))
    options = next((item.get("options") for item in (last.attachments if last is not None else None) or []
                    if isinstance(item, dict) and item.get("type") == "options"), None)
    n = int(number.group(1))
    return options[n - 1]["data"] if options and 1 <= n <= len(options) else None


async def _open_lead(ctx: HandlerContext) -> Lead | None:
    return await leads.open_lead_of(ctx.contact.id, db_session=ctx.db_session)


async def _known_contact(ctx: HandlerContext) -> str | None:
    keys = (await reach_keys([ctx.contact.id], db_session=ctx.db_session)).get(ctx.contact.id, [])
    return ", ".join(value for _, value in keys) if keys else None


def _name_suffix(ctx: HandlerContext, lang: str, name: str | None = None) -> str:
    name = name or ctx.identity.display_name or ctx.contact.display_name
    if not name:
        return ""
    return f"，{name}" if lang == "zh" else f", {name}"


def _fields_text(fields: dict[str, str], lang: str) -> str:
    key = "zh" if lang == "zh" else "en"
    return "\n".join(f"- {FIELD_NAMES[name][key]}: {fields[name]}" for name in lead_form.FIELDS if fields.get(name))


def _join(lang: str, *parts: str) -> str:
    """Sentences one after another: with a space in English, without one in Chinese."""
    return ("" if lang == "zh" else " ").join(part for part in parts if part)
