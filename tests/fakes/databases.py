"""Test databases: a fresh SQLite file per test, and the local PostgreSQL server.

PostgreSQL comes from SCRM_TEST_DATABASE_URL (default: postgres@127.0.0.1:5432/test).
It is migrated from scratch once per test session and emptied before each test. When the
suite runs on several pytest-xdist workers, each has its own database (`test_gw0`, made
on first use) and its own Redis database number, so no worker empties another's.
Where no server answers, its tests skip with the reason, except when
SCRM_TEST_REQUIRE_POSTGRES is set (CI), where they fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from urllib.parse import urlsplit

import pytest
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

from crm_core import migrate
from crm_core.db import Base, create_engine

DEFAULT_PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
_pg_state: dict[str, object] = {}


def _worker() -> int | None:
    """This pytest-xdist worker's number (gw3: 3), or None when the suite runs in one process."""
    name = os.environ.get("PYTEST_XDIST_WORKER", "")
    return int(name[2:]) if name.startswith("gw") and name[2:].isdigit() else None


def postgres_url() -> str:
    url = make_url(os.environ.get("SCRM_TEST_DATABASE_URL", DEFAULT_PG_URL))
    worker = _worker()
    return (url if worker is None else url.set(database=f"{url.database}_gw{worker}")).render_as_string(False)


async def _create_database(url: str) -> None:
    """This worker's database, where it does not exist yet (made from the server's `postgres`)."""
    target = make_url(url)
    engine = create_async_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            exists = await conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :name"),
                                       {"name": target.database})
            if not exists:
                await conn.execute(text(f'CREATE DATABASE "{target.database}"'))
    finally:
        await engine.dispose()


async def _reachable(url: str) -> str | None:
    engine = create_engine(url)
    try:
        async with asyncio.timeout(5):
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        return None
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        await engine.dispose()


async def prepare_postgres() -> str:
    """The PostgreSQL URL, migrated and empty; skips (or fails in CI) without a server."""
    url = postgres_url()
    if "error" not in _pg_state:
        if _worker() is not None:
            with contextlib.suppress(Exception):  # no server: said by _reachable, just below
                await _create_database(url)
        _pg_state["error"] = await _reachable(url)
    error = _pg_state["error"]
    if error:
        message = f"PostgreSQL not reachable at {url} ({error}); set SCRM_TEST_DATABASE_URL"
        if os.environ.get("SCRM_TEST_REQUIRE_POSTGRES"):
            pytest.fail(message)
        pytest.skip(message)
    engine = create_engine(url)
    try:
        if not _pg_state.get("migrated"):
            async with engine.begin() as conn:
                await conn.execute(text("DROP SCHEMA public CASCADE"))
                await conn.execute(text("CREATE SCHEMA public"))
            await migrate.upgrade(engine)
            _pg_state["migrated"] = True
        else:
            tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
            async with engine.begin() as conn:
                await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    finally:
        await engine.dispose()
    return url


DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


async def redis_url() -> str:
    """The local Redis (SCRM_TEST_REDIS_URL); skips without one, except in CI
    (SCRM_TEST_REQUIRE_REDIS), where it fails."""
    from redis.asyncio import Redis

    url = os.environ.get("SCRM_TEST_REDIS_URL", DEFAULT_REDIS_URL)
    if (worker := _worker()) is not None:  # databases 1-15 (0 for the suite in one process)
        url = urlsplit(url)._replace(path=f"/{1 + worker % 15}").geturl()
    client = Redis.from_url(url, socket_connect_timeout=2)
    try:
        await client.ping()
    except Exception as exc:
        message = f"Redis not reachable at {url} ({type(exc).__name__}: {exc}); set SCRM_TEST_REDIS_URL"
        if os.environ.get("SCRM_TEST_REQUIRE_REDIS"):
            pytest.fail(message)
        pytest.skip(message)
    finally:
        await client.aclose()
    return url


@contextlib.contextmanager
def statements_run(engine, needle: str):
    """The statements holding `needle` that run inside the block, each with its parameters, as the
    driver is given them."""
    from sqlalchemy import event

    ran: list[tuple[str, object]] = []

    def seen(_conn, _cursor, statement, parameters, _context, _many) -> None:
        if needle in statement:
            ran.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", seen)
    try:
        yield ran
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", seen)


@contextlib.asynccontextmanager
async def query_plans(engine, needle: str):
    """The query plans (one list of steps a statement) of the statements holding `needle` that run
    inside the block, asked of the engine's database once it ends: SQLite's EXPLAIN QUERY PLAN
    details, PostgreSQL's EXPLAIN lines."""
    plans: list[list[str]] = []
    with statements_run(engine, needle) as ran:
        yield plans
    sqlite = engine.dialect.name == "sqlite"
    async with engine.connect() as conn:
        for statement, parameters in ran:
            rows = await conn.exec_driver_sql(f"EXPLAIN {'QUERY PLAN ' if sqlite else ''}{statement}", parameters)
            plans.append([row[3] if sqlite else row[0] for row in rows])


async def forget_statistics(engine, *tables: str) -> None:
    """PostgreSQL's statistics of these tables removed, as before their first analysis (a test
    that analyses a table leaves no statistics behind for the next tests of its database)."""
    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM pg_statistic WHERE starelid = ANY (CAST(:tables AS regclass[]))"),
                           {"tables": list(tables)})
