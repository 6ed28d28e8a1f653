"""One process takes a row of work before it calls a platform with it, so that two processes (the
API answering a click, a worker's scheduled job) never make the same WeCom task twice: the row's
status moves from `before` to `after` only while it still is `before`. A row left taken by a
process that stopped mid-call is given up after STALE with the reason, never asked again: the
platform may have done it. A periodic listing of a platform's records (WeCom's moments, its 群发)
is taken the same way, by moving its cursor from the value this process read."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core import accounts
from crm_core.db import utcnow
from crm_core.models import ChannelCursor

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


async def take_cursor(sessions: async_sessionmaker[AsyncSession], account_id: int, name: str, last: str | None,
                      now: str) -> bool:
    """Whether this process moved the account's cursor `name` from `last` (None: not made yet) to
    `now`, and so does the work it stands for; another process that read the same `last` does not."""
    try:
        async with sessions() as session, session.begin():
            if last is None:
                session.add(ChannelCursor(channel_account_id=account_id, name=name, value=now))
                return True
            result = await session.execute(update(ChannelCursor).where(
                ChannelCursor.channel_account_id == account_id, ChannelCursor.name == name,
                ChannelCursor.value == last).values(value=now).execution_options(synchronize_session=False))
            return result.rowcount == 1
    except IntegrityError:
        return False  # another process made the cursor first


async def release_cursor(sessions: async_sessionmaker[AsyncSession], account_id: int, name: str, taken: str,
                         last: str | None) -> None:
    """The work `take_cursor` took failed: the cursor back to `last`, so the next try starts there."""
    async with sessions() as session, session.begin():
        cursor = await session.get(ChannelCursor, (account_id, name))
        if cursor is not None and cursor.value == taken:
            if last is None:
                await session.delete(cursor)
            else:
                cursor.value = last


@dataclass(frozen=True)
class Listing:
    """A periodic listing of a platform's records this process took: from `start` to `now`."""

    start: dt.datetime
    now: dt.datetime
    last: str | None  # the cursor before, for `release_listing`


async def take_listing(sessions: async_sessionmaker[AsyncSession], account_id: int, name: str, *,
                       every: dt.timedelta, window: dt.timedelta, force: bool = False) -> Listing | None:
    """The listing the cursor `name` stands for, when due (every `every`, or `force`) and no other
    process took it: from an hour before the last one (a record the platform lists late is not
    missed), or `window` back the first time, to now."""
    now = utcnow()
    async with sessions() as session:
        last = await accounts.get_cursor(account_id, name, db_session=session)
    since = dt.datetime.fromisoformat(last) if last else None
    if since is not None and now - since < every and not force:
        return None
    if not await take_cursor(sessions, account_id, name, last, now.isoformat()):
        return None  # another process lists them now
    start = max(now - window, since - dt.timedelta(hours=1)) if since else now - window
    return Listing(start, now, last)


async def release_listing(sessions: async_sessionmaker[AsyncSession], account_id: int, name: str,
                          listing: Listing) -> None:
    """The listing failed: the next one starts where this one did."""
    await release_cursor(sessions, account_id, name, listing.now.isoformat(), listing.last)
