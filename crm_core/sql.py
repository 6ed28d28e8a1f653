"""Small SQL helpers that differ between SQLite and PostgreSQL."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession


def dialect_of(session: AsyncSession | AsyncConnection) -> Any:
    """The SQLAlchemy dialect module (for insert ... on_conflict) of the session's (or connection's)
    database."""
    bind = session if isinstance(session, AsyncConnection) else session.bind
    return sqlite if bind.dialect.name == "sqlite" else postgresql


async def insert_ignoring_conflict(
    session: AsyncSession | AsyncConnection,
    table: Table,
    values: dict[str, Any],
    *,
    conflict_columns: list[str],
    conflict_where: ColumnElement[bool] | None = None,
) -> int | None:
    """INSERT ... ON CONFLICT DO NOTHING; the new row's id, or None if it existed. On a session's
    connection, the session's pending changes are not flushed first."""
    if conflict_where is None:  # one statement for the table, its values bound: built and keyed once
        stmt = _insert_ignoring(dialect_of(session), table, tuple(conflict_columns), table.c.id)
        return (await session.execute(stmt, values)).scalar_one_or_none()
    stmt = (
        dialect_of(session).insert(table)
        .values(**values)
        .on_conflict_do_nothing(index_elements=conflict_columns, index_where=conflict_where)
        .returning(table.c.id)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


@functools.cache
def _insert_ignoring(dialect: Any, into: Any, conflict_columns: tuple[str, ...], returning: Any) -> Any:
    """INSERT into a table or an entity, ON CONFLICT DO NOTHING RETURNING `returning`, its values
    given when it runs: a statement made once, so SQLAlchemy neither builds it nor works out its
    cache key again for each row."""
    return dialect.insert(into).on_conflict_do_nothing(index_elements=list(conflict_columns)).returning(returning)


async def insert_many_ignoring_conflict(
    session: AsyncSession,
    table: Table,
    rows: Sequence[dict[str, Any]],
    *,
    conflict_columns: list[str],
    returning: tuple[str, ...] = (),
    conflict_where: ColumnElement[bool] | None = None,
) -> list[tuple[Any, ...]]:
    """INSERT ... ON CONFLICT DO NOTHING of many rows; `returning` columns of the rows inserted
    (none asked: nothing returned, and the rows go as a plain executemany).

    Executed as an executemany, which SQLAlchemy sends as batched multi-row
    VALUES from one cached statement ("insertmanyvalues"), whatever the count.
    """
    if not rows:
        return []
    stmt = (
        dialect_of(session).insert(table)
        .on_conflict_do_nothing(index_elements=conflict_columns, index_where=conflict_where)
    )
    if not returning:
        await session.execute(stmt, list(rows))
        return []
    stmt = stmt.returning(*(table.c[name] for name in returning))
    return [tuple(row) for row in (await session.execute(stmt, list(rows))).all()]
