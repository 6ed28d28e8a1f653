"""WeCom contact ways (渠道活码) kept in step with WeCom: the code is made and changed with the app's
adapter, and who is on it follows the rota (`crm_core.campaigns.contact_ways.rota_users`): each
minute the hub compares the rota with who WeCom has on the code and updates the code where they
differ (a rep reached the daily cap, working hours began or ended, a rep left the team). A
round-robin code (one rep at a time) is also moved on right after the worker processed an add
(`soon`), so the next customer gets the next rep."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels.registry import ChannelRegistry
from crm_core import accounts
from crm_core.campaigns.contact_ways import ContactWayInvalid, rota_users
from crm_core.crypto import CredentialCipher
from crm_core.models import ChannelAccount, ContactWay

log = logging.getLogger(__name__)


class ContactWays:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], channels: ChannelRegistry,
                 cipher: CredentialCipher) -> None:
        self.sessions, self.channels, self.cipher = sessions, channels, cipher
        self._soon: asyncio.Task[None] | None = None

    async def save(self, way: ContactWay, *, db_session: AsyncSession) -> None:
        """Make the code in WeCom, or update it, with the rota's users now; ContactWayInvalid with
        WeCom's reason when it refuses, or when the rota has nobody to put on the code."""
        account = await db_session.get(ChannelAccount, way.channel_account_id)
        users = await rota_users(way, db_session=db_session)
        if not users:
            raise ContactWayInvalid("nobody is on the rota now (outside working hours, or every rep is at the daily "
                                    "cap): choose a fallback rep")
        adapter = self.channels.get(account.kind)
        try:
            config_id, qr_code = await adapter.save_contact_way(
                accounts.to_ref(account, self.cipher), config_id=way.config_id, state=way.state, users=users,
                remark=way.name, skip_verify=way.skip_verify)
        except ValueError as exc:
            raise ContactWayInvalid(str(exc)) from None
        way.config_id, way.on_code = config_id, users
        way.qr_code = qr_code or way.qr_code

    async def delete(self, way: ContactWay, *, db_session: AsyncSession) -> None:
        if way.config_id:
            account = await db_session.get(ChannelAccount, way.channel_account_id)
            try:
                await self.channels.get(account.kind).delete_contact_way(accounts.to_ref(account, self.cipher),
                                                                         way.config_id)
            except ValueError as exc:
                raise ContactWayInvalid(str(exc)) from None

    def soon(self) -> None:
        """The worker processed messages (an add among them, maybe): the round-robin codes are
        moved on shortly, once for a burst."""
        if self._soon is None or self._soon.done():
            self._soon = asyncio.create_task(self._refresh_round_robin(), name="contact-way-round-robin")

    async def close(self) -> None:
        """A round-robin move under way is finished (it is one WeCom call), not cut off."""
        if self._soon is not None:
            await asyncio.gather(self._soon, return_exceptions=True)

    async def _refresh_round_robin(self) -> None:
        await asyncio.sleep(0.2)  # the rest of a burst of adds first
        try:
            await self.refresh(round_robin_only=True)
        except Exception:
            log.exception("round-robin contact ways not moved on; the minute's refresh will")

    async def refresh(self, *, round_robin_only: bool = False) -> int:
        """Update the codes whose rota changed who should be on them; how many were updated."""
        async with self.sessions() as session:
            rows = (await session.execute(select(ContactWay.id, ContactWay.rota).where(
                ContactWay.is_active.is_(True), ContactWay.config_id.is_not(None)))).all()
        ids = [way_id for way_id, rota in rows if not round_robin_only or (rota or {}).get("round_robin")]
        updated = 0
        for way_id in ids:
            async with self.sessions() as session, session.begin():
                way = await session.get(ContactWay, way_id)
                users = await rota_users(way, db_session=session)
                if not users or users == list(way.on_code or []):
                    continue  # nobody to put on it: WeCom needs one, so the code stays as it is
                try:
                    await self.save(way, db_session=session)
                    updated += 1
                except ContactWayInvalid as exc:
                    log.warning("contact way %s (%s): the rota could not be applied: %s", way.id, way.name, exc)
        return updated
