"""Signing in to the admin panel: argon2 password hashes, browser sessions with a CSRF
token each, and throttling of failed sign-ins per username and per address.

A session's cookie holds a random token; the database keeps only its SHA-256, so a
leaked database does not sign anyone in. A session ends after `IDLE` without use or
`LIFETIME` after sign-in, at sign-out, and when the user's password changes or the
user is deactivated.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import os
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core import audit
from crm_core.db import utcnow
from crm_core.models import LoginAttempt, User, WebSession

IDLE = dt.timedelta(hours=12)
LIFETIME = dt.timedelta(days=7)
THROTTLE_WINDOW = dt.timedelta(minutes=15)
MAX_FAILURES_PER_USER = 5      # in THROTTLE_WINDOW: then that username waits
MAX_FAILURES_PER_ADDRESS = 20  # in THROTTLE_WINDOW: then that address waits, whatever name it tries
MIN_PASSWORD_LENGTH = 10

_hasher = PasswordHasher()
# Verified against when the username is unknown, so both cases take the same time.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


class PasswordRejected(ValueError):
    """A new password that may not be used; the message says why."""


class SignInRefused(Exception):
    """Wrong username or password (the message never says which)."""


class SignInThrottled(Exception):
    def __init__(self, retry_after: dt.timedelta) -> None:
        minutes = max(1, round(retry_after.total_seconds() / 60))
        super().__init__(f"too many failed sign-ins: try again in {minutes} minute{'s' if minutes > 1 else ''}")
        self.retry_after = retry_after


@dataclass(frozen=True)
class SignedIn:
    user: User
    session: WebSession
    token: str          # for the cookie; not stored


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _verifies(stored: str | None, password: str) -> bool:
    try:
        return stored is not None and _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def check_password_rules(password: str, username: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise PasswordRejected(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > 200:
        raise PasswordRejected("a password may have at most 200 characters")
    if username and username.lower() in password.lower():
        raise PasswordRejected("the password may not contain the username")
    if len(set(password)) < 4:
        raise PasswordRejected("the password repeats too few characters; choose a less guessable one")


async def set_password(user: User, password: str, *, actor: User | None, db_session: AsyncSession) -> None:
    """Hash and store a new password; the user's open sessions end (other browsers sign in again)."""
    check_password_rules(password, user.username)
    user.password_hash = await hash_password(password)
    user.password_changed_at = utcnow()
    await end_sessions(user.id, db_session=db_session)
    await audit.record("user.password", entity_type="user", entity_id=user.id, actor=actor,
                       details={"username": user.username}, db_session=db_session)


def _hash_limit() -> int:
    return max(1, min(4, (os.cpu_count() or 1)))


# argon2 is meant to be slow (tens of ms of CPU): it runs on these threads, never on the event
# loop that answers webhooks, and no more hashes at once than there are threads; a burst of
# sign-ins queues here instead of stalling everything else.
_hashing = ThreadPoolExecutor(max_workers=_hash_limit(), thread_name_prefix="argon2")


async def _off_loop(function: Any, *args: Any) -> Any:
    return await asyncio.get_running_loop().run_in_executor(_hashing, function, *args)


async def hash_password(password: str) -> str:
    return await _off_loop(_hasher.hash, password)


async def _failures_before(attempt: LoginAttempt, db_session: AsyncSession) -> dt.timedelta | None:
    """How long this name or address must wait, counting `attempt` itself, or None.

    The attempt is committed as a failure before it is counted (and before the password is
    verified), so concurrent guesses cannot all see the same count: of any number racing,
    the one counting last sees every earlier one, and at most the limit are let through."""
    since = utcnow() - THROTTLE_WINDOW
    for column, value, limit in ((LoginAttempt.username, attempt.username, MAX_FAILURES_PER_USER),
                                 (LoginAttempt.ip, attempt.ip, MAX_FAILURES_PER_ADDRESS)):
        # Failures since the last success (a success clears the slate for that name or address).
        last_ok = await db_session.scalar(select(func.max(LoginAttempt.at)).where(
            column == value, LoginAttempt.succeeded.is_(True), LoginAttempt.at >= since))
        failures = (await db_session.scalars(
            select(LoginAttempt.at).where(column == value, LoginAttempt.succeeded.is_(False),
                                          LoginAttempt.at >= max(since, last_ok or since))
            .order_by(LoginAttempt.at.desc()).limit(limit + 1))).all()
        if len(failures) > limit:
            return failures[-1] + THROTTLE_WINDOW - utcnow()
    return None


async def _reserve(username: str, ip: str, db_session: AsyncSession) -> LoginAttempt:
    """Record the try as a failure, committed, then see whether it is over the limit; a throttled
    try is taken back (it was never checked) and SignInThrottled raised."""
    attempt = LoginAttempt(username=username, ip=ip, succeeded=False)
    db_session.add(attempt)
    await db_session.commit()
    wait = await _failures_before(attempt, db_session)
    if wait is not None:
        await db_session.delete(attempt)
        raise SignInThrottled(wait)
    return attempt


async def check_password(user: User, password: str, *, ip: str, db_session: AsyncSession) -> None:
    """Is `password` the signed-in `user`'s own (before a change)? Failures count towards
    the sign-in throttle; raises SignInThrottled or SignInRefused."""
    attempt = await _reserve(user.username.lower(), ip, db_session)
    if not await _off_loop(_verifies, user.password_hash, password):
        await audit.record("auth.failed", entity_type="user", entity_id=user.id, actor=user,
                           details={"ip": ip, "during": "password change"}, db_session=db_session)
        raise SignInRefused("the current password is wrong")
    attempt.succeeded = True


async def sign_in(username: str, password: str, *, ip: str, user_agent: str | None,
                  db_session: AsyncSession) -> SignedIn:
    """A new session for the right username and password. Raises SignInThrottled after
    too many failures, SignInRefused otherwise; every try is recorded."""
    username = username.strip().lower()[:100]
    try:
        attempt = await _reserve(username, ip, db_session)
    except SignInThrottled:
        await audit.record("auth.throttled", entity_type="user", entity_id=None, actor=None,
                           actor_label=username or "?", details={"ip": ip}, db_session=db_session)
        raise
    user = await db_session.scalar(select(User).where(func.lower(User.username) == username))
    stored = user.password_hash if user is not None and user.password_hash else _DUMMY_HASH
    ok = await _off_loop(_verifies, stored, password) and user is not None and user.password_hash is not None \
        and user.is_active
    if not ok:
        await audit.record("auth.failed", entity_type="user", entity_id=user.id if user else None, actor=None,
                           actor_label=username or "?", details={"ip": ip}, db_session=db_session)
        raise SignInRefused("wrong username or password")
    assert user is not None and user.password_hash is not None
    attempt.succeeded = True
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = await hash_password(password)
    token = secrets.token_urlsafe(32)
    now = utcnow()
    session = WebSession(token_hash=_hash_token(token), csrf_token=secrets.token_urlsafe(32), user_id=user.id,
                         created_at=now, last_seen_at=now, expires_at=now + LIFETIME, ip=ip,
                         user_agent=(user_agent or "")[:300] or None)
    db_session.add(session)
    await db_session.flush()
    await audit.record("auth.signed_in", entity_type="user", entity_id=user.id, actor=user,
                       details={"ip": ip, "session_id": session.id}, db_session=db_session)
    return SignedIn(user, session, token)


async def session_user(token: str, *, db_session: AsyncSession) -> tuple[User, WebSession] | None:
    """The active user and live session behind a cookie token; touches it (idle timeout)."""
    if not token:
        return None
    row = (await db_session.execute(
        select(WebSession, User).join(User, User.id == WebSession.user_id)
        .where(WebSession.token_hash == _hash_token(token), WebSession.ended_at.is_(None),
               User.is_active.is_(True)))).first()
    if row is None:
        return None
    session, user = row
    now = utcnow()
    if session.expires_at <= now or now - session.last_seen_at > IDLE:
        session.ended_at = now
        return None
    if now - session.last_seen_at > dt.timedelta(minutes=1):  # not a write on every request
        session.last_seen_at = now
    return user, session


def csrf_matches(session: WebSession, presented: str | None) -> bool:
    return bool(presented) and hmac.compare_digest(session.csrf_token, presented or "")


async def sign_out(session: WebSession, user: User, *, db_session: AsyncSession) -> None:
    session.ended_at = utcnow()
    await audit.record("auth.signed_out", entity_type="user", entity_id=user.id, actor=user,
                       details={"session_id": session.id}, db_session=db_session)


async def end_sessions(user_id: int, *, db_session: AsyncSession) -> int:
    """End every open session of a user (password changed, user deactivated); how many."""
    result = await db_session.execute(
        update(WebSession).where(WebSession.user_id == user_id, WebSession.ended_at.is_(None))
        .values(ended_at=utcnow()).execution_options(synchronize_session=False))
    return result.rowcount or 0
