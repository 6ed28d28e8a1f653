"""Database engine, sessions and the column types every table shares."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from sqlalchemy import JSON, DateTime, MetaData, Table, event, false, inspect, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

from crm_core import sqlite_driver
from crm_core.waiting import wait_any

# Stable constraint names, so Alembic migrations are the same on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


_Mapped = TypeVar("_Mapped")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timestamp that is always timezone-aware UTC in Python.

    SQLite stores no zone, so naive values read back are declared UTC; writing a
    naive value is a bug and refused.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; use crm_core.db.utcnow()")
        value = value.astimezone(dt.UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def bind_processor(self, dialect: Any) -> Callable[[Any], Any]:
        """The conversion, remembering its last value: a batch binds its one `now` to thousands
        of rows (the planner: five times a send), converted once. On SQLite a zoned time becomes
        the text SQLAlchemy stores ("2026-12-07 18:00:00.123456", UTC) by `isoformat`, in C: its
        own formatting, after this decorator's call, took 6.3-6.7 us a value against 2.3-2.6;
        anything else (a naive time, refused) goes its way."""
        long_way = super().bind_processor(dialect)

        def as_text(value: Any) -> Any:
            if type(value) is dt.datetime and value.tzinfo is not None:
                return value.astimezone(dt.UTC).isoformat(" ", "microseconds")[:26]  # less "+00:00"
            return long_way(value)

        process = as_text if dialect.name == "sqlite" and long_way is not None else long_way
        last: tuple[Any, Any] = (None, None)  # (value, bound): replaced whole, so threads never mix the two

        def remembering(value: Any) -> Any:
            nonlocal last
            seen, bound = last
            if value is seen and value is not None:
                return bound
            bound = process(value)
            last = (value, bound)
            return bound

        return remembering

    def result_processor(self, dialect: Any, coltype: Any) -> Callable[[Any], Any] | None:
        """On SQLite, which keeps the UTC time as text without a zone ("2026-12-07 18:00:00.123456"),
        the text read with UTC's offset appended, in one C call: SQLAlchemy's parse, then this
        decorator's call and a `replace` took ten times as long (2 us; the campaign planner reads
        five a due enrolment). Text it cannot read so (a zone of its own, a date alone) goes the
        long way, which gives the same (Python reads "2026-12-07+00:00" as a day without a zone)."""
        long_way = super().result_processor(dialect, coltype)
        if dialect.name != "sqlite" or long_way is None:
            return long_way
        parse = dt.datetime.fromisoformat

        def process(value: Any) -> dt.datetime | None:
            if value is None:
                return None
            try:
                stamp = parse(value + "+00:00")
            except (TypeError, ValueError):
                return long_way(value)
            return stamp if stamp.tzinfo is not None else long_way(value)

        return process

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


JSONType = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dt.datetime: UTCDateTime(), dict[str, Any]: JSONType, list[Any]: JSONType}


def create_engine(url: str, *, echo: bool = False, pre_ping: bool = True, pool_size: int = 10) -> AsyncEngine:
    """An engine for `url` (sqlite+aiosqlite or postgresql+asyncpg), tuned per backend. On PostgreSQL
    a connection is pinged when taken from the pool (`pre_ping`), at the cost of a round trip, and
    the pool keeps `pool_size` (and as many more while busy)."""
    if url.startswith("sqlite"):
        # One trip to aiosqlite's thread a statement, not four, none once a transaction holds the
        # write lock (crm_core/sqlite_driver.py).
        engine = create_async_engine(url, echo=echo, connect_args={"timeout": 30}, module=sqlite_driver.dbapi())

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # WAL lets the API and a worker process share the file; the busy
            # timeout turns short write contention into waiting, not errors.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            # FULL: a commit survives power loss, not only a crash; ingest
            # commits in groups, so the fsync is paid once per batch.
            cur.execute("PRAGMA synchronous=FULL")
            # Checkpoints run in the background (run_sqlite_checkpoints); this
            # is only the safety net if that task is not running.
            cur.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
            cur.close()
            _owner_only(engine.url.database)

        return engine
    return create_async_engine(url, echo=echo, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=pre_ping)


WAL_AUTOCHECKPOINT_PAGES = 50_000


def _owner_only(database: str | None) -> None:
    """The SQLite file and its WAL and shared-memory files: this user's alone (0600)."""
    if not database or database == ":memory:":
        return
    for suffix in ("", "-wal", "-shm"):
        try:
            os.chmod(database + suffix, 0o600)
        except OSError:  # not there (yet), or another user's file
            pass


async def run_sqlite_checkpoints(engine: AsyncEngine, stop: asyncio.Event, interval: float = 1.0) -> None:
    """Copy the WAL into the database file from a connection of its own.

    SQLite's automatic checkpoint runs inside whichever commit crosses the
    threshold, stalling every request waiting on that writer; a PASSIVE
    checkpoint here never blocks writers.
    """
    if engine.dialect.name != "sqlite":
        return
    while not stop.is_set():
        try:
            async with engine.connect() as conn:
                await conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
        except Exception as exc:  # a busy database: next time
            logging.getLogger(__name__).debug("checkpoint skipped: %s", exc)
        await wait_any(stop, timeout=interval)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def holds_changes_to(session: AsyncSession, *entities: type) -> bool:
    """Whether the session has new, changed or deleted objects of these classes not yet flushed:
    only then does a query of their tables alone need the session flushed first (the flush of
    everything pending costs the worker about 330 us)."""
    sync = session.sync_session
    return any(isinstance(obj, entities) for pending in (sync.new, sync.dirty, sync.deleted) for obj in pending)


async def held_or_get(session: AsyncSession, entity: type[_Mapped], ident: Any) -> _Mapped | None:
    """`session.get`, without its trip through SQLAlchemy's greenlet when the session holds the
    object loaded (the worker preloads its batch's rows, then asks for them eight times a message:
    1 us each against 10)."""
    sync = session.sync_session
    held = sync.identity_map.get(sync.identity_key(entity, ident))
    if held is not None and not inspect(held).expired:
        return held
    return await session.get(entity, ident)


async def write_lock_first(session: AsyncSession, table: Table) -> None:
    """On SQLite, take the database's one write lock now, with a write to `table` that changes
    nothing. Python's sqlite3 begins a transaction only at its first write, so until then each read
    sees its own moment, and another process may plan from the same rows and write before this one
    does; once the lock is held, what the transaction reads stays true until it ends, and its
    statements no longer go to the driver's thread (crm_core/sqlite_driver.py). On PostgreSQL the
    transaction began with its first statement and the rows it will change are read FOR UPDATE:
    nothing to do."""
    if session.bind.dialect.name == "sqlite":
        key = next(iter(table.primary_key))
        await session.execute(update(table).where(false()).values({key: key}))


def is_postgres(session_or_engine: AsyncSession | AsyncEngine) -> bool:
    bind = session_or_engine.bind if isinstance(session_or_engine, AsyncSession) else session_or_engine
    return bind.dialect.name == "postgresql"


@asynccontextmanager
async def transaction(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session whose work is committed on success and rolled back on error."""
    async with factory() as session, session.begin():
        yield session
