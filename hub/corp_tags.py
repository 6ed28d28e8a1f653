"""WeCom corp tags kept in step with the hub's tags (crm_core/contacts/corp_tags.py decides what
changes): each minute, every WeCom app whose tag list WeCom said changed (or not read for an
hour) is read and applied; then contacts whose tags changed in the hub have their WeCom customers
marked to match, hub tags WeCom lacks created first."""

from __future__ import annotations

import datetime as dt
import logging
import time

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels.registry import ChannelRegistry
from channels.tencent_client import ApiError, ApiUnavailable, busy
from channels.wecom.adapter import CUSTOMER_TAGS_CHANGED, TAGS_CHANGED
from crm_core import accounts
from crm_core.contacts import corp_tags
from crm_core.crypto import CredentialCipher
from crm_core.db import utcnow
from crm_core.models import ChannelAccount, ChannelCursor, CorpTag, TagPush

log = logging.getLogger(__name__)
TAGS_READ = "corp_tags_read"  # cursor: when the hub last read the app's tag list
WAIT_FOR_OWNER = dt.timedelta(days=1)  # a WeCom customer's tags wait this long for a rep to own them
READ_EVERY = 3600.0


class CorpTags:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], channels: ChannelRegistry,
                 cipher: CredentialCipher) -> None:
        self.sessions, self.channels, self.cipher = sessions, channels, cipher

    async def run_once(self) -> int:
        """Read changed tag lists, push changed contacts' tags, then read the customers reps tagged in
        WeCom (after the push: a tag just given in the hub is not read away); how many customers were
        marked."""
        async with self.sessions() as session:
            apps = (await session.scalars(select(ChannelAccount).where(
                ChannelAccount.kind == "wecom", ChannelAccount.is_active.is_(True)))).all()
        for account in apps:
            try:
                await self.read_if_due(account.id)
            except (ApiError, ApiUnavailable) as exc:
                log.warning("WeCom app %s: corp tags not read (%s); read again next minute", account.id, exc)
        marked = await self.push()
        for account in apps:
            try:
                await self.read_edited(account.id)
            except (ApiError, ApiUnavailable) as exc:
                log.warning("WeCom app %s: customers' tags not read (%s); read again next minute", account.id, exc)
        return marked

    async def read_edited(self, account_id: int) -> int:
        """The customers WeCom said a rep edited (edit_external_contact): their corp tags read and
        applied to their contact; how many."""
        async with self.sessions() as session:
            edited = dict((await session.execute(select(ChannelCursor.name, ChannelCursor.value).where(
                ChannelCursor.channel_account_id == account_id,
                ChannelCursor.name.like(CUSTOMER_TAGS_CHANGED + "%")))).all())
            adapter, ref = await self._adapter(account_id, session)
        for name, value in edited.items():
            external, _, userid = name.removeprefix(CUSTOMER_TAGS_CHANGED).partition("|")
            names = await adapter.customer_corp_tags(ref, external, userid)
            async with self.sessions() as session, session.begin():
                if names is not None:
                    await corp_tags.apply_customer_tags(account_id, external, names, userid, db_session=session)
                await session.execute(delete(ChannelCursor).where(  # unless WeCom said it changed again
                    ChannelCursor.channel_account_id == account_id, ChannelCursor.name == name,
                    ChannelCursor.value == value))
        return len(edited)

    async def read_if_due(self, account_id: int, *, force: bool = False) -> corp_tags.TagChanges | None:
        async with self.sessions() as session, session.begin():
            changed = float(await accounts.get_cursor(account_id, TAGS_CHANGED, db_session=session) or 0)
            read = float(await accounts.get_cursor(account_id, TAGS_READ, db_session=session) or 0)
            if not force and read and changed <= read and time.time() - read < READ_EVERY:
                return None
            adapter, ref = await self._adapter(account_id, session)
            started = time.time()
            tags = [corp_tags.Tag(**t) for t in await adapter.corp_tags(ref)]
            changes = await corp_tags.apply_list(account_id, tags, db_session=session)
            await accounts.set_cursor(account_id, TAGS_READ, str(started), db_session=session)
        if changes.renamed or changes.deleted:
            log.info("WeCom app %s: corp tags renamed %s, deleted %s", account_id, changes.renamed, changes.deleted)
        return changes

    async def push(self, limit: int = 200) -> int:
        marked = 0
        async with self.sessions() as session:
            pending = (await session.execute(select(TagPush.id, TagPush.contact_id, TagPush.removed, TagPush.created_at)
                                             .order_by(TagPush.id).limit(limit))).all()
        for contact_id in dict.fromkeys(row[1] for row in pending):
            removed = {name for _, c, names, _ in pending if c == contact_id for name in names or []}
            async with self.sessions() as session, session.begin():
                found = await corp_tags.markings(contact_id, removed, db_session=session)
                first = min(at for _, c, _, at in pending if c == contact_id)
                if not found and await corp_tags.awaits_owner(contact_id, db_session=session) \
                        and utcnow() - first < WAIT_FOR_OWNER:
                    continue  # a WeCom customer no rep owns yet (the add is being processed): pushed later
                for marking in found:
                    if not (marking.add or marking.remove or marking.missing):
                        continue
                    adapter, ref = await self._adapter(marking.account_id, session)
                    try:
                        add = marking.add + await self._create(adapter, ref, marking, session)
                        await adapter.mark_tag(ref, userid=marking.userid, external_userid=marking.external_userid,
                                               add=add, remove=marking.remove)
                        marked += 1
                    except (ApiUnavailable, ApiError) as exc:
                        if isinstance(exc, ApiError) and not busy(exc):
                            log.warning("WeCom refused the tags of contact %s for %s (%s %s)", contact_id,
                                        marking.external_userid, exc.errcode, exc.errmsg)
                            continue
                        log.warning("tags of contact %s not pushed to WeCom (%s); tried again next minute",
                                    contact_id, exc)
                        return marked  # the rows stay: pushed on the next run
                await session.execute(delete(TagPush).where(TagPush.contact_id == contact_id,
                                                            TagPush.id <= max(i for i, c, _, _ in pending
                                                                              if c == contact_id)))
        return marked

    async def rename(self, old: str, new: str) -> int:
        """The corp tag named `old` is renamed `new` on every WeCom app that has it (edit_corp_tag);
        ValueError with WeCom's reason where it refuses. How many apps changed it."""
        return await self._each(old, lambda adapter, ref, row: adapter.edit_corp_tag(ref, row.tag_id, new),
                                after=lambda row: setattr(row, "name", new))

    async def delete(self, name: str) -> int:
        """The corp tag named `name` is deleted on every WeCom app that has it (del_corp_tag)."""
        return await self._each(name, lambda adapter, ref, row: adapter.delete_corp_tags(ref, [row.tag_id]),
                                after=None)

    async def _each(self, name: str, call, *, after) -> int:
        done = 0
        async with self.sessions() as session, session.begin():
            rows = (await session.scalars(select(CorpTag).where(CorpTag.name == name))).all()
            for row in rows:
                adapter, ref = await self._adapter(row.channel_account_id, session)
                try:
                    await call(adapter, ref, row)
                except ApiError as exc:
                    raise ValueError(f"WeCom app {row.channel_account_id} refused ({exc.errcode}): {exc.errmsg}") \
                        from None
                if after is None:
                    await session.delete(row)
                else:
                    after(row)
                done += 1
        return done

    async def _create(self, adapter, ref, marking: corp_tags.Marking, session: AsyncSession) -> list[str]:
        """Corp tags for hub tags WeCom lacks, in the hub's group; their ids."""
        if not marking.missing:
            return []
        made = await adapter.add_corp_tags(ref, corp_tags.HUB_GROUP, marking.missing)
        for tag in made:
            session.add(CorpTag(channel_account_id=marking.account_id, **tag))
        await session.flush()
        return [tag["tag_id"] for tag in made]

    async def _adapter(self, account_id: int, session: AsyncSession):
        account = await session.get(ChannelAccount, account_id)
        return self.channels.get(account.kind), accounts.to_ref(account, self.cipher)
