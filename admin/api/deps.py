"""Dependencies shared by the API routers: the session, the caller, their role."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.crypto import CredentialCipher
from crm_core.deals.service import DealRules
from crm_core.leads.service import LeadRules
from crm_core.models import (
    ChannelAccount,
    ContactWay,
    Conversation,
    GroupJoinWay,
    OutboxMessage,
    Role,
    User,
)
from crm_core.people import users, web_auth


class ConnectionCheckResult(Protocol):
    platform_account_id: str
    display_name: str


class ChannelCatalog(Protocol):
    """What the API needs of the channel adapters (the hub supplies them)."""

    kinds: list[str]

    def credentials_model(self, kind: str) -> type[BaseModel]: ...

    def settings_model(self, kind: str) -> type[BaseModel]: ...

    async def check_connection(self, kind: str, api_base: str | None,
                               credentials: dict[str, Any]) -> ConnectionCheckResult: ...

    async def activate(self, account: ChannelAccount) -> None: ...

    def forget(self, account_id: int) -> None: ...  # its cached credentials and pollers: it changed

    # A link into the account's chat that brings `scene_param` back as the customer's source
    # (微信客服); ValueError where the kind has none or the input is wrong.
    async def contact_link(self, account: ChannelAccount, open_kfid: str | None, scene: str,
                           scene_param: str) -> str: ...

    def webhook_url(self, account: ChannelAccount) -> str: ...

    def notices(self, account: ChannelAccount) -> list[str]: ...  # what the operator should know of its setup


class HourLike(Protocol):
    start: dt.datetime
    volume: int
    negative: int
    negative_share: float
    mean_sentiment: float


class OpinionSeries(Protocol):
    """What the API needs of opinion monitoring (the hub's watcher)."""

    async def series(self, dimension: str, key: str, *, hours: int = ...) -> tuple[
        Sequence[HourLike], list[tuple[str, int]]]: ...


class SentMessageReview(Protocol):
    """Reads a person's message to a customer and flags wording for their manager (bots/rep/review.py)."""

    async def review(self, sent: OutboxMessage, conversation: Conversation, user: User, *,
                     db_session: AsyncSession) -> bool: ...


class LiveSettings(Protocol):
    """The settings the panel may change while the hub runs (the hub's hub/live_settings.py)."""

    sections: dict[str, tuple[str, ...]]

    def values(self) -> dict[str, Any]: ...          # in force, as JSON

    def environment(self) -> dict[str, Any]: ...     # the environment's alone

    def check(self, stored: dict[str, Any]) -> None:
        """Raise ValueError saying why, unless these saved values may be used together."""
        ...

    def lead_stages(self, stored: dict[str, Any]) -> tuple[str, ...]: ...  # the pipeline these values give

    async def reload(self) -> bool: ...


class ContactWayKeeper(Protocol):
    """Makes, changes and removes WeCom contact ways in WeCom (the hub supplies it); each raises
    crm_core.campaigns.contact_ways.ContactWayInvalid with WeCom's reason when refused."""

    async def save(self, way: ContactWay, *, db_session: AsyncSession) -> None: ...

    async def delete(self, way: ContactWay, *, db_session: AsyncSession) -> None: ...


class CustomerMover(Protocol):
    """Asks WeCom to move customers between reps and follows it (the hub supplies it)."""

    async def run_once(self) -> int: ...

    async def unassigned(self, account_id: int) -> list[dict[str, Any]]: ...


class MassSender(Protocol):
    """Makes WeCom mass-send (or moments) tasks and reads back what became of them (the hub supplies it)."""

    async def run_once(self) -> int: ...


class GroupReader(Protocol):
    """Reads WeCom customer groups again, and makes their QR codes in WeCom (the hub supplies it);
    ValueError with WeCom's reason where it refuses."""

    async def run_once(self, *, everything: bool = False) -> int: ...

    async def save_join_way(self, way: GroupJoinWay, *, db_session: AsyncSession) -> None: ...

    async def delete_join_way(self, way: GroupJoinWay, *, db_session: AsyncSession) -> None: ...

    async def statistics(self, account_id: int, owners: list[str], days: int) -> list[dict[str, Any]]: ...


class CorpTagKeeper(Protocol):
    """Renames or deletes a tag in WeCom where it is a corp tag (the hub supplies it); ValueError with
    WeCom's reason where it refuses; how many WeCom apps changed."""

    async def rename(self, old: str, new: str) -> int: ...

    async def delete(self, name: str) -> int: ...


class ApiContext(Protocol):
    sessions: async_sessionmaker[AsyncSession]
    groups: GroupReader
    corp_tags: CorpTagKeeper
    moments: MassSender
    contact_ways: ContactWayKeeper
    succession: CustomerMover
    mass_sends: MassSender
    cipher: CredentialCipher
    catalog: ChannelCatalog
    opinion: OpinionSeries
    rep_review: SentMessageReview
    lead_rules: LeadRules
    deal_rules: DealRules
    media_dir: Path                    # pictures and files uploaded to send (admin/api/media.py)
    base_url: str                      # the hub's public address: uploaded media are served under it
    sla_first_response: dt.timedelta   # a person's first answer slower than this is an SLA breach
    timezone: str                      # the company's: reports' days start at its midnight
    # Normalized ("phone", "+86...") / ("email", ...) keys in a cell of text (nlp.entities).
    contact_keys: Callable[[str], list[tuple[str, str]]]
    live_settings: LiveSettings

    def on_enqueued(self) -> None: ...


def api_context(request: Request) -> ApiContext:
    return request.app.state.api


async def db_session(ctx: ApiContext = Depends(api_context)) -> AsyncIterator[AsyncSession]:
    """A session per request; routes that write commit before they answer."""
    async with ctx.sessions() as session:
        yield session


_bearer = HTTPBearer(auto_error=False, description="A token from `scrm token create --role admin`")
SESSION_COOKIE = "scrm_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def current_user(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
    session: AsyncSession = Depends(db_session),
) -> User:
    """The caller: a bearer token (scripts), or the admin panel's session cookie, whose
    changes must carry the session's CSRF token in the X-CSRF-Token header."""
    if credentials is None:
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie:
            return await _session_caller(request, cookie, session)
        raise HTTPException(status.HTTP_401_UNAUTHORIZED,
                            "missing bearer token: send 'Authorization: Bearer <token>' "
                            "(create one with `scrm token create --role admin`), or sign in at /admin",
                            headers={"WWW-Authenticate": "Bearer"})
    user = await users.authenticate(credentials.credentials, db_session=session)
    if user is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "unknown or revoked token",
                            headers={"WWW-Authenticate": "Bearer"})
    await session.commit()  # last_used_at
    return user


async def _session_caller(request: Request, cookie: str, session: AsyncSession) -> User:
    found = await web_auth.session_user(cookie, db_session=session)
    await session.commit()  # last_seen_at, or the expiry
    if found is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "your session has ended: sign in again at /admin/login")
    user, web_session = found
    if request.method not in SAFE_METHODS and not web_auth.csrf_matches(web_session,
                                                                        request.headers.get(CSRF_HEADER)):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "missing or wrong CSRF token: reload the page and try again")
    request.state.web_session = web_session
    return user


def require_role(*roles: Role) -> Callable[..., Any]:
    allowed: Sequence[Role] = roles

    async def check(user: User = Depends(current_user)) -> User:
        if user.role not in allowed:
            raise HTTPException(status.HTTP_403_FORBIDDEN,
                                f"role {user.role.value} may not do this; needs one of: "
                                + ", ".join(r.value for r in allowed))
        return user

    return check


ANY_ROLE = (Role.ADMIN, Role.OPERATOR, Role.MANAGER, Role.REP)
