"""A WeChat Official Account simulator: the API a hub calls and the server-URL callbacks.

API side: /cgi-bin/token (40013 wrong AppID, 40125 wrong secret; tokens
expire: 42001) and /cgi-bin/message/custom/send, which enforces WeChat's
customer-service rules: after a follower's message, 5 sends within 48 hours;
after a follow, QR scan or menu click, 3 within a minute; otherwise 45015
(outside the window) or 45047 (over the quota); 43004 to an unfollower; and
/cgi-bin/user/info (subscribe state, QR scene, the unionid when one is set).

Callback side: followers' messages and events become the XML WeChat posts to
the server URL, in plain, compatible or safe mode, signed like the platform and
retried three times when not answered within 5 s.

Control side (`/_sim/...`): create accounts, act as followers, move a
follower's clock (to test the 48-hour window), read what the hub sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import json
import logging
import secrets
import string
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import httpx
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from channels.base import KEEPALIVE
from channels.simulators.kept import KeptState
from channels.simulators.tencent import post_like_tencent
from channels.tencent import MessageCipher, build_xml, signature

log = logging.getLogger(__name__)

MESSAGE_WINDOW = 48 * 3600.0
MESSAGE_QUOTA = 5
ACTION_WINDOW = 60.0
ACTION_QUOTA = 3


@dataclass
class Follower:
    openid: str
    following: bool = True
    unionid: str = ""  # given by user/info, as when the account is bound to an Open Platform account
    followed_at: float = 0.0
    scene: str = ""
    # (at, sends since): the last message and the last action open separate windows.
    last_message: tuple[float, int] | None = None
    last_action: tuple[float, int] | None = None


@dataclass
class SimAccount:
    app_id: str
    app_secret: str
    token: str
    encoding_aes_key: str
    original_id: str
    mode: Literal["plain", "compatible", "safe"] = "safe"
    callback_url: str | None = None
    followers: dict[str, Follower] = field(default_factory=dict)
    tokens: dict[str, float] = field(default_factory=dict)
    sent: list[dict[str, Any]] = field(default_factory=list)
    calls: list[tuple[str, int]] = field(default_factory=list)
    faults: list[dict[str, Any]] = field(default_factory=list)
    queue: deque[dict[str, Any]] = field(default_factory=deque)
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    msg_ids: itertools.count = field(default_factory=lambda: itertools.count(int(time.time()) * 1000))
    chats: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    changed: Any = None  # called after a follower or a chat changed (the simulator saves its state)

    @property
    def cipher(self) -> MessageCipher:
        return MessageCipher(self.token, self.encoding_aes_key, self.app_id)

    def note(self, openid: str, author: str, text: str) -> None:
        self.chats.setdefault(openid, []).append({"from": author, "text": text, "at": time.time()})
        if self.changed is not None:
            self.changed()

    def transcript(self, openid: str) -> list[str]:
        return [m["text"] for m in self.sent if m["to"] == openid]


class WeChatApiError(Exception):
    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(errmsg)
        self.errcode = errcode
        self.errmsg = errmsg


class WeChatSimulator:
    def __init__(self, *, callback_deadline: float = 5.0, retry_delays: tuple[float, ...] = (1.0, 2.0, 4.0),
                 state_file: Path | None = None) -> None:
        """`state_file`: where followers, their chats and the account's sends are kept across
        restarts (the demo's); an account brought back with its saved credentials finds them."""
        self.accounts: dict[str, SimAccount] = {}
        self.kept = KeptState(state_file, self._snapshot)
        self._saved: dict[str, Any] = self.kept.load() or {}
        self.callback_deadline = callback_deadline
        self.retry_delays = retry_delays
        self._deliverers: dict[str, asyncio.Task[None]] = {}
        self._http: httpx.AsyncClient | None = None
        self.app = Starlette(
            routes=[
                Route("/cgi-bin/token", self._token, methods=["GET"]),
                Route("/cgi-bin/message/custom/send", self._custom_send, methods=["POST"]),
                Route("/cgi-bin/user/info", self._user_info, methods=["GET"]),
                Route("/", self._page, methods=["GET"]),
                Route("/_sim/accounts", self._create_account, methods=["POST"]),
                Route("/_sim/accounts", self._list_accounts, methods=["GET"]),
                Route("/_sim/accounts/{app_id}/chats/{openid}", self._chat, methods=["GET"]),
                Route("/_sim/accounts/{app_id}", self._state, methods=["GET"]),
                Route("/_sim/accounts/{app_id}/followers/{openid}/{action}", self._follower_action,
                      methods=["POST"]),
            ],
            lifespan=self._lifespan,
        )

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        yield
        await self.aclose()

    # ---- followers -------------------------------------------------------

    def create_account(self, *, mode: Literal["plain", "compatible", "safe"] = "safe", app_id: str | None = None,
                       app_secret: str | None = None, token: str | None = None,
                       encoding_aes_key: str | None = None) -> SimAccount:
        """A new account; pass saved credentials to bring one back (the demo, across runs)."""
        account = SimAccount(
            app_id=app_id or "wx" + secrets.token_hex(8),
            app_secret=app_secret or "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(32)),
            token=token or "".join(secrets.choice(string.ascii_letters) for _ in range(16)),
            encoding_aes_key=encoding_aes_key or "".join(
                secrets.choice(string.ascii_letters + string.digits) for _ in range(43)),
            original_id="gh_" + secrets.token_hex(6), mode=mode)
        self.accounts[account.app_id] = account
        saved = self._saved.get(account.app_id)
        if saved:
            for follower in saved["followers"]:
                account.followers[follower["openid"]] = Follower(**{
                    **follower, **{k: tuple(follower[k]) if follower[k] else None
                                   for k in ("last_message", "last_action")}})
            account.chats, account.sent = saved["chats"], saved["sent"]
        account.changed = self._changed
        return account

    # ---- kept across restarts ------------------------------------------------

    def _changed(self) -> None:
        self.kept.changed()

    def save(self) -> None:
        self.kept.save()

    def _snapshot(self) -> dict[str, Any]:
        return {app_id: {"followers": [dataclasses.asdict(f) for f in account.followers.values()],
                         "chats": account.chats, "sent": account.sent} for app_id, account in self.accounts.items()}

    def _follower(self, account: SimAccount, openid: str) -> Follower:
        follower = account.followers.get(openid)
        if follower is None or not follower.following:
            raise WeChatApiError(43004, f"{openid} does not follow the account")
        return follower

    def follow(self, account: SimAccount, openid: str, scene: str = "", unionid: str = "") -> dict[str, Any]:
        follower = account.followers.setdefault(openid, Follower(openid))
        follower.following = True
        follower.followed_at, follower.scene = time.time(), scene
        follower.unionid = unionid or follower.unionid
        follower.last_action = (time.time(), 0)
        account.note(openid, "system", "you followed the account" + (f" (QR code {scene})" if scene else ""))
        fields = self._base(account, openid, "event") | {"Event": "subscribe"}
        if scene:
            fields["EventKey"] = f"qrscene_{scene}"
        return self._push(account, fields)

    def unfollow(self, account: SimAccount, openid: str) -> dict[str, Any]:
        self._follower(account, openid).following = False
        account.note(openid, "system", "you unfollowed the account")
        return self._push(account, self._base(account, openid, "event") | {"Event": "unsubscribe"})

    def write(self, account: SimAccount, openid: str, text: str) -> dict[str, Any]:
        self._follower(account, openid).last_message = (time.time(), 0)
        account.note(openid, "me", text)
        return self._push(account, self._base(account, openid, "text") | {"Content": text,
                                                                           "MsgId": str(next(account.msg_ids))})

    def click(self, account: SimAccount, openid: str, key: str) -> dict[str, Any]:
        self._follower(account, openid).last_action = (time.time(), 0)
        return self._push(account, self._base(account, openid, "event") | {"Event": "CLICK", "EventKey": key})

    def age(self, account: SimAccount, openid: str, seconds: float) -> None:
        """Move the follower's last message and action `seconds` into the past."""
        follower = self._follower(account, openid)
        if follower.last_message:
            follower.last_message = (follower.last_message[0] - seconds, follower.last_message[1])
        if follower.last_action:
            follower.last_action = (follower.last_action[0] - seconds, follower.last_action[1])

    @staticmethod
    def _base(account: SimAccount, openid: str, msg_type: str) -> dict[str, Any]:
        return {"ToUserName": account.original_id, "FromUserName": openid, "CreateTime": int(time.time()),
                "MsgType": msg_type}

    # ---- callbacks -------------------------------------------------------

    def signed_request(self, account: SimAccount, fields: dict[str, Any]) -> tuple[dict[str, str], bytes]:
        timestamp, nonce = str(int(time.time())), str(secrets.randbelow(10**10))
        query = {"signature": signature(account.token, timestamp, nonce), "timestamp": timestamp, "nonce": nonce,
                 "openid": str(fields.get("FromUserName", ""))}
        plain = build_xml(fields)
        if account.mode == "plain":
            return query, plain.encode()
        envelope = account.cipher.envelope(plain, timestamp=timestamp, nonce=nonce)
        query |= {"encrypt_type": "aes", "msg_signature": envelope["MsgSignature"]}
        outer = dict(fields) if account.mode == "compatible" else {"ToUserName": account.original_id}
        outer["Encrypt"] = envelope["Encrypt"]
        return query, build_xml(outer).encode()

    def _push(self, account: SimAccount, fields: dict[str, Any]) -> dict[str, Any]:
        account.queue.append(fields)
        if account.callback_url:
            task = self._deliverers.get(account.app_id)
            if task is None or task.done():
                self._deliverers[account.app_id] = asyncio.get_running_loop().create_task(self._deliver(account))
        return fields

    async def _deliver(self, account: SimAccount) -> None:
        if self._http is None:
            self._http = httpx.AsyncClient(limits=KEEPALIVE)
        while account.queue and account.callback_url:
            fields = account.queue[0]
            query, body = self.signed_request(account, fields)
            if not await post_like_tencent(self._http, account.callback_url, query, body,
                                           deadline=self.callback_deadline, retry_delays=self.retry_delays,
                                           record=account.deliveries, fields=fields):
                log.warning("wechat sim: callback dropped after retries: %s", fields)
            account.queue.popleft()

    # ---- API -------------------------------------------------------------

    async def _token(self, request: Request) -> JSONResponse:
        params = request.query_params
        if params.get("grant_type") != "client_credential":
            return _error(WeChatApiError(40002, "invalid grant_type"))
        account = self.accounts.get(params.get("appid", ""))
        if account is None:
            return _error(WeChatApiError(40013, "invalid appid"))
        if not secrets.compare_digest(account.app_secret, params.get("secret", "")):
            account.calls.append(("token", 40125))
            return _error(WeChatApiError(40125, "invalid appsecret"))
        token = secrets.token_urlsafe(48)
        account.tokens[token] = time.monotonic() + 7200
        account.calls.append(("token", 0))
        return JSONResponse({"access_token": token, "expires_in": 7200})

    def _authorized(self, request: Request, path: str) -> SimAccount:
        """The account whose valid access_token the call carries; faults set up
        for `path` fire here (a fault without a path is for message/custom/send)."""
        token = request.query_params.get("access_token", "")
        account = next((a for a in self.accounts.values() if token in a.tokens), None)
        if account is None:
            raise WeChatApiError(40001, "invalid credential, access_token is invalid or not latest")
        if account.tokens[token] < time.monotonic():
            raise WeChatApiError(42001, "access_token expired")
        for fault in [f for f in account.faults if f.get("path", "message/custom/send") == path]:
            fault["remaining"] -= 1
            if fault["remaining"] <= 0:
                account.faults.remove(fault)
            raise WeChatApiError(fault["errcode"], fault.get("errmsg", "simulated error"))
        return account

    async def _user_info(self, request: Request) -> JSONResponse:
        try:
            account = self._authorized(request, "user/info")
        except WeChatApiError as exc:
            return _error(exc)
        openid = request.query_params.get("openid", "")
        follower = account.followers.get(openid)
        if follower is None:
            account.calls.append(("user/info", 40003))
            return _error(WeChatApiError(40003, "invalid openid"))
        account.calls.append(("user/info", 0))
        if not follower.following:
            return JSONResponse({"subscribe": 0, "openid": openid})
        info: dict[str, Any] = {"subscribe": 1, "openid": openid, "language": "zh_CN",
                                "subscribe_time": int(follower.followed_at), "remark": "", "groupid": 0,
                                "tagid_list": [], "subscribe_scene": "ADD_SCENE_QR_CODE" if follower.scene
                                else "ADD_SCENE_SEARCH", "qr_scene": 0, "qr_scene_str": follower.scene}
        if follower.unionid:
            info["unionid"] = follower.unionid
        return JSONResponse(info)

    async def _custom_send(self, request: Request) -> JSONResponse:
        account = None
        try:
            account = self._authorized(request, "message/custom/send")
            try:
                body = json.loads(await request.body() or b"{}")
            except ValueError:
                raise WeChatApiError(47001, "data format error") from None
            openid = str(body.get("touser", ""))
            follower = self._follower(account, openid)
            text = _content(body)
            self._spend_quota(follower)
        except WeChatApiError as exc:
            if account is not None:
                account.calls.append(("message/custom/send", exc.errcode))
            return _error(exc)
        account.calls.append(("message/custom/send", 0))
        entry = {"to": openid, "text": text, "at": time.time(), "msgtype": body["msgtype"]}
        if body["msgtype"] == "news":
            entry["article"] = body["news"]["articles"][0]
        account.sent.append(entry)
        account.note(openid, "hub", text)
        return JSONResponse({"errcode": 0, "errmsg": "ok"})

    @staticmethod
    def _spend_quota(follower: Follower) -> None:
        now = time.time()
        windows = []
        if follower.last_message and now - follower.last_message[0] <= MESSAGE_WINDOW:
            windows.append(("last_message", MESSAGE_QUOTA))
        if follower.last_action and now - follower.last_action[0] <= ACTION_WINDOW:
            windows.append(("last_action", ACTION_QUOTA))
        if not windows:
            raise WeChatApiError(45015, "response out of time limit or subscription is canceled")
        for name, quota in windows:
            at, used = getattr(follower, name)
            if used < quota:
                setattr(follower, name, (at, used + 1))
                return
        raise WeChatApiError(45047, "out of response count limit")

    # ---- control ---------------------------------------------------------

    def _account_of(self, request: Request) -> SimAccount:
        account = self.accounts.get(request.path_params["app_id"])
        if account is None:
            raise HTTPException(404, f"no simulated account {request.path_params['app_id']}")
        return account

    async def _create_account(self, request: Request) -> JSONResponse:
        body = await _json(request)
        account = self.create_account(mode=body.get("mode", "safe"))
        account.callback_url = body.get("callback_url") or None
        return JSONResponse(_credentials(account))

    async def _list_accounts(self, request: Request) -> JSONResponse:
        return JSONResponse([{"app_id": a.app_id, "mode": a.mode, "callback_url": a.callback_url}
                             for a in self.accounts.values()])

    async def _chat(self, request: Request) -> JSONResponse:
        account = self._account_of(request)
        follower = account.followers.get(request.path_params["openid"])
        return JSONResponse({"following": bool(follower and follower.following),
                             "messages": account.chats.get(request.path_params["openid"], [])})

    async def _page(self, request: Request) -> HTMLResponse:
        return HTMLResponse(resources.files("channels.simulators").joinpath("wechat.html").read_text(encoding="utf-8"))

    async def _state(self, request: Request) -> JSONResponse:
        account = self._account_of(request)
        return JSONResponse({**_credentials(account), "sent": account.sent, "calls": account.calls,
                             "followers": {o: {"following": f.following} for o, f in account.followers.items()}})

    async def _follower_action(self, request: Request) -> JSONResponse:
        account = self._account_of(request)
        openid, action = request.path_params["openid"], request.path_params["action"]
        body = await _json(request)
        try:
            if action == "follow":
                fields = self.follow(account, openid, str(body.get("scene", "")), str(body.get("unionid", "")))
            elif action == "unfollow":
                fields = self.unfollow(account, openid)
            elif action == "messages":
                fields = self.write(account, openid, str(body.get("text", "")))
            elif action == "clicks":
                fields = self.click(account, openid, str(body.get("key", "")))
            elif action == "age":
                self.age(account, openid, float(body.get("seconds", 0)))
                fields = {}
            else:
                raise HTTPException(404, f"unknown action {action}")
        except WeChatApiError as exc:
            return _error(exc, status=400)
        return JSONResponse({"callback": fields})

    async def aclose(self) -> None:
        self.save()
        for task in self._deliverers.values():
            task.cancel()
        if self._http is not None:
            await self._http.aclose()
            self._http = None


def _credentials(account: SimAccount) -> dict[str, Any]:
    return {"app_id": account.app_id, "app_secret": account.app_secret, "token": account.token,
            "encoding_aes_key": account.encoding_aes_key, "mode": account.mode}


def _error(exc: WeChatApiError, status: int = 200) -> JSONResponse:
    return JSONResponse({"errcode": exc.errcode, "errmsg": exc.errmsg}, status_code=status)


async def _json(request: Request) -> dict[str, Any]:
    body = await request.body()
    try:
        data = json.loads(body) if body else {}
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _content(body: dict[str, Any]) -> str:
    """What a customer-service text or article message shows, as the transcript keeps it."""
    if body.get("msgtype") == "text":
        content = (body.get("text") or {}).get("content")
        if not content:
            raise WeChatApiError(44004, "empty content")
        return str(content)
    if body.get("msgtype") == "news":
        articles = (body.get("news") or {}).get("articles") or []
        if len(articles) != 1:
            raise WeChatApiError(45008, "article size out of limit")  # customer service sends one article
        article = articles[0]
        if not article.get("title") or not str(article.get("url", "")).startswith(("http://", "https://")):
            raise WeChatApiError(47001, "data format error")
        lines = [article["title"], article.get("description") or ""]
        lines += [f"[picture] {article['picurl']}"] if article.get("picurl") else []
        return "\n".join(line for line in lines if line)
    raise WeChatApiError(40008, f"invalid message type {body.get('msgtype')}")
