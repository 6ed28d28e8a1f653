"""Fixtures of the multi-process hub tests: the PostgreSQL they share, and the Telegram simulator."""

from __future__ import annotations

import pytest

from channels.simulators.telegram import TelegramSimulator
from crm_core.db import create_engine, session_factory
from hub.serving import running


@pytest.fixture
async def postgres_url():
    from tests.fakes.databases import prepare_postgres

    return await prepare_postgres()


@pytest.fixture
async def pg_sessions(postgres_url):
    engine = create_engine(postgres_url)
    yield session_factory(engine)
    await engine.dispose()


@pytest.fixture
async def telegram_api():
    """The Telegram simulator, served on 127.0.0.1: (simulator, its base URL)."""
    simulator = TelegramSimulator()
    async with running(simulator.app) as server:
        yield simulator, f"http://127.0.0.1:{server.port}"
