"""WeCom customer groups kept current (crm_core/contacts/groups.py keeps them): each minute the
groups WeCom said changed (`change_external_chat` on the app's callback) are read again with
groupchat/get; every hour, and on demand, every group of every WeCom app is (groupchat/list)."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import Counter

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels.registry import ChannelRegistry
from channels.tencent_client import ApiError, ApiUnavailable
from channels.wecom.adapter import GROUP_CHANGED
from crm_core import accounts
from crm_core.contacts import groups
from crm_core.crypto import CredentialCipher
from crm_core.models import ChannelAccount, ChannelCursor, CustomerGroup, CustomerGroupLeave, GroupJoinWay

log = logging.getLogger(__name__)
LISTED = "groups_listed"  # cursor: when every group of the app was last read
LIST_EVERY = 3600.0


class CustomerGroups:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], channels: ChannelRegistry,
                 cipher: CredentialCipher) -> None:
        self.sessions, self.channels, self.cipher = sessions, channels, cipher

    async def run_once(self, *, everything: bool = False) -> int:
        """Read the changed groups (all of them when due or `everything`); how many were read."""
        async with self.sessions() as session:
            apps = (await session.scalars(select(ChannelAccount).where(
                ChannelAccount.kind == "wecom", ChannelAccount.is_active.is_(True)))).all()
        read = 0
        for account in apps:
            try:
                read += await self._sync(account.id, everything=everything)
            except (ApiError, ApiUnavailable) as exc:
                log.warning("WeCom app %s: customer groups not read (%s); read again next minute", account.id, exc)
        return read

    async def save_join_way(self, way: GroupJoinWay, *, db_session: AsyncSession) -> None:
        """Make the group QR code in WeCom, or update it, and its welcome template; ValueError with
        WeCom's reason when refused."""
        account = await db_session.get(ChannelAccount, way.channel_account_id)
        adapter, ref = self.channels.get(account.kind), accounts.to_ref(account, self.cipher)
        try:
            way.config_id, qr_code = await adapter.save_join_way(
                ref, config_id=way.config_id, remark=way.name, state=way.state, chat_ids=list(way.chat_ids),
                auto_create_room=way.auto_create_room, room_base_name=way.room_base_name)
            if way.welcome:
                way.welcome_template_id = await adapter.group_welcome_template(ref, way.welcome,
                                                                               way.welcome_template_id,
                                                                               way.welcome_card)
        except ApiError as exc:
            raise ValueError(f"WeCom refused ({exc.errcode}): {exc.errmsg}") from None
        way.qr_code = qr_code or way.qr_code

    async def delete_join_way(self, way: GroupJoinWay, *, db_session: AsyncSession) -> None:
        if way.config_id:
            account = await db_session.get(ChannelAccount, way.channel_account_id)
            await self.channels.get(account.kind).delete_join_way(accounts.to_ref(account, self.cipher),
                                                                  way.config_id)

    async def statistics(self, account_id: int, owners: list[str], days: int) -> list[dict]:
        """The owners' groups per day for the last `days` (at most 30), as WeCom counts them, with
        the members who left each day as the hub saw them go (WeCom does not count departures)."""
        china = dt.timezone(dt.timedelta(hours=8))
        today = dt.datetime.now(china).date()
        first = today - dt.timedelta(days=days - 1)
        async with self.sessions() as session:
            account = await session.get(ChannelAccount, account_id)
            adapter, ref = self.channels.get(account.kind), accounts.to_ref(account, self.cipher)
            gone = (await session.scalars(select(CustomerGroupLeave.left_at).join(
                CustomerGroup, CustomerGroup.id == CustomerGroupLeave.group_id).where(
                CustomerGroup.channel_account_id == account_id, CustomerGroup.owner_userid.in_(owners),
                CustomerGroupLeave.left_at >= dt.datetime.combine(first, dt.time(), china)))).all()
        left = Counter(at.astimezone(china).date().isoformat() for at in gone)
        return [{**day, "left": left.get(day["day"], 0)}
                for day in await adapter.group_statistics(ref, owners, first, today)]

    async def _sync(self, account_id: int, *, everything: bool) -> int:
        async with self.sessions() as session:
            account = await session.get(ChannelAccount, account_id)
            adapter, ref = self.channels.get(account.kind), accounts.to_ref(account, self.cipher)
            listed = float(await accounts.get_cursor(account_id, LISTED, db_session=session) or 0)
            changed = dict((await session.execute(select(ChannelCursor.name, ChannelCursor.value).where(
                ChannelCursor.channel_account_id == account_id,
                ChannelCursor.name.like(GROUP_CHANGED + "%")))).all())
        chat_ids = [name.removeprefix(GROUP_CHANGED) for name in changed]
        full = everything or time.time() - listed >= LIST_EVERY
        started = time.time()
        if full:
            chat_ids = list(dict.fromkeys([*await adapter.group_ids(ref), *chat_ids]))
        for chat_id in chat_ids:
            chat = await adapter.group(ref, chat_id)
            async with self.sessions() as session, session.begin():
                if chat is None:
                    await groups.dismissed(account_id, chat_id, db_session=session)
                else:
                    await groups.apply_group(account_id, chat, db_session=session)
                name = GROUP_CHANGED + chat_id
                if name in changed:  # unless WeCom said it changed again meanwhile
                    await session.execute(delete(ChannelCursor).where(
                        ChannelCursor.channel_account_id == account_id, ChannelCursor.name == name,
                        ChannelCursor.value == changed[name]))
        if full:
            async with self.sessions() as session, session.begin():
                await accounts.set_cursor(account_id, LISTED, str(started), db_session=session)
        return len(chat_ids)
