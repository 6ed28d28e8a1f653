"""The bots that talk to a customer, run together so that what they say reaches a customer who
reads Traditional characters in Traditional characters (bots/language.py says who does)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from bots.language import TRADITIONAL, has_chinese, to_traditional, writes_traditional
from crm_core.ports import HandlerContext, MessageHandler, OutboundMessage


class InTheirScript:
    def __init__(self, handlers: Sequence[MessageHandler]) -> None:
        self.handlers = list(handlers)

    async def handle(self, ctx: HandlerContext) -> None:
        for handler in self.handlers:
            await handler.handle(ctx)
            if ctx.handled:
                break
        if ctx.replies and not ctx.contact.is_staff and await _reads_traditional(ctx):
            # Everything said to them for this message, these bots' and those before them.
            ctx.replies[:] = [_converted(reply) for reply in ctx.replies]


async def _reads_traditional(ctx: HandlerContext) -> bool:
    """Their Chinese words now, else the script the bot last used with them, else their app's."""
    text = ctx.message.text or ""
    if has_chinese(text):
        return writes_traditional(text)
    state = await ctx.bot_session()
    spoken = state.language if state is not None else None
    return spoken == TRADITIONAL if spoken else writes_traditional(None, ctx.identity.language)


def _converted(reply: OutboundMessage) -> OutboundMessage:
    return dataclasses.replace(
        reply, text=to_traditional(reply.text), title=to_traditional(reply.title) if reply.title else None,
        buttons=tuple(dataclasses.replace(b, label=to_traditional(b.label)) for b in reply.buttons))
