"""A Telegram Bot API simulator: an ASGI app with the real wire format.

Bot API side (what the hub calls): `/bot<token>/<method>` with JSON or form
bodies, answering `{"ok": true, "result": ...}` or Telegram's error objects
(401, 403 blocked / never started, 400 chat not found, 409 webhook conflict,
429 with `parameters.retry_after`). Updates go to the registered webhook with
the secret token header (redelivered until answered 2xx), or wait for
getUpdates long polls.

Control side (what a test or the demo page calls): `/_sim/...` to create bots
and users, type messages, press buttons, block the bot, inject faults, and read
what the bot sent. `/` serves a chat page for the demo.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import json
import logging
import math
import secrets
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.datastructures import UploadFile as StarletteUploadFile
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from channels.base import KEEPALIVE
from channels.simulators.kept import KeptState
from crm_core.waiting import wait_any

log = logging.getLogger(__name__)


@dataclass
class SimUser:
    id: int
    first_name: str
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = "en"

    def as_user(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        for key in ("last_name", "username", "language_code"):
            if getattr(self, key):
                data[key] = getattr(self, key)
        return data

    def as_chat(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "type": "private", "first_name": self.first_name}
        if self.username:
            data["username"] = self.username
        return data


@dataclass
class Fault:
    method: str
    error_code: int
    description: str
    retry_after: int | None = None
    chat_id: int | None = None
    remaining: int = 1


@dataclass
class Bucket:
    """Token bucket used to emulate Telegram's flood control."""

    rate: float
    burst: float
    tokens: float = -1.0
    stamp: float = 0.0

    def take(self) -> float:
        """0 if allowed, else seconds until a token is free."""
        now = time.monotonic()
        if self.tokens < 0:
            self.tokens, self.stamp = self.burst, now
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


@dataclass
class SimBot:
    id: int
    token: str
    username: str
    first_name: str
    webhook_url: str | None = None
    secret_token: str | None = None
    allowed_updates: list[str] | None = None
    # Telegram never reuses update ids; starting from the clock keeps a restarted
    # simulator from replaying ids a hub has already stored.
    next_update_id: int = field(default_factory=lambda: int(time.time() * 1000))
    queue: deque[dict[str, Any]] = field(default_factory=deque)
    queue_changed: asyncio.Event = field(default_factory=asyncio.Event)
    started_by: set[int] = field(default_factory=set)
    blocked_by: set[int] = field(default_factory=set)
    sent: list[dict[str, Any]] = field(default_factory=list)
    send_requests: int = 0
    calls: list[tuple[str, float]] = field(default_factory=list)  # (method, monotonic time), faults included
    transcript: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    message_ids: dict[int, int] = field(default_factory=dict)  # chat id -> the last message id in it
    faults: list[Fault] = field(default_factory=list)
    answered_callbacks: list[str] = field(default_factory=list)
    webhook_deliveries: int = 0
    webhook_failures: int = 0
    last_webhook_error: str | None = None
    send_delay: float = 0.0
    enforce_limits: bool = True
    global_per_second: float = 30.0
    chat_per_second: float = 1.0
    burst: float = 3.0
    buckets: dict[Any, Bucket] = field(default_factory=dict)
    flood_refusals: list[tuple[Any, float]] = field(default_factory=list)  # 429s: ("global" or chat id, when)
    sent_times: list[float] = field(default_factory=list)  # when each message in `sent` was accepted

    def busiest_second(self) -> int:
        """The most sends asked for within any one second, accepted or refused with a 429 (Telegram
        allows 30 a second per bot)."""
        times = sorted(self.sent_times + [moment for _, moment in self.flood_refusals])
        busiest, start = 0, 0
        for end, moment in enumerate(times):
            while moment - times[start] >= 1.0:
                start += 1
            busiest = max(busiest, end - start + 1)
        return busiest

    def as_user(self) -> dict[str, Any]:
        return {"id": self.id, "is_bot": True, "first_name": self.first_name, "username": self.username}


class TelegramApiError(Exception):
    def __init__(self, code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code, self.description, self.retry_after = code, description, retry_after

    def response(self) -> JSONResponse:
        body: dict[str, Any] = {"ok": False, "error_code": self.code, "description": self.description}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return JSONResponse(body, status_code=self.code)


class TelegramSimulator:
    """The simulator's state and its ASGI app (`.app`)."""

    def __init__(self, *, webhook_retry_delays: tuple[float, ...] = (0.2, 0.5, 1, 2, 5, 10),
                 state_file: Path | None = None) -> None:
        """`state_file`: where users, bots and chats are kept across restarts (the demo's); read
        here when it exists, written a moment after each change and on close."""
        self.bots: dict[int, SimBot] = {}
        self.users: dict[int, SimUser] = {}
        self.webhook_retry_delays = webhook_retry_delays
        self._deliverers: dict[int, asyncio.Task[None]] = {}
        self._http: httpx.AsyncClient | None = None
        self._closing = asyncio.Event()
        self.app = Starlette(
            routes=[
                Route("/bot{token}/{method}", self._api, methods=["GET", "POST"]),
                Route("/_sim/bots", self._create_bot, methods=["POST"]),
                Route("/_sim/bots", self._list_bots, methods=["GET"]),
                Route("/_sim/bots/{bot_id:int}/config", self._config, methods=["POST"]),
                Route("/_sim/bots/{bot_id:int}/faults", self._add_fault, methods=["POST"]),
                Route("/_sim/bots/{bot_id:int}/sent", self._sent, methods=["GET"]),
                Route("/_sim/bots/{bot_id:int}/state", self._state, methods=["GET"]),
                Route("/_sim/bots/{bot_id:int}/users/{user_id:int}/{action}", self._user_action, methods=["POST"]),
                Route("/_sim/bots/{bot_id:int}/chats/{user_id:int}", self._chat, methods=["GET"]),
                Route("/", self._page, methods=["GET"]),
            ],
            lifespan=self._lifespan,
        )
        self.kept = KeptState(state_file, self._snapshot)
        saved = self.kept.load()
        if saved:
            self._restore(saved)

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        self._closing.clear()
        yield
        await self.aclose()

    # ---- state helpers used by tests directly ----------------------------

    def create_bot(self, username: str = "scrm_demo_bot", first_name: str = "SCRM Demo", token: str | None = None,
                   bot_id: int | None = None) -> SimBot:
        if token is None:
            bot_id = bot_id or 7_000_000_000 + len(self.bots) + 1
            token = f"{bot_id}:{secrets.token_urlsafe(26)[:35]}"
        bot_id = int(token.split(":", 1)[0])
        bot = SimBot(id=bot_id, token=token, username=username, first_name=first_name)
        self.bots[bot_id] = bot
        return bot

    def user(self, user_id: int, first_name: str | None = None, **extra: Any) -> SimUser:
        user = self.users.get(user_id)
        if user is None:
            user = SimUser(id=user_id, first_name=first_name or f"User {user_id}", **extra)
            self.users[user_id] = user
        return user

    def bot_for_token(self, token: str) -> SimBot:
        bot_id = token.split(":", 1)[0]
        bot = self.bots.get(int(bot_id)) if bot_id.isdigit() else None
        if bot is None or not secrets.compare_digest(bot.token, token):
            raise TelegramApiError(401, "Unauthorized")
        return bot

    # ---- customer actions ------------------------------------------------

    def user_writes(self, bot: SimBot, user: SimUser, text: str | None = None, *, photo: bool = False,
                    caption: str | None = None) -> dict[str, Any]:
        if user.id in bot.blocked_by:
            raise TelegramApiError(400, "the user has blocked the bot; unblock first")
        if text is not None and text.startswith("/start"):
            bot.started_by.add(user.id)
        message: dict[str, Any] = {
            "message_id": self._next_message_id(bot, user.id),
            "from": user.as_user(),
            "chat": user.as_chat(),
            "date": int(time.time()),
        }
        if photo:
            message["photo"] = [
                {"file_id": f"AgAC{secrets.token_hex(8)}", "file_unique_id": secrets.token_hex(4), "width": w,
                 "height": w * 3 // 4, "file_size": w * 90} for w in (90, 320, 1280)
            ]
            if caption:
                message["caption"] = caption
        else:
            message["text"] = text or ""
        if text and text.startswith("/"):
            command = text.split()[0]
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        # Writing to a bot means having started it, as in the real app.
        bot.started_by.add(user.id)
        self._log(bot, user.id, "user", text if not photo else f"[photo] {caption or ''}".strip(), message)
        return self._push(bot, "message", message)

    def user_edits(self, bot: SimBot, user: SimUser, message_id: int, text: str) -> dict[str, Any]:
        message = {"message_id": message_id, "from": user.as_user(), "chat": user.as_chat(),
                   "date": int(time.time()) - 5, "edit_date": int(time.time()), "text": text}
        self._log(bot, user.id, "user", f"[edited] {text}", message)
        return self._push(bot, "edited_message", message)

    def user_presses(self, bot: SimBot, user: SimUser, message_id: int, data: str) -> dict[str, Any]:
        origin = next((m["raw"] for m in bot.transcript.get(user.id, [])
                       if m["from"] == "bot" and m["raw"].get("message_id") == message_id), None)
        if origin is None:
            raise TelegramApiError(400, f"no bot message {message_id} in this chat")
        query = {"id": str(secrets.randbits(62)), "from": user.as_user(), "message": origin,
                 "chat_instance": str(user.id * 7), "data": data}
        self._log(bot, user.id, "user", f"[pressed] {data}", query)
        return self._push(bot, "callback_query", query)

    def user_blocks(self, bot: SimBot, user: SimUser, blocked: bool = True) -> dict[str, Any]:
        if blocked:
            bot.blocked_by.add(user.id)
        else:
            bot.blocked_by.discard(user.id)
        old, new = ("member", "kicked") if blocked else ("kicked", "member")
        change = {
            "chat": user.as_chat(),
            "from": user.as_user(),
            "date": int(time.time()),
            "old_chat_member": {"status": old, "user": bot.as_user()},
            "new_chat_member": {"status": new, "user": bot.as_user(),
                                **({"until_date": 0} if new == "kicked" else {})},
        }
        self._log(bot, user.id, "system", "blocked the bot" if blocked else "unblocked the bot", change)
        return self._push(bot, "my_chat_member", change)

    # ---- update delivery -------------------------------------------------

    def _push(self, bot: SimBot, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        update = {"update_id": bot.next_update_id, kind: payload}
        bot.next_update_id += 1
        self._changed()
        if bot.allowed_updates and kind not in bot.allowed_updates:
            return update
        bot.queue.append(update)
        bot.queue_changed.set()
        if bot.webhook_url:
            self._ensure_deliverer(bot)
        return update

    def _ensure_deliverer(self, bot: SimBot) -> None:
        task = self._deliverers.get(bot.id)
        if task is None or task.done():
            self._deliverers[bot.id] = asyncio.get_running_loop().create_task(self._deliver(bot))

    async def _deliver(self, bot: SimBot) -> None:
        """Push queued updates in order; an unanswered update is retried, like Telegram does."""
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=10, limits=KEEPALIVE)
        failures = 0
        while bot.queue and bot.webhook_url:
            update = bot.queue[0]
            headers = {"content-type": "application/json"}
            if bot.secret_token:
                headers["X-Telegram-Bot-Api-Secret-Token"] = bot.secret_token
            try:
                resp = await self._http.post(bot.webhook_url, content=json.dumps(update), headers=headers)
                ok = 200 <= resp.status_code < 300
                error = None if ok else f"Wrong response from the webhook: {resp.status_code} {resp.reason_phrase}"
            except httpx.HTTPError as exc:
                ok, error, resp = False, f"Connection failed: {exc}", None
            bot.webhook_deliveries += 1
            if ok:
                failures = 0
                bot.queue.popleft()
                self._changed()
                await self._webhook_reply(bot, resp)
                continue
            bot.webhook_failures += 1
            bot.last_webhook_error = error
            delay = self.webhook_retry_delays[min(failures, len(self.webhook_retry_delays) - 1)]
            failures += 1
            await asyncio.sleep(delay)

    async def _webhook_reply(self, bot: SimBot, resp: httpx.Response | None) -> None:
        # Telegram executes a method returned in the webhook response body.
        if resp is None or not resp.content:
            return
        try:
            body = resp.json()
        except ValueError:
            return
        if isinstance(body, dict) and body.get("method"):
            try:
                await self._call(bot, str(body["method"]), {k: v for k, v in body.items() if k != "method"})
            except TelegramApiError as exc:
                log.info("webhook reply method %s failed: %s", body["method"], exc.description)

    # ---- Bot API ---------------------------------------------------------

    async def _api(self, request: Request) -> JSONResponse:
        try:
            bot = self.bot_for_token(request.path_params["token"])
            params = await _params(request)
            result = await self._call(bot, request.path_params["method"], params)
        except TelegramApiError as exc:
            return exc.response()
        return JSONResponse({"ok": True, "result": result})

    async def _call(self, bot: SimBot, method: str, params: dict[str, Any]) -> Any:
        name = method.lower()
        bot.calls.append((name, time.monotonic()))
        if name in ("sendmessage", "sendphoto", "senddocument"):
            bot.send_requests += 1
        for fault in list(bot.faults):
            chat = params.get("chat_id")
            if fault.method.lower() == name and (fault.chat_id is None or str(fault.chat_id) == str(chat)):
                fault.remaining -= 1
                if fault.remaining <= 0:
                    bot.faults.remove(fault)
                raise TelegramApiError(fault.error_code, fault.description, fault.retry_after)
        handler = {
            "getme": self._get_me,
            "setwebhook": self._set_webhook,
            "deletewebhook": self._delete_webhook,
            "getwebhookinfo": self._webhook_info,
            "getupdates": self._get_updates,
            "sendmessage": self._send_message,
            "sendphoto": self._send_photo,
            "senddocument": self._send_document,
            "answercallbackquery": self._answer_callback,
        }.get(name)
        if handler is None:
            raise TelegramApiError(404, "Not Found")
        return await handler(bot, params)

    async def _get_me(self, bot: SimBot, params: dict[str, Any]) -> Any:
        return {**bot.as_user(), "can_join_groups": True, "can_read_all_group_messages": False,
                "supports_inline_queries": False}

    async def _set_webhook(self, bot: SimBot, params: dict[str, Any]) -> Any:
        url = str(params.get("url") or "")
        if not url.startswith(("http://", "https://")):
            raise TelegramApiError(400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook")
        bot.webhook_url = url
        bot.secret_token = params.get("secret_token") or None
        allowed = params.get("allowed_updates")
        bot.allowed_updates = list(allowed) if allowed else None
        self._changed()
        if bot.queue:
            self._ensure_deliverer(bot)
        return True

    async def _delete_webhook(self, bot: SimBot, params: dict[str, Any]) -> Any:
        bot.webhook_url = None
        self._changed()
        return True

    async def _webhook_info(self, bot: SimBot, params: dict[str, Any]) -> Any:
        info: dict[str, Any] = {"url": bot.webhook_url or "", "has_custom_certificate": False,
                                "pending_update_count": len(bot.queue)}
        if bot.last_webhook_error:
            info["last_error_message"] = bot.last_webhook_error
        return info

    async def _get_updates(self, bot: SimBot, params: dict[str, Any]) -> Any:
        if bot.webhook_url:
            raise TelegramApiError(409, "Conflict: can't use getUpdates method while webhook is active; "
                                        "use deleteWebhook to delete the webhook first")
        offset = int(params.get("offset") or 0)
        limit = int(params.get("limit") or 100)
        timeout = float(params.get("timeout") or 0)
        if params.get("allowed_updates"):
            bot.allowed_updates = list(params["allowed_updates"])
        # An offset confirms every update before it: they are gone for good.
        while bot.queue and bot.queue[0]["update_id"] < offset:
            bot.queue.popleft()
            self._changed()
        if not bot.queue and timeout > 0 and not self._closing.is_set():
            bot.queue_changed.clear()
            await wait_any(bot.queue_changed, self._closing, timeout=timeout)
        return list(itertools.islice(bot.queue, limit))

    async def _send_message(self, bot: SimBot, params: dict[str, Any]) -> Any:
        text = params.get("text")
        if not text:
            raise TelegramApiError(400, "Bad Request: message text is empty")
        if len(str(text)) > 4096:
            raise TelegramApiError(400, "Bad Request: message is too long")
        return await self._bot_sends(bot, params, {"text": str(text)})

    async def _send_photo(self, bot: SimBot, params: dict[str, Any]) -> Any:
        photo = str(params.get("photo") or "")
        if not photo.startswith(("http://", "https://")):
            # The hub sends pictures by URL; file uploads and file_ids are not simulated.
            raise TelegramApiError(400, "Bad Request: wrong remote file identifier specified")
        caption = str(params.get("caption") or "")
        if len(caption) > 1024:
            raise TelegramApiError(400, "Bad Request: message caption is too long")
        # The sizes Telegram makes of it; "url" (not in the Bot API) keeps what was sent, for tests and the page.
        extra: dict[str, Any] = {"photo": [
            {"file_id": f"AgAC{secrets.token_hex(8)}", "file_unique_id": secrets.token_hex(4), "width": w,
             "height": w * 3 // 4, "url": photo} for w in (90, 320, 1280)]}
        if caption:
            extra["caption"] = caption
        return await self._bot_sends(bot, params, extra)

    async def _send_document(self, bot: SimBot, params: dict[str, Any]) -> Any:
        """A file uploaded in the request (multipart), or by address: Telegram fetches only PDF, ZIP
        and GIF files that way (the Bot API's sendDocument). The refusal's wording for other files
        is not confirmed from Telegram's answers."""
        document = params.get("document")
        if isinstance(document, StarletteUploadFile):
            data = await document.read()
            if len(data) > 50 * 2**20:
                raise TelegramApiError(413, "Request Entity Too Large")
            name, size = document.filename or "file", len(data)
            mime = document.content_type or "application/octet-stream"
        elif isinstance(document, str) and document.startswith(("http://", "https://")):
            name = document.rsplit("/", 1)[-1].split("?")[0]
            if not name.lower().endswith((".pdf", ".zip", ".gif")):
                raise TelegramApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")
            size, mime = 0, {"pdf": "application/pdf", "zip": "application/zip"}.get(name[-3:].lower(), "image/gif")
        else:
            raise TelegramApiError(400, "Bad Request: there is no document in the request")
        caption = str(params.get("caption") or "")
        if len(caption) > 1024:
            raise TelegramApiError(400, "Bad Request: message caption is too long")
        extra: dict[str, Any] = {"document": {"file_name": name, "mime_type": mime, "file_size": size,
                                              "file_id": f"BQAC{secrets.token_hex(8)}",
                                              "file_unique_id": secrets.token_hex(4)}}
        if caption:
            extra["caption"] = caption
        return await self._bot_sends(bot, params, extra)

    async def _bot_sends(self, bot: SimBot, params: dict[str, Any], content: dict[str, Any]) -> Any:
        if bot.send_delay:
            await asyncio.sleep(bot.send_delay)
        try:
            chat_id = int(params.get("chat_id"))
        except (TypeError, ValueError):
            raise TelegramApiError(400, "Bad Request: chat not found") from None
        user = self.users.get(chat_id)
        if user is None:
            raise TelegramApiError(400, "Bad Request: chat not found")
        if chat_id in bot.blocked_by:
            raise TelegramApiError(403, "Forbidden: bot was blocked by the user")
        if chat_id not in bot.started_by:
            raise TelegramApiError(403, "Forbidden: bot can't initiate conversation with a user")
        if bot.enforce_limits:
            for key, rate in (("global", bot.global_per_second), (chat_id, bot.chat_per_second)):
                bucket = bot.buckets.setdefault(key, Bucket(rate=rate, burst=max(bot.burst, 1.0)))
                wait = bucket.take()
                if wait > 0:
                    retry = max(1, math.ceil(wait))
                    bot.flood_refusals.append((key, time.monotonic()))
                    raise TelegramApiError(429, f"Too Many Requests: retry after {retry}", retry_after=retry)
        message: dict[str, Any] = {
            "message_id": self._next_message_id(bot, chat_id),
            "from": bot.as_user(),
            "chat": user.as_chat(),
            "date": int(time.time()),
            **content,
        }
        markup = params.get("reply_markup")
        if markup:
            message["reply_markup"] = markup
        bot.sent.append({"chat_id": chat_id, **message})
        bot.sent_times.append(time.monotonic())
        shown = message.get("text", message.get("caption"))
        if "document" in message:
            shown = "\n".join(filter(None, [shown, f"[file] {message['document']['file_name']}"]))
        self._log(bot, chat_id, "bot", shown, message)
        return message

    async def _answer_callback(self, bot: SimBot, params: dict[str, Any]) -> Any:
        bot.answered_callbacks.append(str(params.get("callback_query_id")))
        return True

    # ---- control API -----------------------------------------------------

    async def _create_bot(self, request: Request) -> JSONResponse:
        try:
            body = await _json(request)
        except TelegramApiError as exc:
            return exc.response()
        bot = self.create_bot(username=body.get("username", "scrm_demo_bot"),
                              first_name=body.get("first_name", "SCRM Demo"), token=body.get("token"))
        return JSONResponse({"id": bot.id, "token": bot.token, "username": bot.username})

    async def _list_bots(self, request: Request) -> JSONResponse:
        return JSONResponse([{"id": b.id, "username": b.username, "webhook_url": b.webhook_url}
                             for b in self.bots.values()])

    def _bot(self, request: Request) -> SimBot:
        bot = self.bots.get(request.path_params["bot_id"])
        if bot is None:
            raise TelegramApiError(404, "no such simulated bot")
        return bot

    async def _config(self, request: Request) -> JSONResponse:
        try:
            bot = self._bot(request)
            body = await _json(request)
        except TelegramApiError as exc:
            return exc.response()
        for key in ("send_delay", "enforce_limits", "global_per_second", "chat_per_second", "burst"):
            if key in body:
                setattr(bot, key, body[key])
        bot.buckets.clear()
        return JSONResponse({"ok": True})

    async def _add_fault(self, request: Request) -> JSONResponse:
        try:
            bot = self._bot(request)
            body = await _json(request)
        except TelegramApiError as exc:
            return exc.response()
        code = int(body.get("error_code", 429))
        retry_after = body.get("retry_after", 1 if code == 429 else None)
        default_text = {429: f"Too Many Requests: retry after {retry_after}",
                        403: "Forbidden: bot was blocked by the user",
                        500: "Internal Server Error", 502: "Bad Gateway"}.get(code, "Bad Request")
        bot.faults.append(Fault(method=body.get("method", "sendMessage"), error_code=code,
                                description=body.get("description", default_text), retry_after=retry_after,
                                chat_id=body.get("chat_id"), remaining=int(body.get("count", 1))))
        return JSONResponse({"ok": True})

    async def _sent(self, request: Request) -> JSONResponse:
        try:
            bot = self._bot(request)
        except TelegramApiError as exc:
            return exc.response()
        return JSONResponse(bot.sent)

    async def _state(self, request: Request) -> JSONResponse:
        try:
            bot = self._bot(request)
        except TelegramApiError as exc:
            return exc.response()
        return JSONResponse({"webhook_url": bot.webhook_url, "pending": len(bot.queue),
                             "deliveries": bot.webhook_deliveries, "failures": bot.webhook_failures,
                             "last_error": bot.last_webhook_error, "send_requests": bot.send_requests,
                             "sent": len(bot.sent), "answered_callbacks": len(bot.answered_callbacks),
                             "busiest_second": bot.busiest_second(),
                             "flood_refusals": [[str(key), at] for key, at in bot.flood_refusals]})

    async def _user_action(self, request: Request) -> JSONResponse:
        try:
            bot = self._bot(request)
            body = await _json(request)
            user = self.user(request.path_params["user_id"], body.get("first_name"),
                             **{k: body[k] for k in ("last_name", "username", "language_code") if k in body})
            action = request.path_params["action"]
            if action == "messages":
                update = self.user_writes(bot, user, body.get("text"), photo=bool(body.get("photo")),
                                          caption=body.get("caption"))
            elif action == "edit":
                update = self.user_edits(bot, user, int(body["message_id"]), body["text"])
            elif action == "press":
                update = self.user_presses(bot, user, int(body["message_id"]), body["data"])
            elif action in ("block", "unblock"):
                update = self.user_blocks(bot, user, blocked=action == "block")
            else:
                raise TelegramApiError(404, f"unknown action {action}")
        except TelegramApiError as exc:
            return exc.response()
        except (KeyError, ValueError) as exc:
            return JSONResponse({"ok": False, "description": f"bad request: {exc}"}, status_code=400)
        return JSONResponse({"ok": True, "update": update})

    async def _chat(self, request: Request) -> JSONResponse:
        try:
            bot = self._bot(request)
        except TelegramApiError as exc:
            return exc.response()
        user_id = request.path_params["user_id"]
        lines = [{k: v for k, v in m.items()} for m in bot.transcript.get(user_id, [])]
        return JSONResponse({"blocked": user_id in bot.blocked_by, "messages": lines})

    async def _page(self, request: Request) -> HTMLResponse:
        page = resources.files("channels.simulators").joinpath("telegram.html").read_text(encoding="utf-8")
        return HTMLResponse(page)

    # ---- internals ---------------------------------------------------------

    def _next_message_id(self, bot: SimBot, chat_id: int) -> int:
        bot.message_ids[chat_id] = bot.message_ids.get(chat_id, 0) + 1
        return bot.message_ids[chat_id]

    def _log(self, bot: SimBot, chat_id: int, author: str, text: str | None, raw: dict[str, Any]) -> None:
        bot.transcript.setdefault(chat_id, []).append(
            {"from": author, "text": text, "at": time.time(), "raw": raw,
             "buttons": [b for row in (raw.get("reply_markup") or {}).get("inline_keyboard", []) for b in row]}
        )
        self._changed()

    # ---- kept across restarts (the demo's data directory) --------------------

    def _changed(self) -> None:
        self.kept.changed()

    def save(self) -> None:
        self.kept.save()

    def _snapshot(self) -> dict[str, Any]:
        """Users, bots, chats, message and update ids and undelivered updates."""
        return {"users": [dataclasses.asdict(u) for u in self.users.values()], "bots": [{
            "token": b.token, "username": b.username, "first_name": b.first_name, "webhook_url": b.webhook_url,
            "secret_token": b.secret_token, "allowed_updates": b.allowed_updates,
            "next_update_id": b.next_update_id, "started_by": sorted(b.started_by),
            "blocked_by": sorted(b.blocked_by), "message_ids": b.message_ids, "queue": list(b.queue),
            "transcript": b.transcript} for b in self.bots.values()]}

    def _restore(self, state: dict[str, Any]) -> None:
        for user in state["users"]:
            self.users[user["id"]] = SimUser(**user)
        for saved in state["bots"]:
            bot = self.create_bot(saved["username"], saved["first_name"], token=saved["token"])
            bot.webhook_url, bot.secret_token = saved["webhook_url"], saved["secret_token"]
            bot.allowed_updates = saved["allowed_updates"]
            # Never an id the hub may have stored: the clock's, if it is ahead of the saved one.
            bot.next_update_id = max(saved["next_update_id"], bot.next_update_id)
            bot.started_by, bot.blocked_by = set(saved["started_by"]), set(saved["blocked_by"])
            bot.message_ids = {int(chat): last for chat, last in saved["message_ids"].items()}
            bot.transcript = {int(chat): lines for chat, lines in saved["transcript"].items()}
            bot.queue.extend(saved["queue"])

    def end_long_polls(self) -> None:
        """Answer open getUpdates calls now (before a server shutdown waits for them)."""
        self._closing.set()

    async def aclose(self) -> None:
        self._closing.set()
        self.save()
        for task in self._deliverers.values():
            task.cancel()
        if self._http is not None:
            await self._http.aclose()
            self._http = None


async def _params(request: Request) -> dict[str, Any]:
    """Bot API parameters from the query string, JSON, urlencoded or multipart bodies."""
    params: dict[str, Any] = dict(request.query_params)
    ctype = request.headers.get("content-type", "")
    if "application/json" in ctype:
        body = await request.body()
        if body:
            try:
                data = json.loads(body)
            except ValueError:
                raise TelegramApiError(400, "Bad Request: can't parse JSON") from None
            params.update(data)
    elif "form" in ctype:
        form = await request.form()
        for key, value in form.items():
            params[key] = value if not isinstance(value, str) else _maybe_json(value)
        for key, value in list(params.items()):  # "attach://<name>": the file is the form's part <name>
            if isinstance(value, str) and value.startswith("attach://") and value[9:] in form:
                params[key] = form[value[9:]]
    return params


def _maybe_json(value: str) -> Any:
    # Bot API form fields carry objects and arrays as JSON-serialized strings.
    if value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


async def _json(request: Request) -> dict[str, Any]:
    body = await request.body()
    if not body:
        return {}
    try:
        data = json.loads(body)
    except ValueError:
        raise TelegramApiError(400, "control API expects a JSON body") from None
    return data if isinstance(data, dict) else {}
