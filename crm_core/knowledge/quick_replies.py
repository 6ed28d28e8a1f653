"""Quick replies (话术库): what a rep may use, found by shortcut or words, filled for one customer.

A reply is shared with everyone, one team's, or a rep's own; a rep sees the shared ones, their
team's and their own. A shortcut names one reply for a rep: their own first, then their team's,
then the shared one. Variables are filled when the reply is sent: {name} (the customer's name),
{company} (their company, from their lead), {rep} (the rep's name), {link} (the reply's link).
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.models import Contact, Conversation, Identity, Lead, QuickReply, User

VARIABLES = ("name", "company", "rep", "link")
SHORTCUT = re.compile(r"^[0-9A-Za-z_\-\u4e00-\u9fff]{1,30}$")
SHOWN = 5  # matches listed for a search


class QuickReplyInvalid(ValueError):
    pass


def check(texts: dict[str, str], link_url: str | None, shortcut: str | None) -> None:
    """QuickReplyInvalid unless the reply can be sent: words in one language at least, only known
    variables, a link where {link} is used, a shortcut of letters, digits, Chinese, _ or -."""
    if not any((texts.get(lang) or "").strip() for lang in ("zh", "en")):
        raise QuickReplyInvalid("write the reply in Chinese or English (or both)")
    for lang, text in texts.items():
        try:
            used = {field for _, field, _, _ in string.Formatter().parse(text or "") if field is not None}
        except ValueError:
            raise QuickReplyInvalid(f"the {lang} text has an unmatched brace: write {{{{ or }}}} for one") from None
        unknown = sorted(used - set(VARIABLES))
        if unknown:
            raise QuickReplyInvalid(f"unknown variable {{{unknown[0]}}} in the {lang} text: use "
                                    + ", ".join(f"{{{v}}}" for v in VARIABLES))
        if "link" in used and not link_url:
            raise QuickReplyInvalid("the text uses {link}: give the reply its link")
    if shortcut is not None and not SHORTCUT.match(shortcut):
        raise QuickReplyInvalid(f"shortcut {shortcut!r}: 1 to 30 letters, digits, Chinese characters, _ or -")


def visible_to(user: User):
    """The replies `user` may use: shared, their team's, their own."""
    return or_(QuickReply.owner_user_id == user.id,
               (QuickReply.owner_user_id.is_(None)) & (QuickReply.team_id.is_(None)),
               (QuickReply.owner_user_id.is_(None)) & (QuickReply.team_id == user.team_id)
               if user.team_id is not None else QuickReply.id.is_(None))


def _rank(reply: QuickReply) -> int:
    return 0 if reply.owner_user_id is not None else 1 if reply.team_id is not None else 2


async def find(user: User, words: str, *, db_session: AsyncSession) -> tuple[QuickReply | None, list[QuickReply]]:
    """The reply whose shortcut is `words` (the rep's own before their team's before the shared), or
    else the replies whose shortcut, title or text holds every word: (exact, matches)."""
    words = words.strip()
    mine = (await db_session.scalars(select(QuickReply).where(visible_to(user)).order_by(QuickReply.id))).all()
    exact = sorted((r for r in mine if r.shortcut and r.shortcut.lower() == words.lower()), key=_rank)
    if exact:
        return exact[0], []
    terms = [t.lower() for t in words.split()]
    matches = [r for r in mine if all(t in " ".join([r.shortcut or "", r.title, *r.texts.values()]).lower()
                                      for t in terms)]
    return None, sorted(matches, key=_rank)[:SHOWN]


@dataclass(frozen=True)
class Filled:
    text: str
    missing: Sequence[str]  # variables the customer's record could not fill (left blank)


async def for_conversation(reply: QuickReply, conversation: Conversation, rep: User, *,
                           db_session: AsyncSession) -> Filled:
    """The reply filled for the customer of `conversation`: their name as they gave it (never an
    id: a greeting with "wmXy…" in it is worse than none), their lead's company, in the language
    known of them (Chinese when none is)."""
    identity = await db_session.get(Identity, conversation.identity_id)
    contact = await db_session.get(Contact, conversation.contact_id)
    company = await db_session.scalar(select(Lead.company).where(
        Lead.contact_id == conversation.contact_id, Lead.company.is_not(None)).order_by(Lead.id.desc()).limit(1))
    known = (identity.language if identity else None) or (contact.language if contact else None) or "zh"
    name = (contact.display_name if contact else None) or (identity.display_name if identity else None)
    return fill(reply, "en" if known.lower().startswith("en") else "zh", name=name, company=company,
                rep=rep.display_name or rep.username)


def fill(reply: QuickReply, lang: str, *, name: str | None, company: str | None, rep: str) -> Filled:
    """The reply's words in `lang` (else its other language) with the variables filled."""
    text = reply.texts.get(lang) or reply.texts.get("en" if lang == "zh" else "zh") or ""
    values = {"name": name or "", "company": company or "", "rep": rep, "link": reply.link_url or ""}
    used = {field for _, field, _, _ in string.Formatter().parse(text) if field}
    return Filled(text.format(**values).strip(), sorted(v for v in used if not values.get(v)))
