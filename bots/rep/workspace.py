"""The rep bot: what a rep types or clicks in their chat app (WeCom now, DingTalk later).

Handles only messages from staff (`Contact.is_staff`), marks them handled so the
customer bot never answers a colleague, and answers every command with a
confirmation or a clear error in the language the rep wrote in.
"""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from bots.language import reply_language
from bots.rep import deals, todo, when
from bots.rep.review import RepMessageReview
from bots.rep.texts import STAGE_ALIASES, say
from crm_core.conversations import csat
from crm_core.db import utcnow
from crm_core.deals.service import DEFAULT_DEAL_STAGES, DealRules
from crm_core.knowledge import quick_replies
from crm_core.leads.service import LeadRules, stage_name
from crm_core.models import (
    Contact,
    Conversation,
    Identity,
    MessageKind,
    User,
    UserHandle,
)
from crm_core.people import reps
from crm_core.ports import HandlerContext, OutboundMessage

SNOOZE = dt.timedelta(minutes=30)

COMMANDS = {
    "help": "help", "h": "help", "帮助": "help",
    "claim": "claim", "认领": "claim",
    "r": "reply", "reply": "reply", "回复": "reply",
    "note": "note", "备注": "note",
    "stage": "stage", "阶段": "stage",
    "assign": "assign", "转交": "assign",
    "mine": "mine", "我的": "mine",
    "card": "card", "卡片": "card",
    "resolve": "resolve", "done": "resolve", "解决": "resolve", "已解决": "resolve",
    "q": "quick", "quick": "quick", "话术": "quick", "快捷回复": "quick",
    "snooze": "snooze", "稍后": "snooze", "稍后提醒": "snooze",
    "todo": "todo", "tasks": "todo", "task": "todo", "待办": "todo", "任务": "todo",
    "finish": "finish", "完成": "finish",
    "deal": "deal", "deals": "deal", "商机": "deal",
}
USAGE = {
    "claim": "/claim N", "reply": "/r N text", "note": "/note N text", "stage": "/stage N stage",
    "assign": "/assign N @user", "card": "/card N", "resolve": "/resolve N", "quick": "/q N shortcut",
    "snooze": "/snooze N 2h", "finish": "/finish T",
}
_COMMAND = re.compile(r"^[/／](\S+)\s*(.*)$", re.S)
_NUMBER_REST = re.compile(r"^#?(\d+)\s*(.*)$", re.S)


class RepWorkspace:
    def __init__(self, review: RepMessageReview | None = None, lead_rules: LeadRules | None = None,
                 timezone: str = "Asia/Shanghai", deal_rules: DealRules | None = None) -> None:
        # Reads a rep's reply and flags wording (discounts, refunds, guarantees) for their manager.
        self.review = review
        self.lead_rules = lead_rules or LeadRules()  # the pipeline's stages for /stage
        self.timezone = timezone  # the company's: "明天10点" is 10:00 there
        self.deal_rules = deal_rules or DealRules.parse(DEFAULT_DEAL_STAGES)

    async def handle(self, ctx: HandlerContext) -> None:
        if not ctx.contact.is_staff:
            return
        ctx.handled = True
        message = ctx.message
        text = (message.text or "").strip()
        found = await reps.user_by_handle(message.channel_account_id, ctx.identity.external_id,
                                          db_session=ctx.db_session)
        lang = reply_language(text) if text and message.kind != MessageKind.CALLBACK else "zh"
        if found is None:
            if message.kind in (MessageKind.TEXT, MessageKind.CALLBACK):
                ctx.reply(say("not_registered", lang, userid=ctx.identity.external_id))
            return
        user, handle = found
        if message.kind == MessageKind.CALLBACK:
            lang = user.language or "zh"
        elif text and user.language != lang:
            user.language = lang
        session = Session(ctx, user, handle, lang, self.review, self.lead_rules, self.timezone, self.deal_rules)
        try:
            if message.kind == MessageKind.CALLBACK:
                await session.click(text)
            elif message.kind == MessageKind.TEXT and text:
                await session.text(text)
        except reps.RepActionRefused as exc:
            ctx.reply(say(exc.code, lang, **exc.params))


class Session:
    """One rep message being answered."""

    def __init__(self, ctx: HandlerContext, user: User, handle: UserHandle, lang: str,
                 review: RepMessageReview | None = None, lead_rules: LeadRules | None = None,
                 timezone: str = "Asia/Shanghai", deal_rules: DealRules | None = None) -> None:
        self.ctx = ctx
        self.deal_rules = deal_rules or DealRules.parse(DEFAULT_DEAL_STAGES)
        self.timezone = timezone
        self.review = review
        self.lead_rules = lead_rules or LeadRules()
        self.db: AsyncSession = ctx.db_session
        self.user = user
        self.handle = handle
        self.lang = lang

    def say(self, key: str, **params: object) -> None:
        self.ctx.reply(say(key, self.lang, **params))

    async def text(self, text: str) -> None:
        match = _COMMAND.match(text)
        if match is None:
            if self.handle.focus_conversation_id is None:
                self.say("no_focus")
                return
            await self._reply(self.handle.focus_conversation_id, text)
            return
        word, rest = match.group(1).lower(), match.group(2).strip()
        command = COMMANDS.get(word)
        if command is None:
            self.say("unknown_command", command=f"/{word}")
            return
        if command == "help":
            self.say("help", stages="|".join(stage_name(stage, self.lang) for stage in self.lead_rules.stages))
            return
        if command == "mine":
            await self._mine()
            return
        if command == "todo":
            await todo.command(self, rest)
            return
        if command == "deal":
            await deals.command(self, rest, self.deal_rules)
            return
        if command == "finish":
            number = re.fullmatch(r"[Tt#]?(\d+)", rest)
            if number is None:
                self.say("usage", usage=USAGE[command])
            else:
                await todo.finish(self, int(number.group(1)))
            return
        numbered = _NUMBER_REST.match(rest)
        if command == "quick":
            await self._quick(int(numbered.group(1)) if numbered else None,
                              (numbered.group(2) if numbered else rest).strip())
            return
        if numbered is None:
            self.say("usage", usage=USAGE[command])
            return
        conversation_id, argument = int(numbered.group(1)), numbered.group(2).strip()
        if command in ("reply", "note", "stage", "assign", "snooze") and not argument:
            self.say("usage", usage=USAGE[command])
            return
        if command == "claim":
            await self._claim(conversation_id)
        elif command == "reply":
            await self._reply(conversation_id, argument)
        elif command == "note":
            conversation = await reps.get_open_conversation(conversation_id, db_session=self.db)
            await reps.add_note(conversation, self.user, argument, db_session=self.db)
            self.say("noted", id=conversation_id)
        elif command == "stage":
            conversation = await reps.get_open_conversation(conversation_id, db_session=self.db)
            stage = STAGE_ALIASES.get(argument, argument)
            previous = await reps.set_stage(conversation, self.user, stage, rules=self.lead_rules,
                                            db_session=self.db)
            self.say("staged", id=conversation_id, previous=previous, stage=stage.lower())
        elif command == "assign":
            await self._assign(conversation_id, argument)
        elif command == "snooze":
            await self._snooze_until(conversation_id, argument)
        elif command == "card":
            await self._card(conversation_id)
        elif command == "resolve":
            conversation = await reps.get_open_conversation(conversation_id, db_session=self.db)
            reps.ensure_may_act(self.user, conversation)
            await csat.resolve(conversation, self.user, db_session=self.db)
            self.ctx.enqueued = True
            self.say("resolved", id=conversation_id, name=await self._name(conversation))

    async def click(self, data: str) -> None:
        action, _, number = data.partition(":")
        if not number.isdigit():
            self.say("unknown_command", command=data)
            return
        if action in ("task_done", "task_snooze"):
            await todo.click(self, action, int(number))
            return
        if action in deals.CLICKS:
            await deals.click(self, action, int(number), self.deal_rules)
            return
        conversation_id = int(number)
        if action == "claim":
            await self._claim(conversation_id)
        elif action == "reply":
            conversation = await reps.get_open_conversation(conversation_id, db_session=self.db)
            if conversation.assignee_user_id is None:
                await reps.claim(conversation, self.user, db_session=self.db)
            reps.ensure_may_act(self.user, conversation)
            self.handle.focus_conversation_id = conversation_id
            self.say("focus", id=conversation_id, name=await self._name(conversation))
        elif action == "snooze":
            await self._snooze(conversation_id, utcnow() + SNOOZE)
            self.say("snoozed", id=conversation_id, minutes=int(SNOOZE.total_seconds() // 60))
        elif action == "remind":
            conversation = await reps.get_open_conversation(conversation_id, db_session=self.db)
            await todo.remind_tomorrow(self, conversation, await self._name(conversation))
        elif action == "handover":
            conversation = await reps.get_open_conversation(conversation_id, db_session=self.db)
            await reps.assign(conversation, None, self.user, db_session=self.db)
            from bots.rep.alerts import (
                alert_new_lead,  # alerts builds on this module's texts
            )

            await alert_new_lead(self.ctx, conversation, key=f"handover:{self.ctx.message.id}",
                                 exclude_user_id=self.user.id)
            self.say("released", id=conversation_id)
        else:
            self.say("unknown_command", command=data)

    async def _claim(self, conversation_id: int) -> None:
        conversation = await reps.get_open_conversation(conversation_id, db_session=self.db)
        if not await reps.claim(conversation, self.user, db_session=self.db):
            self.say("already_yours", id=conversation_id)
            return
        self.handle.focus_conversation_id = conversation_id
        self.say("claimed", id=conversation_id, name=await self._name(conversation))

    async def _reply(self, conversation_id: int, text: str, image_url: str | None = None,
                     file_url: str | None = None, file_name: str | None = None) -> None:
        conversation = await reps.get_open_conversation(conversation_id, db_session=self.db)
        row = await reps.reply(conversation, self.user, text, key=f"msg:{self.ctx.message.id}", db_session=self.db,
                               image_url=image_url, file_url=file_url, file_name=file_name)
        self.ctx.enqueued = True
        self.handle.focus_conversation_id = conversation_id
        self.say("sent", id=conversation_id, name=await self._name(conversation))
        if self.review is not None and await self.review.review(row, conversation, self.user, db_session=self.db):
            self.ctx.enqueued = True

    async def _snooze(self, conversation_id: int, until: dt.datetime) -> None:
        """The conversation's card again at `until`, to this rep."""
        conversation = await reps.get_open_conversation(conversation_id, db_session=self.db)
        if conversation.assignee_user_id is not None:  # an unclaimed one's card went to every rep
            reps.ensure_may_act(self.user, conversation)
        name = await self._name(conversation)
        reminder = OutboundMessage("", say("card_reminder", self.lang, id=conversation_id, name=name),
                                   reps.card_buttons(conversation_id, claimed=conversation.assignee_user_id
                                                     is not None, lang=self.lang),
                                   title=say("card_reminder", self.lang, id=conversation_id, name=name))
        await reps.notify_user(self.user.id, reminder, key=f"snooze:{self.ctx.message.id}", not_before=until,
                               db_session=self.db)
        self.ctx.enqueued = True

    async def _snooze_until(self, conversation_id: int, words: str) -> None:
        """`/snooze N 2h`, `/稍后 N 明天10点`: the card again when the rep says, in the company's time."""
        zone = ZoneInfo(self.timezone)
        now = utcnow().astimezone(zone)
        until = when.parse(words, now)
        if until is None:
            self.say("when_unknown", words=words)
            return
        if until <= now:
            self.say("when_past", when=until.strftime("%m-%d %H:%M"))
            return
        await self._snooze(conversation_id, until.astimezone(dt.UTC))
        self.say("snoozed_until", id=conversation_id, when=until.strftime("%m-%d %H:%M"))

    async def _quick(self, conversation_id: int | None, words: str) -> None:
        """`/q N shortcut` sends that quick reply to conversation N, filled for its customer; `/q
        words` (or no exact shortcut) lists the replies that match."""
        if not words:
            self.say("usage", usage=USAGE["quick"])
            return
        exact, matches = await quick_replies.find(self.user, words, db_session=self.db)
        if exact is None or conversation_id is None:
            shown = [exact] if exact is not None else matches
            if not shown:
                self.say("quick_none", words=words)
                return
            lines = [say("quick_found", self.lang, words=words)]
            for n, reply in enumerate(shown, 1):
                preview = (reply.texts.get(self.lang) or next(iter(reply.texts.values()), "")).replace("\n", " ")
                lines.append(f"{n}. [{reply.shortcut or '-'}] {reply.title}: {preview[:60]}")
            self.ctx.reply("\n".join(lines))
            return
        conversation = await reps.get_open_conversation(conversation_id, db_session=self.db)
        filled = await quick_replies.for_conversation(exact, conversation, self.user, db_session=self.db)
        await self._reply(conversation_id, filled.text, image_url=exact.image_url, file_url=exact.file_url,
                          file_name=exact.file_name)
        if filled.missing:
            self.say("quick_missing", missing=", ".join(f"{{{v}}}" for v in filled.missing))

    async def _assign(self, conversation_id: int, who: str) -> None:
        conversation = await reps.get_open_conversation(conversation_id, db_session=self.db)
        target = await reps.find_user(who, db_session=self.db)
        if target is None:
            self.say("no_user", name=who)
            return
        await reps.assign(conversation, target, self.user, db_session=self.db)
        name = await self._name(conversation)
        by = self.user.display_name or self.user.username
        lang = target.language or "zh"
        title = say("card_assigned", lang, id=conversation_id, name=name, by=by)
        buttons = reps.card_buttons(conversation_id, claimed=True, lang=lang)
        await reps.notify_user(target.id, OutboundMessage("", title, buttons, title=title),
                               key=f"assigned:{self.ctx.message.id}", db_session=self.db)
        self.ctx.enqueued = True
        self.say("assigned", id=conversation_id, name=target.display_name or target.username)

    async def _mine(self) -> None:
        rows = await reps.mine(self.user, db_session=self.db)
        if not rows:
            self.say("mine_empty")
            return
        lines = [say("mine", self.lang)]
        for conversation, contact in rows:
            lines.append(f"#{conversation.id} {contact.display_name or '-'} · {contact.stage}")
        self.ctx.reply("\n".join(lines))

    async def _card(self, conversation_id: int) -> None:
        conversation = await reps.get_open_conversation(conversation_id, db_session=self.db)
        reps.ensure_may_act(self.user, conversation)
        card = await reps.contact_card(conversation, db_session=self.db, lang=self.lang)
        self.ctx.reply(format_card(card, self.lang),
                       buttons=reps.card_buttons(conversation_id, claimed=True, lang=self.lang),
                       title=f"#{card['id']} {card['name']}")

    async def _name(self, conversation: Conversation) -> str:
        identity = await self.db.get(Identity, conversation.identity_id)
        contact = await self.db.get(Contact, conversation.contact_id)
        return ((identity.display_name if identity else None) or (contact.display_name if contact else None)
                or (identity.external_id if identity else f"#{conversation.id}"))


def format_card(card: dict, lang: str) -> str:
    lines = [say("card_who", lang, name=card["name"], stage=stage_name(card["stage"], lang))
             + (say("card_from", lang, source=card["source"]) if card["source"] else ""),
             say("card_owner_notes", lang, owner=card["owner"] or "-", notes=card["notes"])
             + ("" if card["reachable"] else say("card_unreachable", lang))]
    lines += card["recent"]
    return "\n".join(lines)

