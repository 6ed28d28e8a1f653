"""Settings changed in the admin panel: stored over the environment's, versioned by their
newest change, audited with the old and new values. Which settings may change, and how
they are checked and applied, is the hub's business (hub/live_settings.py)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core import audit
from crm_core.db import utcnow
from crm_core.models import HubSetting, User


async def stored(*, db_session: AsyncSession) -> dict[str, Any]:
    return {row.key: row.value.get("value") for row in (await db_session.scalars(select(HubSetting))).all()}


async def version(*, db_session: AsyncSession) -> tuple[int, dt.datetime | None]:
    """Changes when any stored setting does (a new key, a new value, one reset)."""
    count, newest = (await db_session.execute(
        select(func.count(), func.max(HubSetting.updated_at)))).one()
    return count, newest


async def save(changes: dict[str, Any], *, actor: User | None, db_session: AsyncSession) -> dict[str, Any]:
    """Store `changes` (None resets a key to the environment's value); the previous values."""
    before = await stored(db_session=db_session)
    now = utcnow()
    for key, value in changes.items():
        row = await db_session.get(HubSetting, key)
        if value is None:
            if row is not None:
                await db_session.delete(row)
            continue
        if row is None:
            db_session.add(HubSetting(key=key, value={"value": value}, updated_at=now,
                                      updated_by_user_id=actor.id if actor else None))
        else:
            row.value, row.updated_at = {"value": value}, now
            row.updated_by_user_id = actor.id if actor else None
    await db_session.flush()
    await audit.record("settings.update", entity_type="settings", entity_id=None, actor=actor,
                       details={"changes": changes, "before": {k: before.get(k) for k in changes}},
                       db_session=db_session)
    return before
