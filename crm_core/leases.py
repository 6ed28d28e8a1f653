"""Named leases: one process at a time does a thing (polls a bot, plans a campaign)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, or_, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.db import utcnow
from crm_core.models import Lease
from crm_core.sql import dialect_of


async def acquire(name: str, owner: str, ttl_seconds: float, *, db_session: AsyncSession) -> bool:
    """Take or renew the lease; False if another live owner holds it."""
    now = utcnow()
    expires = now + dt.timedelta(seconds=ttl_seconds)
    renewed = await db_session.execute(
        update(Lease)
        .where(Lease.name == name, or_(Lease.owner == owner, Lease.expires_at < now))
        .values(owner=owner, expires_at=expires)
        .execution_options(synchronize_session=False)
    )
    if renewed.rowcount == 1:
        return True
    inserted = await db_session.execute(
        dialect_of(db_session).insert(Lease.__table__)
        .values(name=name, owner=owner, expires_at=expires)
        .on_conflict_do_nothing(index_elements=["name"])
    )
    return inserted.rowcount == 1


async def release(name: str, owner: str, *, db_session: AsyncSession) -> None:
    await db_session.execute(delete(Lease).where(Lease.name == name, Lease.owner == owner))
