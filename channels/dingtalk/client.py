"""The DingTalk OpenAPI (api.dingtalk.com v1.0) at any base URL, asynchronously.

One httpx client; an access token per app (AppKey) cached until five minutes
before it expires, fetched once at a time, and fetched again once when
DingTalk answers 401. Errors carry the HTTP status and DingTalk's `code`,
which the adapter maps for the dispatcher.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

import httpx

from channels.base import KEEPALIVE

log = logging.getLogger(__name__)

DEFAULT_API_BASE = "https://api.dingtalk.com"
REFRESH_MARGIN = 300.0


class DingTalkError(Exception):
    def __init__(self, status: int, code: str, message: str, path: str) -> None:
        super().__init__(f"{path}: HTTP {status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message

    @property
    def rate_limited(self) -> bool:
        return self.status == 429 or "QpsLimit" in self.code or "Throttl" in self.code or "FlowControl" in self.code


class DingTalkUnavailable(Exception):
    """Network error, timeout, 5xx, or an answer that is not DingTalk's JSON."""


@dataclass(frozen=True)
class App:
    api_base: str
    app_key: str     # also the stream client id
    app_secret: str


@dataclass
class _Token:
    value: str
    expires_at: float


class DingTalkApi:
    def __init__(self, *, timeout: float = 15.0) -> None:
        self._http = httpx.AsyncClient(timeout=timeout, limits=KEEPALIVE)
        self._tokens: dict[App, _Token] = {}
        self._locks: dict[App, asyncio.Lock] = {}

    @property
    def http(self) -> httpx.AsyncClient:
        return self._http

    async def access_token(self, app: App, *, force: bool = False) -> str:
        cached = self._tokens.get(app)
        if cached is not None and not force and cached.expires_at > time.monotonic():
            return cached.value
        async with self._locks.setdefault(app, asyncio.Lock()):
            again = self._tokens.get(app)
            if again is not None and again is not cached and again.expires_at > time.monotonic():
                return again.value
            body = await self._request(app.api_base, "/v1.0/oauth2/accessToken",
                                       {"appKey": app.app_key, "appSecret": app.app_secret}, headers={})
            lifetime = float(body.get("expireIn") or 7200)
            token = _Token(str(body["accessToken"]), time.monotonic() + max(60.0, lifetime - REFRESH_MARGIN))
            self._tokens[app] = token
            log.info("DingTalk %s: new access token, valid %.0fs", app.app_key, lifetime)
            return token.value

    async def call(self, app: App, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        """POST `payload`; a token DingTalk no longer accepts (401) is fetched again, once."""
        for attempt in (1, 2):
            token = await self.access_token(app, force=attempt == 2)
            try:
                return await self._request(app.api_base, path, payload,
                                           headers={"x-acs-dingtalk-access-token": token})
            except DingTalkError as exc:
                if exc.status == 401 and attempt == 1:
                    log.info("DingTalk %s: access token refused (%s); fetching a new one", app.app_key, exc.code)
                    continue
                raise
        raise AssertionError("unreachable")

    async def post_webhook(self, url: str, payload: dict[str, Any]) -> dict[str, Any]:
        """POST to a session webhook or custom robot URL (old-style `errcode` answers)."""
        status, body = await self._post(url, payload, headers={}, what="DingTalk webhook")
        errcode = int(body.get("errcode") or 0)
        if errcode:
            raise DingTalkError(status, str(errcode), str(body.get("errmsg", "")), "webhook")
        return body

    async def _request(self, base: str, path: str, payload: dict[str, Any], *,
                       headers: dict[str, str]) -> dict[str, Any]:
        status, body = await self._post(base.rstrip("/") + path, payload, headers=headers,
                                        what=f"DingTalk {path} (check the API base URL {base})")
        if status >= 400:
            raise DingTalkError(status, str(body.get("code", "")), str(body.get("message", "")), path)
        return body

    async def _post(self, url: str, payload: dict[str, Any], *, headers: dict[str, str],
                    what: str) -> tuple[int, dict[str, Any]]:
        """Status and JSON object of a POST; DingTalkUnavailable for anything but a JSON answer below 500."""
        try:
            response = await self._http.post(url, json=payload, headers=headers)
        except httpx.HTTPError as exc:
            raise DingTalkUnavailable(f"cannot reach {what}: {type(exc).__name__}: {exc}") from None
        if response.status_code >= 500:
            raise DingTalkUnavailable(f"{what} answered HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            raise DingTalkUnavailable(f"{what} answered HTTP {response.status_code} without JSON") from None
        if not isinstance(body, dict):
            raise DingTalkUnavailable(f"{what}: unexpected answer {str(body)[:200]}")
        return response.status_code, body

    async def close(self) -> None:
        await self._http.aclose()
