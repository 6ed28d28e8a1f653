"""What a platform says about a chat rather than in it: a 微信客服 servicer picked the customer up
in WeCom, the session ended, a message WeCom had accepted did not arrive; a message recalled in an
archived WeCom chat.

- A servicer took the session (from WeCom's queue, passed on by a colleague, an ended session
  taken up again): the conversation becomes that rep's, and the bot stays quiet.
- The session ended: the conversation is resolved, and the customer is asked how we did with the
  code WeCom gave for the closing words (no other send reaches an ended session).
- A send failed after WeCom accepted it: the message shows as failed, with WeCom's reason.
- A recall (撤回) in an archived chat: the message stays for the record, marked recalled.
"""

from __future__ import annotations

from sqlalchemy import select

from crm_core import audit
from crm_core.conversations import csat
from crm_core.conversations.service import person_takes_over
from crm_core.models import Message, MessageKind
from crm_core.outbox.service import refused_after_sending
from crm_core.people import reps
from crm_core.ports import HandlerContext


class PlatformSessions:
    async def handle(self, ctx: HandlerContext) -> None:
        if ctx.message.kind != MessageKind.EVENT:
            return
        for item in ctx.message.attachments or []:
            kind = item.get("type") if isinstance(item, dict) else None
            if kind == "servicer_changed":
                await self._servicer(ctx, str(item.get("servicer") or ""))
            elif kind == "session_ended":
                via = {k: item[k] for k in ("event_code", "event_deadline") if item.get(k)}
                if await csat.resolve(ctx.conversation, None, db_session=ctx.db_session, via=via) is not None:
                    ctx.enqueued = True
                ctx.handled = True
            elif kind == "recalled":
                await self._recalled(ctx, str(item.get("platform_message_id")))
            elif kind == "send_failed":
                await refused_after_sending(ctx.message.channel_account_id, str(item.get("platform_message_id")),
                                            str(item.get("reason")), db_session=ctx.db_session)
                ctx.handled = True

    @staticmethod
    async def _recalled(ctx: HandlerContext, platform_message_id: str) -> None:
        ctx.handled = True
        earlier = await ctx.db_session.scalar(select(Message).where(
            Message.channel_account_id == ctx.message.channel_account_id,
            Message.platform_message_id == platform_message_id))
        if earlier is not None and not any(isinstance(a, dict) and a.get("type") == "recalled"
                                           for a in earlier.attachments or []):
            earlier.attachments = [*(earlier.attachments or []), {"type": "recalled",
                                                                   "at": ctx.message.created_at.isoformat()}]

    @staticmethod
    async def _servicer(ctx: HandlerContext, servicer: str) -> None:
        conversation = ctx.conversation
        person_takes_over(conversation, "claimed")
        ctx.handled = True
        user = await reps.user_by_staff_id(servicer, db_session=ctx.db_session)
        if user is None or conversation.assignee_user_id == user.id:
            return
        previous, conversation.assignee_user_id = conversation.assignee_user_id, user.id
        await audit.record("conversation.assign", entity_type="conversation", entity_id=conversation.id,
                           actor=None, actor_label="wecom", db_session=ctx.db_session,
                           details={"from": previous, "to": user.id, "why": f"servicer {servicer} in WeCom"})
