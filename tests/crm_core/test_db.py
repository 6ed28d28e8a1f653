"""The embedded SQLite database: durable commits and checkpoints off the commit path."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

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
