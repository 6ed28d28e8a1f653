"""Shared fixtures: every database test runs on SQLite and on PostgreSQL; the
default sentiment model is trained once per session (about 15 s), or the one
`./dev` trained is used if it is usable."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core import migrate
from crm_core.db import create_engine, session_factory
from nlp.sentiment.default import DefaultSentiment, train, usable
from tests.fakes.databases import prepare_postgres


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
        engine = create_engine(url)
        await migrate.upgrade(engine)
        await engine.dispose()
        return url
    return await prepare_postgres()


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(database_url)
    yield session_factory(engine)
    await engine.dispose()


DEV_MODEL = Path("var/models/sentiment-default.joblib")


@pytest.fixture(scope="session")
def sentiment_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if usable(DEV_MODEL):
        return DEV_MODEL.resolve()
    path = tmp_path_factory.mktemp("models") / "sentiment-default.joblib"
    train(path)
    return path


@pytest.fixture(scope="session")
def sentiment(sentiment_model_path: Path) -> DefaultSentiment:
    return DefaultSentiment(sentiment_model_path)


CHROMIUM = next((p for p in (shutil.which("chromium"), "/usr/bin/chromium") if p and os.path.exists(p)), None)


@pytest.fixture
async def browser():
    """The system's Chromium, headless, driven by Playwright (never `playwright install`)."""
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; .ci/run installs it")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            yield chromium
        finally:
            await chromium.close()
