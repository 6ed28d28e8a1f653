"""One process takes a row of work before it calls a platform with it, so that two processes (the
API answering a click, a worker's scheduled job) never make the same WeCom task twice: the row's
status moves from `before` to `after` only while it still is `before`. A row left taken by a
process that stopped mid-call is given up after STALE with the reason, never asked again: the
platform may have done it."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.db import utcnow

STALE = dt.timedelta(minutes=10)
UNKNOWN = "the hub stopped while asking WeCom; whether WeCom did it is not known: check in WeCom"


async def claim(sessions: async_sessionmaker[AsyncSession], model: Any, row_id: int, *, before: str, after: str,
                stamp: str) -> bool:
    """Whether this process took the row (its `stamp` column set to now)."""
    async with sessions() as session, session.begin():
        result = await session.execute(update(model).where(model.id == row_id, model.status == before)
                                       .values(status=after, **{stamp: utcnow()})
                                       .execution_options(synchronize_session=False))
        return result.rowcount == 1


async def give_up_stale(sessions: async_sessionmaker[AsyncSession], model: Any, *, taken: str, stamp: str) -> int:
    """Rows left taken longer than STALE: failed, with why; how many."""
    async with sessions() as session, session.begin():
        result = await session.execute(update(model).where(model.status == taken,
                                                           getattr(model, stamp) < utcnow() - STALE)
                                       .values(status="failed", reason=UNKNOWN)
                                       .execution_options(synchronize_session=False))
        return result.rowcount or 0
