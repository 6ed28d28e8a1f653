"""An async client for Tencent's server APIs (WeCom qyapi, WeChat api), at any base URL.

wechatpy's clients are synchronous and hard-code the token URL, so the hub has
its own: one httpx client, an access_token cached per app until shortly before
it expires, fetched once at a time, and fetched again once when the platform
says it is invalid or expired (40014 / 42001 / 40001). Errors come back as
`ApiError` with the platform's errcode, which each adapter maps for the
dispatcher. The two products differ only in how a token is asked for.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from channels.base import KEEPALIVE

log = logging.getLogger(__name__)

TOKEN_INVALID = frozenset({40001, 40014, 42001})
RATE_LIMITED = frozenset({45009, 45033})
SYSTEM_BUSY = -1


class ApiError(Exception):
    def __init__(self, errcode: int, errmsg: str, path: str) -> None:
        super().__init__(f"{path}: {errcode} {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg


def busy(exc: ApiError) -> bool:
    """The platform declined for now (system busy, a rate limit) and says to try again later:
    nothing was done, so the same call may be made again."""
    return exc.errcode == SYSTEM_BUSY or exc.errcode in RATE_LIMITED


class ApiUnavailable(Exception):
    """Network error, timeout, 5xx or a body that is not the platform's JSON."""


@dataclass(frozen=True)
class AppKey:
    api_base: str
    app_id: str  # WeCom corp id, WeChat AppID
    secret: str


@dataclass
class _Token:
    value: str
    expires_at: float


class SharedTokens(Protocol):
    """Access tokens kept where every process of the hub finds them (`hub/shared_limits.py`: Redis).
    WeChat invalidates an Official Account's previous token (after 5 minutes) when a new one is
    fetched: processes each fetching their own would keep refusing one another's."""

    async def get(self, key: str) -> tuple[str, float] | None:
        """The token and its seconds left, or None."""
        ...

    async def put(self, key: str, value: str, seconds: float) -> None: ...

    def lock(self, key: str) -> contextlib.AbstractAsyncContextManager[None]:
        """Held by one process at a time: the one fetching."""
        ...


class TencentApiClient:
    def __init__(self, *, product: str, token_path: str, token_params: Callable[[AppKey], dict[str, str]],
                 timeout: float = 15.0, refresh_margin: float = 300.0) -> None:
        self.product = product
        self.token_path = token_path
        self.token_params = token_params
        self._http = httpx.AsyncClient(timeout=timeout, limits=KEEPALIVE)
        self._tokens: dict[AppKey, _Token] = {}
        self._locks: dict[AppKey, asyncio.Lock] = {}
        self.refresh_margin = refresh_margin
        self.shared: SharedTokens | None = None  # set by the hub when several processes must agree

    async def access_token(self, app: AppKey, *, force: bool = False) -> str:
        cached = self._tokens.get(app)
        if cached is not None and not force and cached.expires_at > time.monotonic():
            return cached.value
        lock = self._locks.setdefault(app, asyncio.Lock())
        async with lock:
            again = self._tokens.get(app)
            if again is not None and again is not cached and again.expires_at > time.monotonic():
                return again.value  # fetched by another caller while we waited
            refused = cached.value if force and cached is not None else None
            token = await self._shared_token(app, refused) if self.shared is not None else None
            if token is None:
                token = await self._fetch(app)
            self._tokens[app] = token
            return token.value

    async def _fetch(self, app: AppKey) -> _Token:
        body = await self._request("GET", app.api_base, self.token_path, params=self.token_params(app))
        _raise_for_errcode(body, self.token_path)
        lifetime = float(body.get("expires_in") or 7200)
        log.info("%s %s: new access_token, valid %.0fs", self.product, app.app_id, lifetime)
        return _Token(str(body["access_token"]), time.monotonic() + max(60.0, lifetime - self.refresh_margin))

    async def _shared_token(self, app: AppKey, refused: str | None) -> _Token | None:
        """The token every process uses: the shared one, unless it is the one just refused; else
        fetched by this process (under the shared lock) and shared. None: the store is away."""
        assert self.shared is not None
        key = f"token:{self.product}:{app.api_base}:{app.app_id}:{hashlib.sha256(app.secret.encode()).hexdigest()[:16]}"
        try:
            async with self.shared.lock(key):
                found = await self.shared.get(key)
                if found is not None and found[0] != refused and found[1] > 60:
                    return _Token(found[0], time.monotonic() + found[1])
                token = await self._fetch(app)
                await self.shared.put(key, token.value, token.expires_at - time.monotonic())
                return token
        except (ApiError, ApiUnavailable):
            raise
        except Exception as exc:  # the store is away: this process fetches for itself meanwhile
            log.warning("%s %s: shared token store unavailable (%s: %s); using this process's own token",
                        self.product, app.app_id, type(exc).__name__, exc)
            return None

    async def call(self, app: AppKey, path: str, payload: dict[str, Any] | None = None, *,
                   params: dict[str, str] | None = None, files: dict[str, Any] | None = None) -> dict[str, Any]:
        """POST `payload` to `path` (GET with `params` when there is no payload; a multipart upload
        of `files` when given); a token the platform no longer accepts is fetched again, once."""
        for attempt in (1, 2):
            token = await self.access_token(app, force=attempt == 2)
            query = {**(params or {}), "access_token": token}
            if files is not None:
                body = await self._request("POST", app.api_base, path, params=query, files=files)
            elif payload is None:
                body = await self._request("GET", app.api_base, path, params=query)
            else:
                body = await self._request("POST", app.api_base, path, params=query, json=payload)
            if body.get("errcode") in TOKEN_INVALID and attempt == 1:
                log.info("%s %s: access_token refused (%s); fetching a new one", self.product, app.app_id,
                         body["errcode"])
                continue
            _raise_for_errcode(body, path)
            return body
        raise AssertionError("unreachable")

    async def _request(self, method: str, base: str, path: str, **kwargs: Any) -> dict[str, Any]:
        url = base.rstrip("/") + path
        try:
            response = await self._http.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            raise ApiUnavailable(f"cannot reach {self.product} at {base}: {type(exc).__name__}: {exc}") from None
        if response.status_code >= 500:
            raise ApiUnavailable(f"{self.product} {path} answered HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            raise ApiUnavailable(f"{base} did not answer {path} like the {self.product} API "
                                 f"(HTTP {response.status_code}): check the API base URL") from None
        if not isinstance(body, dict):
            raise ApiUnavailable(f"{self.product} {path}: unexpected answer {str(body)[:200]}")
        return body

    async def close(self) -> None:
        await self._http.aclose()


def _raise_for_errcode(body: dict[str, Any], path: str) -> None:
    errcode = body.get("errcode", 0)
    if errcode:
        raise ApiError(int(errcode), str(body.get("errmsg", "")), path)
