"""The FAQ index each channel account's conversations search, kept until its entries change."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.knowledge.faq import LANGUAGES, entries_for, visible_to
from crm_core.models import FaqEntry
from nlp.faq import FaqIndex, FaqItem


class FaqIndexes:
    """One index per channel account, rebuilt when an entry it covers changed."""

    def __init__(self) -> None:
        self._built: dict[int | None, tuple[tuple[Any, ...], FaqIndex]] = {}

    async def index_for(self, channel_account_id: int | None, *, db_session: AsyncSession) -> FaqIndex:
        # Every entry, active or not: deactivating one changes its updated_at too.
        version = tuple((await db_session.execute(
            select(func.count(FaqEntry.id), func.max(FaqEntry.updated_at), func.max(FaqEntry.id))
            .where(visible_to(channel_account_id)))).one())
        built = self._built.get(channel_account_id)
        if built is not None and built[0] == version:
            return built[1]
        entries = await entries_for(channel_account_id, db_session=db_session)
        index = FaqIndex([FaqItem(e.id, tuple(q for lang in LANGUAGES for q in e.questions.get(lang, [])),
                                  dict(e.answers), e.image_url, e.link_url) for e in entries],
                         [group for e in entries for group in e.synonyms])
        self._built[channel_account_id] = (version, index)
        return index
