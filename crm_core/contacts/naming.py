"""What to call a contact who never gave a name: the nickname a channel gave them, else the
channel and their id there ("WeChat follower oDemo12"), never a bare "#8"."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.accounts import channel_name
from crm_core.models import ChannelAccount, Contact, Identity


async def shown_names(contacts: Sequence[Contact], *, db_session: AsyncSession) -> dict[int, str]:
    """Contact id -> the name to show: their own, else their first identity's nickname or
    username, else "<channel> <id there>"."""
    unnamed = [c.id for c in contacts if not c.display_name]
    nicknames: dict[int, str] = {}
    labels: dict[int, str] = {}
    if unnamed:
        rows = (await db_session.execute(
            select(Identity.contact_id, Identity.display_name, Identity.username, Identity.external_id,
                   ChannelAccount.kind)
            .join(ChannelAccount, ChannelAccount.id == Identity.channel_account_id)
            .where(Identity.contact_id.in_(unnamed)).order_by(Identity.id))).all()
        for contact_id, nickname, username, external_id, kind in rows:
            if nickname or username:
                nicknames.setdefault(contact_id, nickname or username)
            labels.setdefault(contact_id, f"{channel_name(kind, 'en')} {external_id[:16]}")
    return {c.id: c.display_name or nicknames.get(c.id) or labels.get(c.id) or f"#{c.id}" for c in contacts}
