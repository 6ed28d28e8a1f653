"""Alembic migrations build exactly the schema the models declare, on every backend."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from crm_core import migrate
from crm_core.conversations.ingest import ingest_events
from crm_core.db import Base, create_engine, session_factory
from crm_core.models import Contact, Lead
from tests.crm_core.test_ingest import make_account, text_event


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
        assert await migrate.pending_revisions(engine) == [f"{n:04d}" for n in range(1, 34)]
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
        assert await migrate.pending_revisions(engine) == [f"{n:04d}" for n in range(2, 34)]
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


async def test_leads_opened_by_a_message_learn_which_one_on_upgrade(tmp_path):
    """0017: a lead whose source said "message N" (of a message that exists) points at it."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'old.db'}")
    sessions = session_factory(engine)
    try:
        await migrate.upgrade(engine)
        account_id = await make_account(sessions)
        async with sessions() as session, session.begin():
            stored = await ingest_events([text_event(1)], channel_account_id=account_id, db_session=session)
            [message_id] = stored.stored_message_ids
            contacts = [Contact(display_name=name, stage="new") for name in ("a", "b")]
            session.add_all(contacts)
            await session.flush()
            session.add_all([Lead(contact_id=contacts[0].id, source_kind="signal", source=f"message {message_id}"),
                             Lead(contact_id=contacts[1].id, source_kind="form", source="customer bot, message 999")])
        async with engine.begin() as conn:  # the database as 0016 left it, then upgraded
            await conn.run_sync(lambda sync: command.downgrade(_config(sync), "0016"))
        await migrate.upgrade(engine)
        async with engine.connect() as conn:
            found = sorted((await conn.execute(text("SELECT source, source_message_id FROM lead"))).all())
    finally:
        await engine.dispose()
    assert found == [("customer bot, message 999", None), (f"message {message_id}", message_id)]  # 999: none


def _config(connection):
    cfg = migrate.alembic_config()
    cfg.attributes["connection"] = connection
    return cfg
