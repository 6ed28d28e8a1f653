"""Small SQL helpers that differ between SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


async def insert_ignoring_conflict(
    session: AsyncSession,
    table: Table,
    values: dict[str, Any],
    *,
    conflict_columns: list[str],
    conflict_where: ColumnElement[bool] | None = None,
) -> int | None:
    """INSERT ... ON CONFLICT DO NOTHING; the new row's id, or None if it existed."""
    dialect = sqlite if session.bind.dialect.name == "sqlite" else postgresql
    stmt = (
        dialect.insert(table)
        .values(**values)
        .on_conflict_do_nothing(index_elements=conflict_columns, index_where=conflict_where)
        .returning(table.c.id)
    )
    return (await session.execute(stmt)).scalar_one_or_none()
