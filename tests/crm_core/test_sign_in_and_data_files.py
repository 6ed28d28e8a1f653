"""The sign-in throttle holds under concurrent guesses, hashing stays off the event loop, and the
embedded database is readable by its user alone."""

from __future__ import annotations

import asyncio
import threading

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


async def test_hashing_passwords_leaves_the_event_loop_free(sessions, monkeypatch):
    async with sessions() as session, session.begin():
        olga = await users.get_or_create("olga", Role.ADMIN, db_session=session)
        await web_auth.set_password(olga, PASSWORD, actor=None, db_session=session)
    real = web_auth._hasher
    hashed_on: list[int] = []

    class Watched:
        """The real hasher, noting the thread each slow call runs on."""

        def verify(self, stored: str, password: str) -> bool:
            hashed_on.append(threading.get_ident())
            return real.verify(stored, password)

        def hash(self, password: str) -> str:
            hashed_on.append(threading.get_ident())
            return real.hash(password)

        def check_needs_rehash(self, stored: str) -> bool:
            return real.check_needs_rehash(stored)

    monkeypatch.setattr(web_auth, "_hasher", Watched())

    async def sign_in(n: int, password: str) -> None:
        async with sessions() as session:
            try:
                await web_auth.sign_in("olga", password, ip=f"10.1.0.{n}", user_agent=None, db_session=session)
            except web_auth.SignInRefused:
                pass
            await session.commit()

    await asyncio.gather(*(sign_in(n, PASSWORD if n % 2 else "wrong password") for n in range(4)))
    await web_auth.hash_password("another good password")
    # On the loop, each verification would hold it for a whole hash (tens of ms of CPU): none ran there.
    assert len(hashed_on) == 5
    assert threading.get_ident() not in hashed_on


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
