"""A 微信客服 pull in a process of its own, for the test that kills it with SIGKILL between a page's
pull and its commit: `python -m tests.fakes.kf_pull DATABASE_URL SECRET ACCOUNT_ID OPEN_KFID PAGE
[KILL_ON_PAGE]`. Pages are PAGE messages long; with KILL_ON_PAGE the process kills itself once
that page's messages and cursor are written in its transaction, before the commit."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Sequence

from channels.wecom_kf import adapter as kf
from crm_core import accounts
from crm_core.conversations.ingest import ingest_batch
from crm_core.crypto import CredentialCipher
from crm_core.db import create_engine, session_factory
from crm_core.models import ChannelAccount
from crm_core.ports import InboundEvent


async def main(url: str, secret: str, account_id: int, open_kfid: str, page: int, kill_on: int | None) -> None:
    kf.MAX_PULL = page
    engine = create_engine(url)
    sessions = session_factory(engine)
    async with sessions() as session:
        ref = accounts.to_ref(await session.get(ChannelAccount, account_id), CredentialCipher(secret))
    pages = 0

    async def sink(account: int, events: Sequence[InboundEvent], cursor: tuple[str, str] | None = None) -> list[int]:
        nonlocal pages
        pages += 1
        async with sessions() as session, session.begin():
            [result] = await ingest_batch([(account, events)], db_session=session)
            if cursor is not None:
                await accounts.set_cursor(account, *cursor, db_session=session)
            await session.flush()
            if pages == kill_on:
                os.kill(os.getpid(), signal.SIGKILL)  # pulled and written, not committed
        return result.stored_message_ids

    async def load_cursor(name: str) -> str | None:
        async with sessions() as session:
            return await accounts.get_cursor(account_id, name, db_session=session)

    adapter = kf.WeComKfAdapter()
    try:
        print("pulled", await kf.KfPoller(adapter, ref, sink, load_cursor).pull(open_kfid, None), flush=True)
    finally:
        await adapter.close()
        await engine.dispose()


if __name__ == "__main__":
    args = sys.argv[1:]
    asyncio.run(main(args[0], args[1], int(args[2]), args[3], int(args[4]), int(args[5]) if len(args) > 5 else None))
