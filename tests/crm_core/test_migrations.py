"""Alembic migrations build exactly the schema the models declare, on every backend."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

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
        assert await migrate.pending_revisions(engine) == ["0001"]
        await migrate.upgrade(engine)
        assert await migrate.pending_revisions(engine) == []
        await migrate.upgrade(engine)  # idempotent
    finally:
        await engine.dispose()
