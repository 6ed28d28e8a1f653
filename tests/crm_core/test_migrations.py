"""Alembic migrations build exactly the schema the models declare, on every backend."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from crm_core import migrate
from crm_core.db import Base, create_engine


async def test_migrations_match_the_models(database_url):
    engine = create_engine(database_url)
    try:
        assert await migrate.pending_revisions(engine) == []
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync, opts={"compare_type": True}),
                                              Base.metadata))
    finally:
        await engine.dispose()
    assert diff == []


async def test_a_new_database_reports_its_pending_migration(tmp_path):
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'new.db'}")
    try:
        assert await migrate.pending_revisions(engine) == [f"{n:04d}" for n in range(1, 17)]
        await migrate.upgrade(engine)
        assert await migrate.pending_revisions(engine) == []
        await migrate.upgrade(engine)  # idempotent
    finally:
        await engine.dispose()


async def test_a_foundation_database_upgrades_with_its_data(tmp_path):
    """0001 -> head keeps the rows: contacts get stage "new", are not staff nor merged."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'old.db'}")
    try:
        await migrate.upgrade(engine, "0001")
        assert await migrate.pending_revisions(engine) == [f"{n:04d}" for n in range(2, 17)]
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO contact (display_name, origin, created_at, updated_at) "
                                    "VALUES ('Li Lei', '1:42', '2026-01-01 00:00:00', '2026-01-01 00:00:00')"))
        await migrate.upgrade(engine)
        async with engine.connect() as conn:
            row = (await conn.execute(text("SELECT display_name, stage, is_staff, source, merged_into_id "
                                           "FROM contact"))).one()
        assert tuple(row) == ("Li Lei", "new", 0, None, None)
    finally:
        await engine.dispose()
