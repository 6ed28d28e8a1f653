"""Small SQL helpers that differ between SQLite and PostgreSQL."""

from __future__ import annotations

import functools
import json
import operator
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import JSON, Boolean, ColumnElement, DateTime, String, Table, Text, bindparam, text
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
    conflict_columns: Sequence[str],
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


async def insert_many(db: AsyncSession | AsyncConnection, table: Table, rows: Sequence[dict[str, Any]], *,
                      same: dict[str, Any] | None = None, conflict_columns: tuple[str, ...] = (),
                      conflict_where: str | None = None, returning: tuple[str, ...] = ()) -> list[tuple[Any, ...]]:
    """INSERT of many rows in one statement, their values bound as one JSON array (read back with
    SQLite's json_each, PostgreSQL's jsonb_array_elements) and `same`, the values every row shares,
    bound once; ON CONFLICT (`conflict_columns`) [WHERE `conflict_where`, a partial index's
    predicate as SQL] DO NOTHING if given; the `returning` columns of the rows inserted.

    SQLAlchemy's executemany binds and converts each row's values one by one (about 4 us a row of a
    dozen columns, an eighth of the campaign planner's time); one json.dumps carries them all here.
    The rows' values are what JSON carries (numbers, strings, booleans, None, a JSON column's lists
    and dicts) or times; every row has the same keys. On a session, its pending changes are not
    flushed first."""
    if not rows:
        return []
    names = tuple(rows[0])
    same = {**_defaults(table, names, tuple(same or ())), **(same or {})}
    stmt, times = _insert_many(dialect_of(db), table, names, tuple(same), conflict_columns, conflict_where, returning)
    result = await db.execute(stmt, {"rows": _as_json(rows, names, times), **same})
    return [tuple(row) for row in result.all()] if returning else []


async def update_many(db: AsyncSession | AsyncConnection, table: Table, rows: Sequence[dict[str, Any]], *,
                      key: str = "id", kept_when_none: tuple[str, ...] = ()) -> None:
    """UPDATE of many rows in one statement, each found by its `key` column (given once among the
    rows) and set to its own values, bound as one JSON array as `insert_many` binds them; a column
    of `kept_when_none` keeps its value where a row gives None for it. SQLAlchemy's executemany
    binds and converts each row's values one by one, then runs the statement once a row. The
    values are what `insert_many` takes; every row has the same keys."""
    if not rows:
        return
    names = tuple(rows[0])
    stmt, times = _update_many(dialect_of(db), table, names, key, kept_when_none)
    await db.execute(stmt, {"rows": _as_json(rows, names, times)})


def _as_json(rows: Sequence[dict[str, Any]], names: tuple[str, ...],
             times: list[tuple[int, Callable[[Any], Any]]]) -> str:
    values = [[row[name] for name in names] for row in rows]
    for index, convert in times:
        for row in values:
            row[index] = convert(row[index])
    return json.dumps(values)


def _defaults(table: Table, names: tuple[str, ...], same: tuple[str, ...]) -> dict[str, Any]:
    """The Python-side defaults (`mapped_column(default=...)`) of the columns given neither way,
    as SQLAlchemy's own INSERT would fill them; a callable's once for the statement."""
    return {column.name: column.default.arg(None) if column.default.is_callable else column.default.arg
            for column in _defaulted(table) if column.name not in names and column.name not in same}


@functools.cache
def _defaulted(table: Table) -> list[Any]:
    return [column for column in table.c
            if column.default is not None and (column.default.is_scalar or column.default.is_callable)]


@functools.cache
def _insert_many(database: Any, table: Table, names: tuple[str, ...], same: tuple[str, ...],
                 conflict_columns: tuple[str, ...], conflict_where: str | None, returning: tuple[str, ...]
                 ) -> tuple[Any, list[tuple[int, Callable[[Any], Any]]]]:
    """The statement for `database` (`dialect_of`'s module), and how each row's times become JSON
    (`_rows_read`)."""
    dialect = database.dialect()
    quote = dialect.identifier_preparer.quote
    types = {name: table.c[name].type for name in names + same}
    picked, times = _rows_read(database, table, names, "value")
    source = _json_rows(database)
    if database is sqlite:
        source += " WHERE true"  # the WHERE, or SQLite reads ON CONFLICT as a join's
        shared = [f":{name}" for name in same]
    else:
        shared = [f"CAST(:{name} AS {_read_as(types[name], dialect)})" for name in same]
    sql = (f"INSERT INTO {quote(table.name)} ({', '.join(quote(name) for name in names + same)}) "
           f"SELECT {', '.join(picked + shared)} FROM {source}")
    if conflict_columns:
        sql += f" ON CONFLICT ({', '.join(quote(name) for name in conflict_columns)})"
        sql += f" WHERE {conflict_where} DO NOTHING" if conflict_where else " DO NOTHING"
    if returning:
        sql += f" RETURNING {', '.join(quote(name) for name in returning)}"
    stmt = text(sql).bindparams(bindparam("rows", type_=Text()), *(bindparam(name, type_=types[name]) for name in same))
    return (stmt.columns(*(table.c[name] for name in returning)) if returning else stmt), times


@functools.cache
def _update_many(database: Any, table: Table, names: tuple[str, ...], key: str, kept_when_none: tuple[str, ...]
                 ) -> tuple[Any, list[tuple[int, Callable[[Any], Any]]]]:
    quote = database.dialect().identifier_preparer.quote
    picked, times = _rows_read(database, table, names, "changed.value")
    given = dict(zip(names, picked, strict=True))
    column = {name: f"{quote(table.name)}.{quote(name)}" for name in names}
    sets = [f"{quote(name)} = {f'coalesce({given[name]}, {column[name]})' if name in kept_when_none else given[name]}"
            for name in names if name != key]
    sql = (f"UPDATE {quote(table.name)} SET {', '.join(sets)} FROM {_json_rows(database)} AS changed "
           f"WHERE {column[key]} = {given[key]}")
    return text(sql).bindparams(bindparam("rows", type_=Text())), times


def _json_rows(database: Any) -> str:
    """The rows bound as one JSON array (`:rows`) as a table to select from, each row its `value`."""
    return "json_each(:rows)" if database is sqlite else "jsonb_array_elements(CAST(:rows AS JSONB))"


def _rows_read(database: Any, table: Table, names: tuple[str, ...], value: str
               ) -> tuple[list[str], list[tuple[int, Callable[[Any], Any]]]]:
    """How a statement reads each column of a row bound as a JSON array (`value`, the array's SQL
    name), and how each row's times become JSON: SQLite's stored text, ISO 8601 for PostgreSQL."""
    dialect = database.dialect()
    types = {name: table.c[name].type for name in names}
    times = [(index, _time_as_json(types[name].dialect_impl(dialect).bind_processor(dialect),
                                   iso=database is postgresql))
             for index, name in enumerate(names) if types[name]._type_affinity is DateTime]
    if database is sqlite:
        # A row is an array, its values by position: ->> gives an SQL value, -> a JSON column's text.
        return [f"{value} {'->' if isinstance(types[name], JSON) else '->>'} {i}"
                for i, name in enumerate(names)], times
    return [f"{value} -> {i}" if isinstance(types[name], JSON) else
            f"CAST({value} ->> {i} AS {_read_as(types[name], dialect)})" for i, name in enumerate(names)], times


def _read_as(type_: Any, dialect: Any) -> str:
    """The type a value is read as on PostgreSQL: text for a string column, whose length the
    assignment to it then checks, as for a bound value (a cast to VARCHAR(n) would cut it)."""
    return "TEXT" if isinstance(type_, String) else type_.compile(dialect)


def _time_as_json(to_stored: Callable[[Any], Any] | None, *, iso: bool) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        if value is None:
            return None
        stored = to_stored(value) if to_stored is not None else value
        return stored.isoformat() if iso else stored
    return convert


async def insert_many_returning_ids(db: AsyncSession | AsyncConnection, table: Table, rows: Sequence[dict[str, Any]],
                                    *, matched_by: tuple[str, ...], same: dict[str, Any] | None = None) -> list[int]:
    """`insert_many`, the new rows' ids in the order of `rows`. Each is found again by its
    `matched_by` columns, not by the order RETURNING gives: neither database promises one. Rows
    alike in those columns are interchangeable; the first of them gets the lowest id."""
    found: dict[tuple[Any, ...], list[int]] = {}
    for returned in await insert_many(db, table, rows, same=same, returning=("id", *matched_by)):
        found.setdefault(returned[1:], []).append(returned[0])
    for ids in found.values():
        ids.sort(reverse=True)  # popped from the end: the lowest first
    key_of = operator.itemgetter(*matched_by) if len(matched_by) > 1 else lambda row: (row[matched_by[0]],)
    return [found[key_of(row)].pop() for row in rows]


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
            # Strings as text[]: an array of VARCHAR(n) would cut a longer one to match another.
            return dialect.type_descriptor(postgresql.ARRAY(Text() if isinstance(self.item, String) else self.item))
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

