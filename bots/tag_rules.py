"""Automatic tags by keyword: a customer whose message names one of a tag's words gets the tag
(audited with the word that matched), as SCRM_TAG_KEYWORDS / the panel's settings say. Never
marks a message handled: the bots still answer it."""

from __future__ import annotations

from crm_core.contacts.tags import add_by_rule
from crm_core.models import CUSTOMER_MESSAGE_KINDS
from crm_core.ports import HandlerContext
from nlp.script import simplified


class KeywordTags:
    def __init__(self, keywords: dict[str, list[str]] | None = None) -> None:
        self.keywords = keywords or {}

    async def handle(self, ctx: HandlerContext) -> None:
        message = ctx.message
        if ctx.contact.is_staff or not self.keywords or message.kind not in CUSTOMER_MESSAGE_KINDS \
                or not message.text:
            return
        text = simplified(message.text).casefold()
        for tag, words in self.keywords.items():
            word = next((w for w in words if simplified(w).casefold() in text), None)
            if word is not None:
                await add_by_rule(ctx.contact.id, [tag], f"keyword {word}", db_session=ctx.db_session)
