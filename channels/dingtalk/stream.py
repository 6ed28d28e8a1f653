"""DingTalk stream mode: the hub connects out, for companies without a public URL.

The official SDK's client loop (`DingTalkStreamClient.start`) opens the
connection with blocking `requests` on the event loop, reconnects after a
fixed sleep with no backoff, and swallows `CancelledError`, so it never
stops. This client keeps its frame model (`dingtalk_stream.frames`) and
replaces the loop:

- `connections/open` over httpx at the account's API base, then a websocket
  to the endpoint it names, with websockets' keepalive pings;
- each robot message or card callback is stored (the same parser as the HTTP
  callback) before it is acknowledged, so DingTalk redelivers what a crash
  interrupted; a malformed one is acknowledged with 400 and logged, not
  retried forever; pings are answered; a `disconnect` reconnects at once;
- failures back off exponentially with jitter (1 s doubling to 60 s), reset
  once a connection has worked; a stop event closes the socket and returns,
  and cancelling the task cancels it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from typing import TYPE_CHECKING, Any
from urllib.parse import quote_plus

from dingtalk_stream.frames import AckMessage, CallbackMessage, Headers, SystemMessage
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from channels.base import InboundSink
from channels.dingtalk.client import DEFAULT_API_BASE, DingTalkError, DingTalkUnavailable
from crm_core.ports import AccountRef
from crm_core.waiting import wait_any

if TYPE_CHECKING:
    from channels.dingtalk.adapter import DingTalkAdapter

log = logging.getLogger(__name__)

BOT_MESSAGE_TOPIC = "/v1.0/im/bot/messages/get"
CARD_CALLBACK_TOPIC = "/v1.0/card/instances/callback"
MAX_BACKOFF = 60.0


class StreamPoller:
    def __init__(self, adapter: DingTalkAdapter, account: AccountRef, sink: InboundSink, *,
                 first_backoff: float = 1.0, max_backoff: float = MAX_BACKOFF) -> None:
        self.adapter = adapter
        self.account = account
        self.sink = sink
        self.first_backoff = first_backoff
        self.max_backoff = max_backoff
        self.connections = 0  # successful connections, for tests and logs

    @property
    def label(self) -> str:
        return f"DingTalk stream, channel account {self.account.id}"

    async def run(self, stop: asyncio.Event) -> None:
        delay = self.first_backoff
        while not stop.is_set():
            try:
                worked = await self._connect_once(stop)
            except (DingTalkError, DingTalkUnavailable, OSError, ConnectionClosed, InvalidHandshake, InvalidURI,
                    TimeoutError, ValueError) as exc:
                log.warning("%s: %s: %s; reconnecting in %.1fs", self.label, type(exc).__name__, exc, delay)
                worked = False
            except Exception:
                # Storing failed (database down...): unacknowledged, so DingTalk sends it again.
                log.exception("%s: failed; reconnecting in %.1fs", self.label, delay)
                worked = False
            if stop.is_set():
                break
            if worked:
                delay = self.first_backoff
            await wait_any(stop, timeout=delay * random.uniform(0.8, 1.2))
            if not worked:
                delay = min(delay * 2, self.max_backoff)
        log.info("%s: stopped", self.label)

    async def _open(self) -> str:
        creds = self.account.credentials
        base = (self.account.api_base or DEFAULT_API_BASE).rstrip("/")
        response = await self.adapter.api.http.post(f"{base}/v1.0/gateway/connections/open", json={
            "clientId": creds["app_key"], "clientSecret": creds["app_secret"],
            "subscriptions": [{"type": "CALLBACK", "topic": BOT_MESSAGE_TOPIC},
                              {"type": "CALLBACK", "topic": CARD_CALLBACK_TOPIC}],
            "ua": "scrm-hub", "localIp": "",
        })
        try:
            body = response.json()
        except ValueError:
            raise DingTalkUnavailable(f"connections/open answered HTTP {response.status_code} without JSON") from None
        if response.status_code >= 400 or not isinstance(body, dict):
            raise DingTalkError(response.status_code, str((body or {}).get("code", "")),
                                str((body or {}).get("message", "")), "gateway/connections/open")
        if not body.get("endpoint") or not body.get("ticket"):
            raise DingTalkUnavailable(f"connections/open gave no endpoint or ticket: {str(body)[:200]}")
        return f"{body['endpoint']}?ticket={quote_plus(body['ticket'])}"

    async def _connect_once(self, stop: asyncio.Event) -> bool:
        """One connection until it closes or `stop`; True if it got as far as receiving frames."""
        uri = await self._open()
        async with connect(uri, open_timeout=15, ping_interval=20, ping_timeout=20, close_timeout=5,
                           max_size=4 * 1024 * 1024) as ws:
            self.connections += 1
            log.info("%s: connected", self.label)
            stopper = asyncio.ensure_future(stop.wait())
            try:
                while True:
                    receive = asyncio.ensure_future(ws.recv())
                    await asyncio.wait({receive, stopper}, return_when=asyncio.FIRST_COMPLETED)
                    if not receive.done():
                        receive.cancel()
                        return True
                    try:
                        raw = receive.result()
                    except ConnectionClosed as exc:
                        log.info("%s: connection closed (%s)", self.label, exc)
                        return True
                    if await self._handle(ws, raw) == "disconnect":
                        return True
            finally:
                stopper.cancel()

    async def _handle(self, ws: Any, raw: str | bytes) -> str | None:
        try:
            frame = json.loads(raw)
        except ValueError:
            log.warning("%s: a frame that is not JSON: %r", self.label, raw[:200])
            return None
        kind = frame.get("type")
        if kind == SystemMessage.TYPE:
            system = SystemMessage.from_dict(frame)
            await ws.send(json.dumps(_ack(system.headers, AckMessage.STATUS_OK, system.data).to_dict()))
            if system.headers.topic == SystemMessage.TOPIC_DISCONNECT:
                log.info("%s: the gateway asks to reconnect", self.label)
                return "disconnect"
            return None
        if kind != CallbackMessage.TYPE:
            log.info("%s: ignoring a %s frame", self.label, kind)
            return None
        from channels.dingtalk.adapter import checked_reply_via, parse_payload

        try:
            callback = CallbackMessage.from_dict(frame)
            events = [checked_reply_via(e, self.account) for e in parse_payload(callback.data)]
        except (ValueError, TypeError, AttributeError) as exc:
            log.warning("%s: malformed callback acknowledged with 400: %s", self.label, exc)
            headers = Headers.from_dict(frame.get("headers") or {})
            await ws.send(json.dumps(_ack(headers, AckMessage.STATUS_BAD_REQUEST, {"response": None}).to_dict()))
            return None
        # Stored before it is acknowledged: if this fails or the process dies, DingTalk sends it again.
        await self.sink(self.account.id, events, None)
        await ws.send(json.dumps(_ack(callback.headers, AckMessage.STATUS_OK, {"response": None}).to_dict()))
        return None


def _ack(headers: Headers, code: int, data: Any) -> AckMessage:
    ack = AckMessage()
    ack.code = code
    ack.headers.message_id = headers.message_id
    ack.headers.content_type = Headers.CONTENT_TYPE_APPLICATION_JSON
    ack.message = "OK" if code == AckMessage.STATUS_OK else "rejected"
    ack.data = data
    return ack
