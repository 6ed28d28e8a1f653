"""The FAQ index each channel account's conversations search, kept until its entries change."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.knowledge.faq import LANGUAGES, entries_for, visible_to
from crm_core.models import FaqEntry
from nlp.faq import FaqIndex, FaqItem


class FaqIndexes:
    """One index per channel account, rebuilt when an entry it covers changed."""

    def __init__(self) -> None:
        self._built: dict[int | None, tuple[tuple[Any, ...], FaqIndex]] = {}

    async def index_for(self, channel_account_id: int | None, *, db_session: AsyncSession) -> FaqIndex:
        version = await _version(channel_account_id, db_session)
        built = self._built.get(channel_account_id)
        if built is not None and built[0] == version:
            return built[1]
        entries = await entries_for(channel_account_id, db_session=db_session)
        index = FaqIndex([FaqItem(e.id, tuple(q for lang in LANGUAGES for q in e.questions.get(lang, [])),
                                  dict(e.answers), e.image_url, e.link_url) for e in entries],
                         [group for e in entries for group in e.synonyms])
        self._built[channel_account_id] = (version, index)
        return index


# The entries an account sees, the account bound when it runs (an account of None sees everyone's
# only, as visible_to(None): `= NULL` is never true). Built once: asked at each of the worker's
# transactions.
# Without flushing the session first: the worker that asks never changes an FAQ entry.
_VERSION = (select(func.count(FaqEntry.id), func.max(FaqEntry.updated_at), func.max(FaqEntry.id))
            .where(visible_to(bindparam("account"))).execution_options(autoflush=False))


async def _version(channel_account_id: int | None, db_session: AsyncSession) -> tuple[Any, ...]:
    """What says whether the entries an account sees changed, read once a transaction: the worker
    answers a batch of messages in one, and an edit reaches the bot at its next."""
    transaction = db_session.sync_session.get_transaction()
    seen = db_session.info.get("faq_versions")
    if seen is None or seen[0] is not transaction:
        seen = db_session.info["faq_versions"] = (transaction, {})
    if channel_account_id not in seen[1]:
        # Every entry, active or not: deactivating one changes its updated_at too.
        seen[1][channel_account_id] = tuple((await db_session.execute(
            _VERSION, {"account": channel_account_id})).one())
    return seen[1][channel_account_id]
