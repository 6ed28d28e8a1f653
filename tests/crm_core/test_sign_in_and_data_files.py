"""The sign-in throttle holds under concurrent guesses, hashing stays off the event loop, and the
embedded database is readable by its user alone."""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import func, select

from crm_core.models import AuditLog, LoginAttempt, Role
from crm_core.people import users, web_auth

PASSWORD = "correct horse battery"


async def test_twenty_five_concurrent_guesses_get_at_most_five_checked(sessions):
    async with sessions() as session, session.begin():
        olga = await users.get_or_create("olga", Role.ADMIN, db_session=session)
        await web_auth.set_password(olga, PASSWORD, actor=None, db_session=session)

    async def guess(n: int) -> str:
        async with sessions() as session:
            try:
                await web_auth.sign_in("olga", f"wrong guess {n}", ip=f"10.0.0.{n}", user_agent=None,
                                       db_session=session)
            except web_auth.SignInThrottled:
                outcome = "throttled"
            except web_auth.SignInRefused:
                outcome = "checked"
            await session.commit()
            return outcome

    outcomes = await asyncio.gather(*(guess(n) for n in range(25)))
    assert outcomes.count("checked") <= web_auth.MAX_FAILURES_PER_USER
    assert outcomes.count("checked") + outcomes.count("throttled") == 25
    async with sessions() as session:
        failed = await session.scalar(select(func.count()).select_from(AuditLog)
                                      .where(AuditLog.action == "auth.failed"))
        kept = await session.scalar(select(func.count()).select_from(LoginAttempt))
    assert failed == outcomes.count("checked") == kept  # throttled tries were never checked, nor kept


async def test_hashing_passwords_leaves_the_event_loop_free(sessions):
    async with sessions() as session, session.begin():
        olga = await users.get_or_create("olga", Role.ADMIN, db_session=session)
        await web_auth.set_password(olga, PASSWORD, actor=None, db_session=session)
    gaps: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    async def sign_in(n: int) -> None:
        async with sessions() as session:
            await web_auth.sign_in("olga", PASSWORD, ip=f"10.1.0.{n}", user_agent=None, db_session=session)
            await session.commit()

    hashed = web_auth._hasher.hash(PASSWORD)
    started = time.perf_counter()
    web_auth._hasher.verify(hashed, PASSWORD)
    one_hash = time.perf_counter() - started
    tick = asyncio.create_task(ticker())
    await asyncio.gather(*(sign_in(n) for n in range(4)))  # within the throttle's five
    done.set()
    await tick
    # On the loop, each verification would hold it for a whole hash; on the threads it never waits that long.
    assert max(gaps) < max(one_hash * 0.6, 0.02), (max(gaps), one_hash)


async def test_the_data_directory_and_the_database_are_this_users_alone(tmp_path):
    from crm_core import migrate
    from crm_core.db import create_engine
    from hub.settings import Settings

    settings = Settings(data_dir=tmp_path / "var", database_url=None)
    settings.ensure_data_dir()
    assert settings.resolved_secret_key  # generated into the directory
    engine = create_engine(settings.resolved_database_url)
    await migrate.upgrade(engine)
    await engine.dispose()
    assert (tmp_path / "var").stat().st_mode & 0o777 == 0o700
    files = [p for p in (tmp_path / "var").iterdir() if p.is_file()]
    assert any(p.name.endswith(".db") for p in files)
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in files), {p.name: oct(p.stat().st_mode) for p in files}
