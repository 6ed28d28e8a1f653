"""The webhooks' writer on PostgreSQL takes its connections without pinging them (a round trip a
batch), and a batch whose connection the server dropped is written again on new ones: the
messages acknowledged after it are stored, none lost, none twice."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text

from crm_core import accounts
from crm_core.models import Message, MessageKind
from crm_core.ports import InboundMessage, Sender
from hub.context import Hub
from tests.fakes.stack import make_settings

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


def hello(n: int) -> InboundMessage:
    return InboundMessage(f"update:{n}", Sender(str(700 + n), "Ann"), str(700 + n), MessageKind.TEXT, "hello", {})


async def test_the_writer_pings_no_connection_and_writes_again_on_a_new_one_after_a_drop(database_url, tmp_path):
    hub = Hub(make_settings(database_url, tmp_path))
    pings = []
    dialect = hub.writer_engine.sync_engine.dialect
    dialect.do_ping = lambda connection: pings.append(connection) or True
    try:
        async with hub.sessions() as session, session.begin():
            account = await accounts.create(kind="telegram", name="t", platform_account_id="1",
                                            credentials={"bot_token": "1:x"}, api_base=None, settings={},
                                            cipher=hub.cipher, actor=None, db_session=session)
        assert len(await hub.ingest(account.id, [hello(1)])) == 1
        async with hub.engine.connect() as conn:  # the server drops every other connection
            dropped = (await conn.scalars(text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"))).all()
        assert dropped and all(dropped)
        assert len(await hub.ingest(account.id, [hello(2), hello(3)])) == 2
        assert len(await hub.ingest(account.id, [hello(3)])) == 0  # a retry: stored once
        async with hub.sessions() as session:
            stored = await session.scalar(select(func.count()).select_from(Message))
        assert stored == 3 and pings == []
    finally:
        await hub.close()
