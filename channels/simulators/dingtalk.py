"""A DingTalk (钉钉) simulator: the OpenAPI a hub calls, the robot callbacks it
receives (HTTP or stream), session webhooks and custom group robots.

API side (api.dingtalk.com's JSON; errors as HTTP status + `code`/`message`):
`/v1.0/oauth2/accessToken` (tokens expire; 400 for a wrong AppKey/AppSecret,
401 for a bad token), `/v1.0/robot/oToMessages/batchSend` (20 users at most;
unknown staff in `invalidStaffIdList`), `/v1.0/robot/groupMessages/send`,
`/v1.0/im/interactiveCards/send` (StandardCard JSON, buttons remembered for
clicks); `/robot/sendBySession?session=...`, the sessionWebhook each message
carries, valid for its expiry; `/robot/send?access_token=...` custom group
robots with 加签 (timestamp + sign checked, 20 messages a minute, then
errcode 130101).

Callback side: staff and customers' messages and card clicks become DingTalk's
JSON. In HTTP mode they are POSTed to the robot's message URL with `timestamp`
and `sign` headers, and sent again when not answered 2xx. In stream mode,
`/v1.0/gateway/connections/open` hands out a ticket for the websocket at
`/gateway`, where they go as CALLBACK frames, sent again when not acknowledged
within the deadline; SYSTEM pings and disconnects are sent on request.

Control side (`/_sim/...`) for tests and the demo.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import secrets
import string
import time
import uuid
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
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from channels.base import KEEPALIVE
from channels.dingtalk.signing import MAX_SKEW_MS, sign
from channels.simulators.kept import KEPT_SENDS, KeptState

log = logging.getLogger(__name__)

TOKEN_LIFETIME = 7200
SESSION_LIFETIME = 3600.0
BATCH_LIMIT = 20
CUSTOM_ROBOT_PER_MINUTE = 20


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass
class Robot:
    app_key: str
    app_secret: str
    robot_code: str
    corp_id: str
    mode: Literal["http", "stream"] = "http"
    callback_url: str | None = None
    staff: dict[str, str] = field(default_factory=dict)          # staffId -> name
    groups: dict[str, str] = field(default_factory=dict)         # openConversationId -> title
    tokens: dict[str, float] = field(default_factory=dict)
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)   # session -> {thread, expires}
    sent: list[dict[str, Any]] = field(default_factory=list)     # what the hub sent, accepted
    calls: list[tuple[str, str]] = field(default_factory=list)   # (path, "ok" or error code)
    cards: dict[str, dict[str, Any]] = field(default_factory=dict)  # cardBizId -> card
    faults: list[dict[str, Any]] = field(default_factory=list)
    queue: deque[dict[str, Any]] = field(default_factory=deque)
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    msg_ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    tickets: set[str] = field(default_factory=set)
    socket: WebSocket | None = None
    acks: dict[str, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    connections: int = 0
    chats: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # what each staff / group sees

    def note(self, who: str, author: str, text: str, buttons: list[dict[str, Any]] | None = None) -> None:
        self.chats.setdefault(who, []).append({"from": author, "text": text, "buttons": buttons or [],
                                               "at": time.time()})

    def transcript(self, who: str) -> list[dict[str, Any]]:
        """What one colleague or group received from the hub, oldest first."""
        return [m for m in self.sent if m["to"] == who]


@dataclass
class CustomRobot:
    token: str
    secret: str
    received: list[dict[str, Any]] = field(default_factory=list)
    times: deque[float] = field(default_factory=deque)


def _random(n: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


class DingTalkSimulator:
    def __init__(self, *, callback_deadline: float = 5.0, retry_delays: tuple[float, ...] = (1.0, 2.0, 4.0),
                 session_lifetime: float = SESSION_LIFETIME, state_file: Path | None = None) -> None:
        """`state_file`: where each robot's staff, groups, chats, sends, cards and reply sessions are
        kept across restarts (the demo's); a robot brought back with its saved credentials finds them."""
        self.robots: dict[str, Robot] = {}
        self.kept = KeptState(state_file, self._snapshot)
        self._saved: dict[str, Any] = self.kept.load() or {}
        self.custom_robots: dict[str, CustomRobot] = {}
        self.callback_deadline = callback_deadline
        self.retry_delays = retry_delays
        self.session_lifetime = session_lifetime
        self.base_url = ""  # set by whoever serves the app: where session webhooks and the gateway live
        self._deliverers: dict[str, asyncio.Task[None]] = {}
        self._http: httpx.AsyncClient | None = None
        self.app = Starlette(
            routes=[
                Route("/v1.0/oauth2/accessToken", self._access_token, methods=["POST"]),
                Route("/v1.0/robot/oToMessages/batchSend", self._batch_send, methods=["POST"]),
                Route("/v1.0/robot/groupMessages/send", self._group_send, methods=["POST"]),
                Route("/v1.0/im/interactiveCards/send", self._card_send, methods=["POST"]),
                Route("/v1.0/gateway/connections/open", self._open_connection, methods=["POST"]),
                Route("/robot/sendBySession", self._session_send, methods=["POST"]),
                Route("/robot/send", self._custom_send, methods=["POST"]),
                WebSocketRoute("/gateway", self._gateway),
                Route("/", self._page, methods=["GET"]),
                Route("/_sim/robots", self._create_robot, methods=["POST"]),
                Route("/_sim/robots", self._list_robots, methods=["GET"]),
                Route("/_sim/robots/{code}", self._state, methods=["GET"]),
                Route("/_sim/robots/{code}/chats/{who:path}", self._chat, methods=["GET"]),
                Route("/_sim/robots/{code}/config", self._config, methods=["POST"]),
                Route("/_sim/robots/{code}/faults", self._add_fault, methods=["POST"]),
                Route("/_sim/robots/{code}/stream/{action}", self._stream_action, methods=["POST"]),
                Route("/_sim/robots/{code}/staff/{staff_id}/{action}", self._staff_action, methods=["POST"]),
                Route("/_sim/robots/{code}/groups/{cid}/messages", self._group_message, methods=["POST"]),
                Route("/_sim/webhooks", self._create_custom, methods=["POST"]),
                Route("/_sim/webhooks/{token}", self._custom_state, methods=["GET"]),
            ],
            lifespan=self._lifespan,
        )

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        yield
        await self.aclose()

    # ---- state helpers (tests may call these directly) ------------------

    def create_robot(self, *, app_key: str | None = None, app_secret: str | None = None,
                     robot_code: str | None = None, corp_id: str | None = None,
                     mode: Literal["http", "stream"] = "http") -> Robot:
        """A new robot; pass saved credentials to bring one back (the demo, across runs)."""
        key = app_key or "ding" + _random(16, string.ascii_lowercase + string.digits)
        robot = Robot(app_key=key, app_secret=app_secret or _random(64), robot_code=robot_code or key,
                      corp_id=corp_id or "ding" + _random(20, string.ascii_lowercase + string.digits), mode=mode)
        self.robots[robot.robot_code] = robot
        saved = self._saved.get(robot.robot_code)
        if saved:
            robot.staff, robot.groups, robot.chats = saved["staff"], saved["groups"], saved["chats"]
            robot.sent, robot.cards, robot.sessions = saved["sent"], saved["cards"], saved["sessions"]
        return robot

    def save(self) -> None:
        self.kept.save()

    def _snapshot(self) -> dict[str, Any]:
        return {code: {"staff": r.staff, "groups": r.groups, "chats": r.chats, "sent": r.sent[-KEPT_SENDS:],
                       "cards": r.cards, "sessions": r.sessions} for code, r in self.robots.items()}

    def create_custom_robot(self, *, secret: str | None = None) -> CustomRobot:
        robot = CustomRobot(token=_random(64, string.hexdigits.lower()[:16]), secret=secret or "SEC" + _random(61))
        self.custom_robots[robot.token] = robot
        return robot

    def add_staff(self, robot: Robot, staff_id: str, name: str | None = None) -> None:
        robot.staff[staff_id] = name or staff_id

    def staff_writes(self, robot: Robot, staff_id: str, text: str) -> dict[str, Any]:
        if staff_id not in robot.staff:
            raise ApiError(400, "staffId.notExisted", f"no staff {staff_id} in this company")
        robot.note(staff_id, "me", text)
        return self._push(robot, self._message(robot, thread=staff_id, group=False, sender_id=f"$:LWCP_v1:${staff_id}",
                                               nick=robot.staff[staff_id], staff_id=staff_id,
                                               corp=robot.corp_id, text=text, at=True))

    def customer_writes_in_group(self, robot: Robot, cid: str, sender_id: str, nick: str, text: str, *,
                                 at: bool = True, corp: str = "dingcustomercorp") -> dict[str, Any]:
        """A customer (of another company) writes in a group the robot is in."""
        robot.groups.setdefault(cid, f"group {cid[-6:]}")
        robot.note(cid, "me", f"{nick}: {text}" if at else f"{nick}: {text} (not @robot)")
        return self._push(robot, self._message(robot, thread=cid, group=True, sender_id=sender_id, nick=nick,
                                               staff_id="", corp=corp, text=text, at=at))

    def staff_clicks(self, robot: Robot, staff_id: str, action: str) -> dict[str, Any]:
        card_id = next((cid for cid, card in reversed(list(robot.cards.items()))
                        if card["to"] == staff_id and action in card["actions"]), None)
        if card_id is None:
            raise ApiError(400, "card.notFound", f"no card with a button {action!r} was sent to {staff_id}")
        label = next((b["label"] for m in robot.sent if m.get("card_id") == card_id for b in m["buttons"]
                      if b["id"] == action), action)
        robot.note(staff_id, "system", f"clicked “{label}”")
        content = {"cardPrivateData": {"actionIds": [action], "params": {}}}
        return self._push(robot, {"outTrackId": card_id, "corpId": robot.corp_id, "userId": staff_id,
                                  "type": "actionCallback", "requestId": uuid.uuid4().hex,
                                  "content": json.dumps(content)}, topic="/v1.0/card/instances/callback")

    def _message(self, robot: Robot, *, thread: str, group: bool, sender_id: str, nick: str, staff_id: str,
                 corp: str, text: str, at: bool) -> dict[str, Any]:
        session = _random(32)
        expires = time.time() + self.session_lifetime
        robot.sessions[session] = {"thread": thread, "expires": expires}
        body: dict[str, Any] = {
            "conversationId": thread if group else "cid" + _random(20) + "==",
            "chatbotCorpId": robot.corp_id, "chatbotUserId": "$:LWCP_v1:$" + _random(24),
            "msgId": f"msg{next(robot.msg_ids):06d}{_random(10)}", "senderNick": nick, "isAdmin": False,
            "senderId": sender_id, "sessionWebhookExpiredTime": int(expires * 1000),
            "createAt": int(time.time() * 1000), "senderCorpId": corp,
            "conversationType": "2" if group else "1", "isInAtList": at, "robotCode": robot.robot_code,
            "sessionWebhook": f"{self.base_url}/robot/sendBySession?session={session}",
            "msgtype": "text", "text": {"content": text},
        }
        if group:
            body["conversationTitle"] = robot.groups.get(thread, "")
        if staff_id:
            body["senderStaffId"] = staff_id
        return body

    # ---- callbacks -------------------------------------------------------

    def _push(self, robot: Robot, body: dict[str, Any], topic: str = "/v1.0/im/bot/messages/get") -> dict[str, Any]:
        self.kept.changed()
        robot.queue.append({"body": body, "topic": topic})
        self._kick(robot)
        return body

    def _kick(self, robot: Robot) -> None:
        ready = robot.callback_url if robot.mode == "http" else robot.socket
        if ready and robot.queue:
            task = self._deliverers.get(robot.robot_code)
            if task is None or task.done():
                self._deliverers[robot.robot_code] = asyncio.get_running_loop().create_task(self._deliver(robot))

    def signed_headers(self, robot: Robot, *, timestamp_ms: int | None = None) -> dict[str, str]:
        timestamp = str(int(time.time() * 1000) if timestamp_ms is None else timestamp_ms)
        return {"timestamp": timestamp, "sign": sign(timestamp, robot.app_secret),
                "content-type": "application/json; charset=utf-8"}

    async def _deliver(self, robot: Robot) -> None:
        while robot.queue:
            item = robot.queue[0]
            delivered = False
            for attempt in range(1 + len(self.retry_delays)):
                if robot.mode == "http" and robot.callback_url:
                    delivered = await self._post(robot, item, attempt)
                elif robot.mode == "stream" and robot.socket is not None:
                    delivered = await self._frame(robot, item, attempt)
                else:
                    return  # nowhere to deliver; kicked again when a URL or socket appears
                if delivered:
                    break
                if attempt < len(self.retry_delays):
                    await asyncio.sleep(self.retry_delays[attempt])
            if not delivered:
                log.warning("dingtalk simulator: gave up delivering %s", item["body"].get("msgId"))
            robot.queue.popleft()

    async def _post(self, robot: Robot, item: dict[str, Any], attempt: int) -> bool:
        if self._http is None:
            self._http = httpx.AsyncClient(limits=KEEPALIVE)
        started = time.monotonic()
        try:
            resp = await self._http.post(robot.callback_url or "", headers=self.signed_headers(robot),
                                         content=json.dumps(item["body"], ensure_ascii=False).encode(),
                                         timeout=self.callback_deadline)
            status, error = resp.status_code, None if resp.is_success else resp.text[:300]
        except httpx.HTTPError as exc:
            status, error = None, f"{type(exc).__name__}: {exc}"
        robot.deliveries.append({"body": item["body"], "via": "http", "attempt": attempt + 1, "status": status,
                                 "error": error, "seconds": round(time.monotonic() - started, 3)})
        return status is not None and 200 <= status < 300

    async def _frame(self, robot: Robot, item: dict[str, Any], attempt: int) -> bool:
        message_id = uuid.uuid4().hex
        frame = {"specVersion": "1.0", "type": "CALLBACK",
                 "headers": {"appId": robot.app_key, "connectionId": "sim", "contentType": "application/json",
                             "messageId": message_id, "time": str(int(time.time() * 1000)), "topic": item["topic"]},
                 "data": json.dumps(item["body"], ensure_ascii=False)}
        ack: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        robot.acks[message_id] = ack
        code: int | None = None
        try:
            assert robot.socket is not None
            await robot.socket.send_text(json.dumps(frame, ensure_ascii=False))
            code = int((await asyncio.wait_for(ack, self.callback_deadline)).get("code", 0))
        except (TimeoutError, WebSocketDisconnect, RuntimeError, AssertionError):
            code = None
        finally:
            robot.acks.pop(message_id, None)
        robot.deliveries.append({"body": item["body"], "via": "stream", "attempt": attempt + 1, "status": code})
        return code is not None and code < 500

    # ---- stream gateway ---------------------------------------------------

    async def _open_connection(self, request: Request) -> JSONResponse:
        body = await _json(request)
        robot = next((r for r in self.robots.values() if r.app_key == body.get("clientId")), None)
        try:
            if robot is None or not secrets.compare_digest(robot.app_secret, str(body.get("clientSecret", ""))):
                raise ApiError(401, "InvalidAuthentication", "clientId or clientSecret is wrong")
            self._fault(robot, "gateway/connections/open")
        except ApiError as exc:
            if robot is not None:
                robot.calls.append(("gateway/connections/open", exc.code))
            return _error(exc)
        ticket = _random(32)
        robot.tickets.add(ticket)
        robot.calls.append(("gateway/connections/open", "ok"))
        endpoint = self.base_url.replace("http://", "ws://").replace("https://", "wss://") + "/gateway"
        return JSONResponse({"endpoint": endpoint, "ticket": ticket})

    async def _gateway(self, socket: WebSocket) -> None:
        ticket = socket.query_params.get("ticket", "")
        robot = next((r for r in self.robots.values() if ticket in r.tickets), None)
        if robot is None:
            await socket.close(code=4401)
            return
        robot.tickets.discard(ticket)  # a ticket opens one connection
        await socket.accept()
        if robot.socket is not None:
            with contextlib.suppress(Exception):
                await robot.socket.close()
        robot.socket = socket
        robot.connections += 1
        self._kick(robot)
        try:
            while True:
                frame = json.loads(await socket.receive_text())
                message_id = (frame.get("headers") or {}).get("messageId")
                future = robot.acks.get(message_id)
                if future is not None and not future.done():
                    future.set_result(frame)
                robot.deliveries.append({"ack": frame})
        except (WebSocketDisconnect, RuntimeError, ValueError):
            pass
        finally:
            if robot.socket is socket:
                robot.socket = None

    async def send_system(self, robot: Robot, topic: str) -> dict[str, Any] | None:
        """A SYSTEM frame (`ping` or `disconnect`); the client's ack, if it sends one."""
        if robot.socket is None:
            return None
        message_id = uuid.uuid4().hex
        ack: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        robot.acks[message_id] = ack
        data = json.dumps({"opaque": _random(8)}) if topic == "ping" else ""
        await robot.socket.send_text(json.dumps({
            "specVersion": "1.0", "type": "SYSTEM", "data": data,
            "headers": {"contentType": "application/json", "messageId": message_id, "topic": topic,
                        "time": str(int(time.time() * 1000))}}))
        try:
            return await asyncio.wait_for(ack, self.callback_deadline)
        except TimeoutError:
            return None
        finally:
            robot.acks.pop(message_id, None)

    async def drop(self, robot: Robot) -> None:
        """Close the socket abruptly, as a network failure would."""
        if robot.socket is not None:
            with contextlib.suppress(Exception):
                await robot.socket.close(code=1011)

    # ---- API -------------------------------------------------------------

    def _fault(self, robot: Robot, path: str) -> None:
        for fault in [f for f in robot.faults if f["path"] == path]:
            fault["remaining"] -= 1
            if fault["remaining"] <= 0:
                robot.faults.remove(fault)
            raise ApiError(int(fault.get("status", 400)), fault.get("code", "simulated"),
                           fault.get("message", "simulated error"))

    async def _access_token(self, request: Request) -> JSONResponse:
        body = await _json(request)
        robot = next((r for r in self.robots.values() if r.app_key == body.get("appKey")), None)
        if robot is None or not secrets.compare_digest(robot.app_secret, str(body.get("appSecret", ""))):
            if robot is not None:
                robot.calls.append(("oauth2/accessToken", "invalidClientSecret"))
            return _error(ApiError(400, "invalidClientSecret" if robot else "invalidClientId",
                                   "appKey or appSecret is wrong"))
        token = _random(32, string.hexdigits.lower()[:16])
        robot.tokens[token] = time.monotonic() + TOKEN_LIFETIME
        robot.calls.append(("oauth2/accessToken", "ok"))
        return JSONResponse({"accessToken": token, "expireIn": TOKEN_LIFETIME})

    async def _authorized(self, request: Request, path: str) -> tuple[Robot, dict[str, Any]]:
        token = request.headers.get("x-acs-dingtalk-access-token", "")
        robot = next((r for r in self.robots.values() if token in r.tokens), None)
        if robot is None or robot.tokens[token] < time.monotonic():
            if robot is not None:
                robot.calls.append((path, "InvalidAuthentication"))
            raise ApiError(401, "InvalidAuthentication", "access token is invalid or expired")
        try:
            self._fault(robot, path)
        except ApiError as exc:
            robot.calls.append((path, exc.code))
            raise
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            raise ApiError(400, "InvalidParameter", "the body is not JSON") from None
        if body.get("robotCode") != robot.robot_code:
            robot.calls.append((path, "chatbot.notFound"))
            raise ApiError(400, "chatbot.notFound", f"no robot {body.get('robotCode')}")
        self.kept.changed()  # the send that follows, saved a moment later
        return robot, body

    async def _batch_send(self, request: Request) -> JSONResponse:
        try:
            robot, body = await self._authorized(request, "robot/oToMessages/batchSend")
            users = [str(u) for u in body.get("userIds") or []]
            if not users or len(users) > BATCH_LIMIT:
                raise ApiError(400, "InvalidParameter.userIds", f"1 to {BATCH_LIMIT} userIds, not {len(users)}")
            text = _template_text(body)
        except ApiError as exc:
            return _error(exc)
        invalid = [u for u in users if u not in robot.staff]
        for user in users:
            if user not in invalid:
                robot.sent.append({"to": user, "via": "batchSend", "msgKey": body.get("msgKey"), "text": text,
                                   "at": time.time()})
                robot.note(user, "hub", text)
        robot.calls.append(("robot/oToMessages/batchSend", "ok"))
        return JSONResponse({"processQueryKey": _random(24), "invalidStaffIdList": invalid,
                             "flowControlledStaffIdList": []})

    async def _group_send(self, request: Request) -> JSONResponse:
        try:
            robot, body = await self._authorized(request, "robot/groupMessages/send")
            cid = str(body.get("openConversationId", ""))
            if cid not in robot.groups:
                raise ApiError(400, "resource.not.found", f"the robot is not in conversation {cid}")
            text = _template_text(body)
        except ApiError as exc:
            return _error(exc)
        robot.sent.append({"to": cid, "via": "groupMessages", "msgKey": body.get("msgKey"), "text": text,
                           "at": time.time()})
        robot.note(cid, "hub", text)
        robot.calls.append(("robot/groupMessages/send", "ok"))
        return JSONResponse({"processQueryKey": _random(24)})

    async def _card_send(self, request: Request) -> JSONResponse:
        try:
            robot, body = await self._authorized(request, "im/interactiveCards/send")
            receiver = json.loads(body.get("singleChatReceiver") or "{}").get("userId", "")
            if receiver not in robot.staff:
                raise ApiError(400, "userInfo.convertError", f"no staff {receiver}")
            card = json.loads(body.get("cardData") or "{}")
            biz_id = str(body.get("cardBizId") or "")
            if not biz_id:
                raise ApiError(400, "card.outTraceIdEmpty", "cardBizId is empty")
        except ApiError as exc:
            return _error(exc)
        except ValueError:
            return _error(ApiError(400, "param.invalid", "singleChatReceiver or cardData is not JSON"))
        actions = [a for c in card.get("contents", []) if c.get("type") == "action" for a in c.get("actions", [])]
        title = card.get("header", {}).get("title", {}).get("text", "")
        text = "\n".join(c.get("text", "") for c in card.get("contents", []) if c.get("type") == "markdown")
        robot.cards[biz_id] = {"to": receiver, "actions": [a["id"] for a in actions], "card": card}
        robot.sent.append({"to": receiver, "via": "interactiveCard", "title": title, "text": text,
                           "buttons": [{"id": a["id"], "label": a["label"]["text"]} for a in actions],
                           "card_id": biz_id, "at": time.time()})
        robot.note(receiver, "hub", f"{title}\n{text}", [{"id": a["id"], "text": a["label"]["text"]} for a in actions])
        robot.calls.append(("im/interactiveCards/send", "ok"))
        return JSONResponse({"processQueryKey": biz_id})

    async def _session_send(self, request: Request) -> JSONResponse:
        session = request.query_params.get("session", "")
        robot = next((r for r in self.robots.values() if session in r.sessions), None)
        if robot is None or robot.sessions[session]["expires"] < time.time():
            return JSONResponse({"errcode": 300001, "errmsg": "session expired or unknown"})
        body = await _json(request)
        kind = body.get("msgtype")
        text = (body.get("text") or {}).get("content") if kind == "text" else (body.get("markdown") or {}).get("text")
        if not text:
            return JSONResponse({"errcode": 40035, "errmsg": "missing content"})
        thread = robot.sessions[session]["thread"]
        robot.sent.append({"to": thread, "via": "sessionWebhook", "msgKey": kind, "text": text, "at": time.time()})
        robot.note(thread, "hub", text)
        robot.calls.append(("sendBySession", "ok"))
        return JSONResponse({"errcode": 0, "errmsg": "ok"})

    async def _custom_send(self, request: Request) -> JSONResponse:
        params = request.query_params
        robot = self.custom_robots.get(params.get("access_token", ""))
        if robot is None:
            return JSONResponse({"errcode": 300001, "errmsg": "token is not exist"})
        timestamp, given = params.get("timestamp", ""), params.get("sign", "")
        if not timestamp.isdigit() or abs(time.time() * 1000 - int(timestamp)) > MAX_SKEW_MS:
            return JSONResponse({"errcode": 310000, "errmsg": "sign not match, timestamp is invalid"})
        if not secrets.compare_digest(sign(timestamp, robot.secret), given):
            return JSONResponse({"errcode": 310000, "errmsg": "sign not match"})
        now = time.monotonic()
        while robot.times and now - robot.times[0] >= 60:
            robot.times.popleft()
        if len(robot.times) >= CUSTOM_ROBOT_PER_MINUTE:
            return JSONResponse({"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"})
        robot.times.append(now)
        robot.received.append({**(await _json(request)), "at": time.time()})
        return JSONResponse({"errcode": 0, "errmsg": "ok"})

    # ---- control ---------------------------------------------------------

    def _robot_of(self, request: Request) -> Robot:
        robot = self.robots.get(request.path_params["code"])
        if robot is None:
            raise HTTPException(404, f"no simulated robot {request.path_params['code']}")
        return robot

    async def _create_robot(self, request: Request) -> JSONResponse:
        body = await _json(request)
        robot = self.create_robot(mode=body.get("mode", "http"))
        for staff_id, name in (body.get("staff") or {}).items():
            self.add_staff(robot, staff_id, name)
        robot.callback_url = body.get("callback_url") or None
        return JSONResponse(_credentials(robot))

    async def _list_robots(self, request: Request) -> JSONResponse:
        return JSONResponse([{**_credentials(r), "staff": r.staff, "groups": r.groups} for r in self.robots.values()])

    async def _state(self, request: Request) -> JSONResponse:
        robot = self._robot_of(request)
        return JSONResponse({**_credentials(robot), "staff": robot.staff, "groups": robot.groups,
                             "sent": robot.sent, "calls": robot.calls, "connected": robot.socket is not None})

    async def _chat(self, request: Request) -> JSONResponse:
        robot = self._robot_of(request)
        return JSONResponse({"messages": robot.chats.get(request.path_params["who"], [])})

    async def _config(self, request: Request) -> JSONResponse:
        robot = self._robot_of(request)
        body = await _json(request)
        if "mode" in body:
            robot.mode = body["mode"]
        if "callback_url" in body:
            robot.callback_url = body["callback_url"] or None
        self._kick(robot)
        return JSONResponse({"mode": robot.mode, "callback_url": robot.callback_url})

    async def _add_fault(self, request: Request) -> JSONResponse:
        robot = self._robot_of(request)
        body = await _json(request)
        robot.faults.append({"path": body["path"], "status": int(body.get("status", 400)),
                             "code": body.get("code", "simulated"), "remaining": int(body.get("times", 1))})
        return JSONResponse({"faults": robot.faults})

    async def _stream_action(self, request: Request) -> JSONResponse:
        robot = self._robot_of(request)
        action = request.path_params["action"]
        if action in ("ping", "disconnect"):
            return JSONResponse({"ack": await self.send_system(robot, action)})
        if action == "drop":
            await self.drop(robot)
            return JSONResponse({"dropped": True})
        raise HTTPException(404, f"unknown stream action {action}")

    async def _staff_action(self, request: Request) -> JSONResponse:
        robot = self._robot_of(request)
        staff_id, action = request.path_params["staff_id"], request.path_params["action"]
        body = await _json(request)
        try:
            if action == "messages":
                sent = self.staff_writes(robot, staff_id, str(body.get("text", "")))
            elif action == "clicks":
                sent = self.staff_clicks(robot, staff_id, str(body.get("action", "")))
            else:
                raise HTTPException(404, f"unknown action {action}")
        except ApiError as exc:
            return _error(exc)
        return JSONResponse({"callback": sent})

    async def _group_message(self, request: Request) -> JSONResponse:
        robot = self._robot_of(request)
        body = await _json(request)
        sent = self.customer_writes_in_group(robot, request.path_params["cid"], str(body.get("sender", "")),
                                             str(body.get("nick", "")), str(body.get("text", "")),
                                             at=bool(body.get("at", True)))
        return JSONResponse({"callback": sent})

    async def _create_custom(self, request: Request) -> JSONResponse:
        robot = self.create_custom_robot()
        return JSONResponse({"webhook": f"{self.base_url}/robot/send?access_token={robot.token}",
                             "secret": robot.secret, "token": robot.token})

    async def _custom_state(self, request: Request) -> JSONResponse:
        robot = self.custom_robots.get(request.path_params["token"])
        if robot is None:
            raise HTTPException(404, "no such custom robot")
        return JSONResponse({"received": robot.received})

    async def _page(self, request: Request) -> HTMLResponse:
        return HTMLResponse(resources.files("channels.simulators").joinpath("dingtalk.html")
                            .read_text(encoding="utf-8"))

    async def aclose(self) -> None:
        self.kept.save()
        for task in self._deliverers.values():
            task.cancel()
        for robot in self.robots.values():
            await self.drop(robot)
        if self._http is not None:
            await self._http.aclose()


def _template_text(body: dict[str, Any]) -> str:
    key = body.get("msgKey")
    try:
        param = json.loads(body.get("msgParam") or "{}")
    except ValueError:
        raise ApiError(400, "InvalidParameter.msgParam", "msgParam is not JSON") from None
    if key == "sampleText":
        text = param.get("content")
    elif key == "sampleMarkdown":
        text = param.get("text")
    else:
        raise ApiError(400, "InvalidParameter.msgKey", f"msgKey {key} is not simulated")
    if not text:
        raise ApiError(400, "InvalidParameter.msgParam", "empty message")
    return str(text)


def _credentials(robot: Robot) -> dict[str, Any]:
    return {"app_key": robot.app_key, "app_secret": robot.app_secret, "robot_code": robot.robot_code,
            "corp_id": robot.corp_id, "mode": robot.mode, "callback_url": robot.callback_url}


def _error(exc: ApiError) -> JSONResponse:
    return JSONResponse({"code": exc.code, "message": exc.message, "requestid": uuid.uuid4().hex},
                        status_code=exc.status)


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        raise HTTPException(400, "the body is not JSON") from None
    if not isinstance(body, dict):
        raise HTTPException(400, "the body is not a JSON object")
    return body
