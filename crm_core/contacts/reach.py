"""How to reach a person: the language to speak to them in, and an identity the platform says
is unreachable (blocked, unfollowed, deleted) so that nothing more is sent to it."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.db import utcnow
from crm_core.models import BotSession, Contact, Identity


async def spoken_language(contact_id: int, *, db_session: AsyncSession, identity_id: int | None = None) -> str:
    """"zh" or "en": what the bot last spoke with them, else their app's language, else Chinese."""
    spoken = await db_session.scalar(select(BotSession.language).where(BotSession.contact_id == contact_id))
    identity = await db_session.get(Identity, identity_id) if identity_id is not None else None
    contact = await db_session.get(Contact, contact_id)
    for language in (spoken, identity.language if identity else None, contact.language if contact else None):
        if language:
            return "zh" if language.lower().startswith("zh") else "en"
    return "zh"


async def mark_identity_unreachable(identity_id: int, reason: str, *, db_session: AsyncSession) -> None:
    """The platform says this identity cannot be reached: the dispatcher sends nothing more to it."""
    await db_session.execute(
        update(Identity)
        .where(Identity.id == identity_id)
        .values(reachable=False, unreachable_reason=reason, unreachable_since=utcnow())
    )
