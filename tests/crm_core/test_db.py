"""The embedded SQLite database: durable commits and checkpoints off the commit path."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import IntegrityError, OperationalError, StatementError

from crm_core import migrate
from crm_core.db import create_engine, run_sqlite_checkpoints


async def test_sqlite_commits_are_fully_synchronous_in_wal_mode(tmp_path):
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    try:
        async with engine.connect() as conn:
            assert (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar() == "wal"
            assert (await conn.exec_driver_sql("PRAGMA synchronous")).scalar() == 2  # FULL
    finally:
        await engine.dispose()


async def test_the_background_checkpointer_moves_the_wal_into_the_database_file(tmp_path):
    path = tmp_path / "db.sqlite"
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    try:
        await migrate.upgrade(engine)
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE filler (payload TEXT)"))
            for _ in range(20):
                await conn.execute(text("INSERT INTO filler VALUES (:p)"), {"p": "x" * 100_000})
        before = path.stat().st_size  # the rows are still only in the WAL
        stop = asyncio.Event()
        task = asyncio.create_task(run_sqlite_checkpoints(engine, stop, interval=0.05))
        await asyncio.sleep(0.3)
        stop.set()
        await task
        assert path.stat().st_size > before + 1_000_000
    finally:
        await engine.dispose()


async def _thread_of_statements(tmp_path):
    """An engine whose `SELECT statement_thread()` says which thread ran the statement."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")

    @event.listens_for(engine.sync_engine, "connect")
    def _function(dbapi_conn, _record) -> None:
        dbapi_conn.create_function("statement_thread", 0, threading.get_ident)

    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE note (id INTEGER PRIMARY KEY, body TEXT NOT NULL UNIQUE)"))
    return engine


async def test_a_transaction_that_has_written_runs_its_next_statements_on_the_event_loops_thread(tmp_path):
    """Before its first write a statement may wait for SQLite's lock, so it goes to the driver's
    thread; after it, the lock is the transaction's and the trip is saved."""
    engine = await _thread_of_statements(tmp_path)
    loop_thread = threading.get_ident()
    try:
        async with engine.connect() as conn:
            here = "SELECT statement_thread()"
            assert (await conn.execute(text(here))).scalar() != loop_thread
            inserted = await conn.execute(text("INSERT INTO note (body) VALUES ('first') RETURNING id"))
            assert inserted.scalar() == 1
            assert (await conn.execute(text(here))).scalar() == loop_thread
            # Results, row counts and RETURNING come back the same way on this thread.
            more = await conn.execute(text("INSERT INTO note (body) VALUES ('second'), ('third') RETURNING id"))
            assert sorted(more.scalars()) == [2, 3]
            updated = await conn.execute(text("UPDATE note SET body = body || '!' WHERE id > 1"))
            assert updated.rowcount == 2
            await conn.execute(text("INSERT INTO note (body) VALUES (:body)"), [{"body": "x"}, {"body": "y"}])
            assert (await conn.execute(text("SELECT count(*) FROM note"))).scalar() == 5
            await conn.commit()
            # Committed: the next transaction starts on the thread again.
            assert (await conn.execute(text(here))).scalar() != loop_thread
    finally:
        await engine.dispose()


async def test_a_statement_on_the_event_loops_thread_fails_as_any_other_and_its_transaction_rolls_back(tmp_path):
    engine = await _thread_of_statements(tmp_path)
    try:
        async with engine.connect() as conn:
            await conn.execute(text("INSERT INTO note (body) VALUES ('once')"))
            with pytest.raises(IntegrityError):
                await conn.execute(text("INSERT INTO note (body) VALUES ('once')"))
            await conn.rollback()
            assert (await conn.execute(text("SELECT count(*) FROM note"))).scalar() == 0
            assert (await conn.execute(text("SELECT statement_thread()"))).scalar() != threading.get_ident()
    finally:
        await engine.dispose()


async def test_a_write_waiting_for_another_writers_lock_does_not_stop_the_event_loop(tmp_path):
    """Another process holds the write lock for half a second: the hub's write waits for it on
    the driver's thread while the event loop goes on (a ticker keeps ticking), then succeeds."""
    engine = await _thread_of_statements(tmp_path)
    other = sqlite3.connect(tmp_path / "db.sqlite", isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("INSERT INTO note (body) VALUES ('theirs')")
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticker = asyncio.create_task(tick())
        asyncio.get_running_loop().call_later(0.5, other.execute, "COMMIT")
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO note (body) VALUES ('ours')"))
        ticker.cancel()
        assert ticks >= 20, ticks  # the loop ran while the write waited
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT body FROM note ORDER BY id"))).scalars().all() == ["theirs", "ours"]
    finally:
        other.close()
        await engine.dispose()


async def test_a_long_write_transaction_gives_the_event_loop_turns_between_its_statements(tmp_path):
    """Half a second of statements after a transaction's first write (none of them a trip to the
    driver's thread): other tasks of the process still run every few milliseconds, not once it
    commits."""
    engine = await _thread_of_statements(tmp_path)
    ticks: list[float] = []

    async def tick() -> None:
        while True:
            ticks.append(time.monotonic())
            await asyncio.sleep(0.001)

    ticker = asyncio.create_task(tick())
    try:
        await asyncio.sleep(0.01)
        async with engine.begin() as conn:
            began = time.monotonic()
            n = 0
            while time.monotonic() - began < 0.5:
                n += 1
                await conn.execute(text("INSERT INTO note (body) VALUES (:body)"), {"body": f"note {n}"})
            ended = time.monotonic()
        during = [t for t in ticks if began <= t <= ended]
        gaps = [b - a for a, b in zip([began, *during], [*during, ended], strict=True)]
        assert len(during) > 10 and max(gaps) < 0.2, (len(during), max(gaps))
    finally:
        ticker.cancel()
        await engine.dispose()


async def test_a_first_write_that_failed_for_the_lock_leaves_the_next_statements_on_the_thread(tmp_path):
    """A write that gave up waiting for another process's lock took none: what the transaction
    runs next may wait for that lock too, so it goes to the driver's thread, not the loop's."""
    engine = await _thread_of_statements(tmp_path)
    other = sqlite3.connect(tmp_path / "db.sqlite", isolation_level=None)
    try:
        async with engine.connect() as conn:
            await conn.exec_driver_sql("PRAGMA busy_timeout = 50")
            await conn.execute(text("INSERT INTO note (body) VALUES ('ours')"))
            await conn.commit()
            other.execute("BEGIN IMMEDIATE")
            with pytest.raises(OperationalError, match="locked"):
                await conn.execute(text("INSERT INTO note (body) VALUES ('blocked')"))
            assert (await conn.execute(text("SELECT statement_thread()"))).scalar() != threading.get_ident()
            await conn.rollback()
    finally:
        other.close()
        await engine.dispose()


def _count_ends(monkeypatch) -> dict[str, int]:
    """How many commits and rollbacks go to aiosqlite's thread."""
    import aiosqlite

    ends = {"commit": 0, "rollback": 0}
    for name in ends:
        def counted(self, _name=name, _sent=getattr(aiosqlite.Connection, name)):
            ends[_name] += 1
            return _sent(self)
        monkeypatch.setattr(aiosqlite.Connection, name, counted)
    return ends


async def test_a_transaction_that_wrote_nothing_ends_without_a_trip_to_the_thread(tmp_path, monkeypatch):
    """sqlite3 opens a transaction at the first write: one that only read has nothing to commit,
    and a connection given back after its commit nothing to roll back, so neither goes to the
    driver's thread. A write is still committed, and a rollback still undoes one."""
    engine = await _thread_of_statements(tmp_path)
    ends = _count_ends(monkeypatch)
    try:
        async with engine.begin() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM note"))).scalar() == 0
        assert ends == {"commit": 0, "rollback": 0}
        async with engine.begin() as conn:  # committed, then given back to the pool
            await conn.execute(text("INSERT INTO note (body) VALUES ('kept')"))
        assert ends == {"commit": 1, "rollback": 0}
        async with engine.connect() as conn:
            await conn.execute(text("INSERT INTO note (body) VALUES ('undone')"))
            await conn.rollback()
        assert ends == {"commit": 1, "rollback": 1}
        other = sqlite3.connect(tmp_path / "db.sqlite")
        try:
            assert [body for (body,) in other.execute("SELECT body FROM note")] == ["kept"]
        finally:
            other.close()
    finally:
        await engine.dispose()


async def test_a_write_cancelled_on_the_thread_never_lands_and_frees_the_lock(tmp_path):
    """A write cancelled while it waits on the driver's thread for another process's lock runs
    once that lock is free, opening a transaction the event loop has not seen: its connection is
    closed, not given back to the pool to end it without a trip, so the write is undone and the
    lock freed."""
    engine = await _thread_of_statements(tmp_path)
    other = sqlite3.connect(tmp_path / "db.sqlite", isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        async with engine.connect() as conn:
            write = asyncio.create_task(conn.execute(text("INSERT INTO note (body) VALUES ('cancelled')")))
            await asyncio.sleep(0.1)  # on the thread, waiting for the lock
            asyncio.get_running_loop().call_later(0.2, other.execute, "COMMIT")
            write.cancel()
            with pytest.raises(asyncio.CancelledError):
                await write
        async with engine.begin() as conn:  # the lock is free, and the next connection's writes land
            await conn.execute(text("INSERT INTO note (body) VALUES ('next')"))
        assert [body for (body,) in other.execute("SELECT body FROM note")] == ["next"]
    finally:
        other.close()
        await engine.dispose()


async def test_timestamps_bound_in_a_batch_are_each_stored_as_given(sessions):
    """A UTC timestamp's conversion remembers its last value (a batch binds one `now` to thousands
    of rows): rows alternating between instants, one given in another zone, keep each their own,
    and a naive one is still refused right after a remembered one."""
    import datetime as dt

    from sqlalchemy import Column, Integer, MetaData, Table, insert, select

    from crm_core.db import UTCDateTime

    table = Table("timestamps_probe", MetaData(), Column("id", Integer, primary_key=True),
                  Column("at", UTCDateTime()))
    engine = sessions.kw["bind"]
    async with engine.begin() as conn:
        await conn.run_sync(table.metadata.create_all)
    first = dt.datetime(2026, 12, 6, 8, 0, tzinfo=dt.UTC)
    second = dt.datetime(2026, 12, 6, 9, 30, 15, 250, tzinfo=dt.UTC)
    shanghai = dt.datetime(2026, 12, 6, 20, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))  # 12:00 UTC
    given = [first, first, second, first, None, second, second, shanghai, first]
    try:
        async with engine.begin() as conn:
            await conn.execute(insert(table), [{"id": n, "at": at} for n, at in enumerate(given)])
            stored = [at for _, at in (await conn.execute(select(table).order_by(table.c.id))).all()]
            with pytest.raises(StatementError, match="naive datetime"):
                await conn.execute(insert(table), [{"id": 100, "at": first},
                                                   {"id": 101, "at": first.replace(tzinfo=None)}])
        assert stored == [None if at is None else at.astimezone(dt.UTC) for at in given]
        assert stored[7] == dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.UTC)
    finally:
        async with engine.begin() as conn:
            await conn.run_sync(table.metadata.drop_all)


async def test_sqlite_timestamps_read_back_as_sqlalchemys_own_reading_gives_them(tmp_path):
    """The quick reading of SQLite's stored text (UTC's offset appended) gives what SQLAlchemy's
    parse and the decorator gave, whatever text a row holds: the hub's own, one written by hand with a
    zone or a "Z", a day alone, a minute without seconds; what neither can read fails alike."""
    import datetime as dt

    from sqlalchemy import Column, Integer, MetaData, Table, select
    from sqlalchemy.types import TypeDecorator

    from crm_core.db import UTCDateTime

    texts = ["2026-12-07 18:00:00.123456", "2026-12-07 18:00:00", "2026-12-07T18:00:00", "2026-12-07 18:00:00.123",
             "2026-12-07", "2026-12-07 18:00", "2026-12-07 18:00:00+08:00", "2026-12-07T18:00:00Z", None]
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}")
    table = Table("stamps", MetaData(), Column("id", Integer, primary_key=True), Column("at", UTCDateTime()))
    try:
        async with engine.begin() as conn:
            await conn.run_sync(table.metadata.create_all)
            await conn.exec_driver_sql("INSERT INTO stamps (id, at) VALUES (?, ?)", list(enumerate(texts)))
            read = [at for _, at in (await conn.execute(select(table).order_by(table.c.id))).all()]
            with pytest.raises(ValueError, match="out of range"):
                await conn.exec_driver_sql("INSERT INTO stamps (id, at) VALUES (100, '2026-02-30 00:00:00')")
                (await conn.execute(select(table.c.at).where(table.c.id == 100))).all()
    finally:
        await engine.dispose()
    decorator = UTCDateTime().dialect_impl(engine.dialect)
    long_way = TypeDecorator.result_processor(decorator, engine.dialect, None)
    assert read == [long_way(value) for value in texts]
    assert all(at is None or at.tzinfo is dt.UTC for at in read)
    assert read[0] == dt.datetime(2026, 12, 7, 18, 0, 0, 123456, tzinfo=dt.UTC)
    assert read[4] == dt.datetime(2026, 12, 7, tzinfo=dt.UTC)
    assert read[6] == dt.datetime(2026, 12, 7, 10, 0, tzinfo=dt.UTC)


async def test_sqlite_timestamps_are_stored_as_sqlalchemys_own_formatting_stores_them(tmp_path):
    """The quick formatting of a zoned time for SQLite (`isoformat`) stores the text SQLAlchemy's
    formatting stored: UTC, to the microsecond, a year before 1000 padded; a naive time is refused."""
    import datetime as dt

    from sqlalchemy import Column, Integer, MetaData, Table, insert
    from sqlalchemy.types import TypeDecorator

    from crm_core.db import UTCDateTime

    shanghai = dt.timezone(dt.timedelta(hours=8))
    given = [dt.datetime(2026, 12, 7, 18, 0, 0, 5, tzinfo=dt.UTC), dt.datetime(2026, 12, 7, 18, 0, tzinfo=dt.UTC),
             dt.datetime(2026, 12, 8, 2, 0, tzinfo=shanghai), dt.datetime(999, 1, 1, tzinfo=dt.UTC),
             dt.datetime(1, 1, 1, 8, 0, tzinfo=shanghai), None]
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}")
    table = Table("stamps", MetaData(), Column("id", Integer, primary_key=True), Column("at", UTCDateTime()))
    try:
        async with engine.begin() as conn:
            await conn.run_sync(table.metadata.create_all)
            await conn.execute(insert(table), [{"id": n, "at": at} for n, at in enumerate(given)])
            stored = [at for (at,) in (await conn.exec_driver_sql("SELECT at FROM stamps ORDER BY id")).all()]
            with pytest.raises(StatementError, match="naive datetime"):
                await conn.execute(insert(table), [{"id": 100, "at": dt.datetime(2026, 12, 7)}])
    finally:
        await engine.dispose()
    long_way = TypeDecorator.bind_processor(UTCDateTime().dialect_impl(engine.dialect), engine.dialect)
    assert stored == [long_way(at) for at in given]
    assert stored[:5] == ["2026-12-07 18:00:00.000005", "2026-12-07 18:00:00.000000", "2026-12-07 18:00:00.000000",
                          "0999-01-01 00:00:00.000000", "0001-01-01 00:00:00.000000"]


async def test_held_or_get_answers_from_the_session_only_what_session_get_would(sessions):
    """`held_or_get` skips SQLAlchemy's greenlet for an object the session holds loaded, and is
    otherwise `session.get`: an expired object is read again (another transaction's change
    seen), one not held is read, a missing one is None, all without a statement for the first."""
    from sqlalchemy import event, update

    from crm_core.db import held_or_get
    from crm_core.models import Contact

    engine = sessions.kw["bind"]
    async with sessions() as session, session.begin():
        contact = Contact(display_name="before", stage="new")
        session.add(contact)
        await session.flush()
        contact_id = contact.id
    statements = []
    event.listen(engine.sync_engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    async with sessions() as session, session.begin():
        read = await held_or_get(session, Contact, contact_id)  # not held: read
        assert read is not None and read.display_name == "before" and len(statements) == 1
        assert await held_or_get(session, Contact, contact_id) is read and len(statements) == 1
        async with sessions() as other, other.begin():
            await other.execute(update(Contact).where(Contact.id == contact_id).values(display_name="after"))
        session.expire(read)
        again = await held_or_get(session, Contact, contact_id)
        assert again is read and again.display_name == "after" and len(statements) == 3
        assert await held_or_get(session, Contact, contact_id + 1000) is None
