"""Small SQL helpers that differ between SQLite and PostgreSQL."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Boolean, ColumnElement, Table, Text, bindparam
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.sql.visitors import InternalTraversal
from sqlalchemy.types import TypeDecorator, TypeEngine


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
    session: AsyncSession | AsyncConnection,
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


async def insert_many_returning_ids(session: AsyncSession | AsyncConnection, table: Table,
                                    rows: Sequence[dict[str, Any]], *, matched_by: tuple[str, ...]) -> list[int]:
    """INSERT of many rows as one executemany; the new rows' ids, in the order of `rows`. Each is
    found again by its `matched_by` columns, not by the order RETURNING gives: SQLite promises
    none, and asking for it costs a statement a row. Rows alike in those columns are
    interchangeable; the first of them gets the lowest id."""
    found: dict[tuple[Any, ...], list[int]] = {}
    for row_id, *key in (await session.execute(_insert_returning(table, matched_by), list(rows))).all():
        found.setdefault(tuple(key), []).append(row_id)
    for ids in found.values():
        ids.sort(reverse=True)  # popped from the end: the lowest first
    return [found[tuple(row[name] for name in matched_by)].pop() for row in rows]


@functools.cache
def _insert_returning(table: Table, matched_by: tuple[str, ...]) -> Any:
    # Into the table, not an entity: SQLAlchemy's ORM bulk insert goes through the mapper for each row.
    return table.insert().returning(table.c.id, *(table.c[name] for name in matched_by))


class _Listed(TypeDecorator[list[Any]]):
    """A list of integers or strings bound as one parameter: a PostgreSQL array, a JSON array on
    SQLite (read back with json_each)."""

    impl = Text
    cache_ok = True

    def __init__(self, item: TypeEngine[Any]) -> None:
        super().__init__()
        self.item = item

    def load_dialect_impl(self, dialect: Any) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.ARRAY(self.item))
        return dialect.type_descriptor(Text())

    def process_bind_param(self, value: Iterable[Any] | None, dialect: Any) -> Any:
        if value is None:
            return None
        return list(value) if dialect.name == "postgresql" else json.dumps(list(value))


class _Among(ColumnElement[bool]):
    inherit_cache = True
    type = Boolean()
    _is_implicitly_boolean = True  # a predicate: in a WHERE as it is (not "... = 1" on SQLite)
    _traverse_internals = [("column", InternalTraversal.dp_clauseelement),
                           ("values", InternalTraversal.dp_clauseelement)]

    def __init__(self, column: ColumnElement[Any], values: BindParameter[Any]) -> None:
        self.column = column
        self.values = values


@compiles(_Among)
def _among_as_any(element: _Among, compiler: Any, **kw: Any) -> str:
    return f"{compiler.process(element.column, **kw)} = ANY ({compiler.process(element.values, **kw)})"


@compiles(_Among, "sqlite")
def _among_from_json(element: _Among, compiler: Any, **kw: Any) -> str:
    values = compiler.process(element.values, **kw)
    return f"{compiler.process(element.column, **kw)} IN (SELECT value FROM json_each({values}))"


def among(column: Any, values: Iterable[int] | Iterable[str] | None = None, *, name: str | None = None
          ) -> ColumnElement[bool]:
    """`column IN values` for a batch's hundreds of ids or keys, the values bound as one parameter
    (`values`, or a list given as `name` when the statement runs). SQLAlchemy's IN binds and names
    each value at every execution (0.56 us a value: for the planner's ten lists of 500, a tenth of
    its time), and on PostgreSQL each length of list is another statement to prepare."""
    if name is not None:
        return _Among(column, bindparam(name, type_=_Listed(column.type)))
    assert values is not None
    return _Among(column, bindparam(None, list(values), type_=_Listed(column.type), unique=True))
