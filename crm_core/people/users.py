"""Users of the hub and their API tokens."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core import audit
from crm_core.db import utcnow
from crm_core.models import ApiToken, Role, User

TOKEN_PREFIX = "scrm_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def get_or_create(username: str, role: Role, *, db_session: AsyncSession,
                        display_name: str | None = None) -> User:
    user = await db_session.scalar(select(User).where(User.username == username))
    if user is None:
        user = User(username=username, role=role, display_name=display_name)
        db_session.add(user)
        await db_session.flush()
        await audit.record("user.create", entity_type="user", entity_id=user.id, actor=None,
                           db_session=db_session, details={"username": username, "role": role.value})
    return user


async def create_token(user: User, *, name: str, db_session: AsyncSession) -> str:
    """A new bearer token for `user`. The plain token is returned once and never stored."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    db_session.add(ApiToken(user_id=user.id, name=name, token_hash=hash_token(token)))
    await audit.record("api_token.create", entity_type="user", entity_id=user.id, actor=None,
                       db_session=db_session, details={"token_name": name})
    return token


async def authenticate(token: str, *, db_session: AsyncSession) -> User | None:
    """The active user behind a bearer token, or None."""
    row = await db_session.execute(
        select(ApiToken, User)
        .join(User, User.id == ApiToken.user_id)
        .where(ApiToken.token_hash == hash_token(token), ApiToken.revoked_at.is_(None), User.is_active.is_(True))
    )
    found = row.first()
    if found is None:
        return None
    api_token, user = found
    api_token.last_used_at = utcnow()
    return user


class UserChangeRefused(Exception):
    """A change to a user that the actor may not make; `status` is 403 or 422 and the message says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def check_may_switch_off(actor: User, user: User) -> None:
    """One rule for switching a user off, whatever the route (the user's form, a handover):
    only an admin may, and never themself (an admin could lock the company out)."""
    if actor.role != Role.ADMIN:
        raise UserChangeRefused(403, f"only an admin may switch a user off; {actor.username} is a "
                                     f"{actor.role.value}: hand the work over without switching "
                                     f"{user.username} off, and ask an admin")
    if actor.id == user.id:
        raise UserChangeRefused(422, "you cannot switch yourself off; ask another admin")
