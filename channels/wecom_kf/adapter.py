"""微信客服 (WeChat Customer Service, served through WeCom): WeChat users chat with the company's
kf accounts (`open_kfid`) from WeChat itself, without adding anyone.

WeCom's callback carries no message: the event `kf_msg_or_event` brings a pull token (valid
10 minutes) and the kf account with news. The webhook stores that token as the account's cursor
`kf_token:<open_kfid>`, committed like any event; the account's poller sees it and pulls with
`kf/sync_msg` (its cursor and the token, `has_more` page after page). Each page's messages are
stored in the same transaction as the `next_cursor` that follows them (`kf_cursor:<open_kfid>`),
so a restart, or a second process taking over the poller, reads nothing twice and misses
nothing. Without callbacks the poller still pulls every `poll_seconds` (WeCom rate-limits pulls
without a token strictly, so not often).

Sends are `kf/send_msg`: text; a picture alone as an image, a picture with words or a link as a
link card (both need the picture uploaded: it is fetched from its address, checked like every
address the hub calls, and uploaded with `media/upload`, the media id kept for its 3 days);
buttons as a `msgmenu` whose clicks come back as messages carrying the button's `menu_id`. WeCom
lets the company answer within 48 hours of the customer's last message and at most 5 times
before the customer writes again (95001), and not while the session sits with a person in WeCom
(95018): such a send is held with WeCom's reason and goes when the customer writes again. The
welcome after `enter_session` is `kf/send_msg_on_event` with the event's `welcome_code` (valid
20 s, once).

Handoff: the hub names the servicer (`hand_over` option, see `crm_core.conversations.handover`);
`kf/service_state/trans` moves the session and returns a `msg_code` with which the words that
say so reach the customer. What servicers write in WeCom comes back from sync_msg (origin 5) as
the company's words; session changes (taken from the queue, ended) and sends WeCom accepted but
could not deliver (`msg_send_fail`) come back as events. A servicer switching 接待中 / 停止接待
(`servicer_status_change`) is kept as an account cursor (`crm_core.ports.servicer_status`), and routing passes
over servicers who are not receiving.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar
from urllib.parse import quote

from pydantic import BaseModel, Field

from channels.base import (
    AccountSettings,
    Capabilities,
    ConnectionCheck,
    ConnectionFailed,
    InboundSink,
    WebhookOutcome,
    WebhookRequest,
    media_lines,
    numbered_options,
    shortened,
)
from channels.files import OwnMedia
from channels.tencent import AES_KEY_PATTERN, UNIONID_KEY, MessageCipher
from channels.tencent_client import ApiError, ApiUnavailable, AppKey, TencentApiClient
from channels.wecom.adapter import CipherCache, app_key, common_send_error, open_callback
from channels.wecom.client import DEFAULT_API_BASE, wecom_client
from channels.wecom.pictures import Pictures
from crm_core.models import Delivery, MessageKind
from crm_core.ports import (
    AccountRef,
    InboundEvent,
    InboundMessage,
    OutboundMessage,
    PermanentFailure,
    Profile,
    RateLimit,
    ReachabilityChanged,
    Sender,
    SendHeld,
    SendResult,
    TemporaryFailure,
    servicer_status,
)
from crm_core.waiting import wait_any

log = logging.getLogger(__name__)

PULL_TOKEN_SECONDS = 600     # a callback's Token is good for 10 minutes
WELCOME_WINDOW_SECONDS = 20  # an enter_session welcome_code is good for 20 seconds
MAX_PULL = 1000              # sync_msg's limit, default and maximum
SCENE = re.compile(r"^[0-9A-Za-z_-]{1,32}$")  # kf/add_contact_way's scene
# WeCom's refusals that a customer's next message lifts: 95001 the 5 answers (or 48 hours) since
# their last message are used up; 95018 the session is with a person in WeCom, or ended.
HELD_CODES = {95001: "WeCom allows 5 answers within 48 hours of the customer's last message, and they are used up",
              95018: "the 微信客服 session is not with the API now (a person in WeCom has it, or it ended)"}
ORIGIN_CUSTOMER, ORIGIN_EVENT, ORIGIN_SERVICER = 3, 4, 5
# Session states (kf/service_state): 2 WeCom's queue of servicers, 3 one servicer in WeCom.
STATE_QUEUE, STATE_SERVICER = 2, 3
# session_status_change: 1 taken from the queue, 2 passed to another servicer, 3 ended,
# 4 an ended session taken up again by a servicer.
SERVICER_JOINED, SESSION_ENDED = (1, 2, 4), 3
# kf/service_state/trans refusals after which the queue serves instead: the servicer is not
# receiving (95014, or not a servicer of the account), the state may not change that way (95016).
SERVICER_REFUSED = frozenset({95014, 95016})
SEND_FAIL_TYPES = {0: "unknown reason", 1: "the kf account was deleted", 2: "the app was closed",
                   4: "the session expired (more than 48 hours)", 5: "the session was closed",
                   6: "more than 5 messages since the customer's last", 8: "the company is not verified",
                   10: "the customer refuses messages", 11: "no member of the company is logged in to WeCom",
                   12: "the message type is not allowed"}


class WeComKfCredentials(BaseModel):
    corp_id: str = Field(pattern=r"^w[wx][0-9a-f]{16}$", description="企业ID, like ww1234567890abcdef")
    secret: str = Field(min_length=16, max_length=128,
                        description="Secret of the self-built app set in 微信客服 → 可调用接口的应用")
    token: str = Field(pattern=r"^[A-Za-z0-9]{3,32}$", description="Token from the app's 接收消息 settings")
    encoding_aes_key: str = Field(pattern=AES_KEY_PATTERN, description="EncodingAESKey from the same page")


class WeComKfSettings(AccountSettings):
    # Empty: every kf account the app may serve (kf/account/list).
    open_kfids: list[str] = Field(default_factory=list, max_length=100)
    poll_seconds: float = Field(default=60.0, ge=5.0, le=3600.0)
    welcome_message_zh: str = Field(default="您好，我是智能客服，请问有什么可以帮您？", max_length=1000)
    welcome_message_en: str = Field(default="Hello, how can we help you today?", max_length=1000)


def thread_of(open_kfid: str, external_userid: str) -> str:
    """One customer's chat with one kf account: both are needed to answer."""
    return f"{open_kfid}|{external_userid}"


class WeComKfAdapter:
    kind: ClassVar[str] = "wecom_kf"
    capabilities: ClassVar[Capabilities] = Capabilities(buttons=True, images=True, markdown=False,
                                                        max_text_length=2048)
    credentials_model: ClassVar[type[BaseModel]] = WeComKfCredentials
    settings_model: ClassVar[type[BaseModel]] = WeComKfSettings
    secret_fields: ClassVar[frozenset[str]] = frozenset({"secret", "token", "encoding_aes_key"})

    def __init__(self, client: TencentApiClient | None = None, *, allow_private: bool = False,
                 own_media: OwnMedia | None = None) -> None:
        self.client = client or wecom_client()
        self.ciphers = CipherCache()
        # Picture addresses on private networks are fetched only where the hub allows it (the demo, tests).
        self.pictures = Pictures(self.client, allow_private=allow_private, own_media=own_media)

    # ---- inbound -------------------------------------------------------

    def parse_webhook(self, account: AccountRef, request: WebhookRequest) -> WebhookOutcome:
        echo, fields = open_callback(f"WeCom 微信客服 account {account.id}", account.credentials,
                                     self.ciphers.get(account.credentials), request)
        if echo is not None:
            return WebhookOutcome(events=[], response=echo)
        if fields.get("Event") != "kf_msg_or_event" or not fields.get("Token") or not fields.get("OpenKfId"):
            return WebhookOutcome(events=[], response="")  # other events of the app: nothing to pull
        # The poller pulls with this token: stored, and committed, before WeCom hears "success".
        return WebhookOutcome(events=[], response="",
                              cursor=(f"kf_token:{fields['OpenKfId']}", f"{fields['Token']} {int(time.time())}"))

    def wants_polling(self, account: AccountRef) -> bool:
        return True

    def make_poller(self, account: AccountRef, sink: InboundSink,
                    load_cursor: Callable[[str], Awaitable[str | None]]) -> KfPoller:
        return KfPoller(self, account, sink, load_cursor)

    async def kf_ids(self, account: AccountRef) -> list[str]:
        settings = WeComKfSettings.model_validate(account.settings)
        if settings.open_kfids:
            return settings.open_kfids
        body = await self.client.call(app_key(account), "/cgi-bin/kf/account/list", {"offset": 0, "limit": 100})
        return [a["open_kfid"] for a in body.get("account_list") or [] if a.get("open_kfid")]

    async def sync(self, account: AccountRef, open_kfid: str, cursor: str | None,
                   token: str | None) -> KfPage:
        """One page of kf/sync_msg."""
        payload: dict[str, Any] = {"limit": MAX_PULL, "open_kfid": open_kfid}
        if cursor:
            payload["cursor"] = cursor
        if token:
            payload["token"] = token
        body = await self.client.call(app_key(account), "/cgi-bin/kf/sync_msg", payload)
        items = body.get("msg_list") or []
        return KfPage(events=[event for item in items for event in parse_kf_message(item)],
                      servicers=servicer_statuses(items), cursor=str(body.get("next_cursor") or cursor or ""),
                      more=bool(body.get("has_more")))

    # ---- outbound ------------------------------------------------------

    def rate_limits(self, account: AccountRef, recipient: str) -> Sequence[tuple[str, RateLimit]]:
        return [(f"wecom_kf:{account.id}", RateLimit(20, 1.0))]

    async def send(self, account: AccountRef, message: OutboundMessage) -> SendResult:
        app = app_key(account)
        open_kfid, _, external = message.recipient.partition("|")
        options = message.options
        try:
            code = options.get("welcome_code") or options.get("event_code")
            deadline = float(options.get("welcome_deadline") or options.get("event_deadline") or 0)
            if "hand_over" in options:
                code = await self.hand_over(app, open_kfid, external, (options["hand_over"] or {}).get("servicer"))
                deadline = 0
            if code:  # send_msg_on_event takes text and menus only
                if deadline and time.time() > deadline:
                    raise PermanentFailure("the 微信客服 event code expired (valid 20 s after the event); the "
                                           "message was not sent")
                body = await self.client.call(app, "/cgi-bin/kf/send_msg_on_event", {
                    "code": code, **_content(message)})
            elif message.file_url:
                body = await self._send_file(app, open_kfid, external, message)
            else:
                body = await self._send(app, open_kfid, external, message)
        except ApiError as exc:
            raise _send_error(exc, account) from None
        except ApiUnavailable as exc:
            raise TemporaryFailure(str(exc)) from None
        return SendResult(platform_message_id=f"kf:{body.get('msgid', '')}", delivery=Delivery.IN_CHAT)

    async def _send(self, app: AppKey, open_kfid: str, external: str, message: OutboundMessage) -> dict[str, Any]:
        thumb = await self.pictures.media_id(app, message.image_url) \
            if message.image_url and not message.buttons else None
        return await self.client.call(app, "/cgi-bin/kf/send_msg", {
            "touser": external, "open_kfid": open_kfid, **_content(message, thumb)})

    async def _send_file(self, app: AppKey, open_kfid: str, external: str,
                         message: OutboundMessage) -> dict[str, Any]:
        """A document as a 微信客服 file message, after the words (and picture, buttons) as their own
        message; the file is uploaded first, so a file WeCom refuses sends nothing."""
        assert message.file_url
        media_id = await self.pictures.file_media_id(app, message.file_url, message.file_name)
        rest = replace(message, file_url=None, file_name=None)
        if rest.text.strip() or rest.buttons or rest.image_url or rest.link_url:
            await self._send(app, open_kfid, external, rest)
        return await self.client.call(app, "/cgi-bin/kf/send_msg", {
            "touser": external, "open_kfid": open_kfid, "msgtype": "file", "file": {"media_id": media_id}})

    async def hand_over(self, app: AppKey, open_kfid: str, external: str, servicer: str | None) -> str | None:
        """Move the session to `servicer` (WeCom's queue when None, or when they cannot take it);
        the code WeCom gives to say so to the customer, None when the session was there already."""
        state = STATE_SERVICER if servicer else STATE_QUEUE
        payload: dict[str, Any] = {"open_kfid": open_kfid, "external_userid": external, "service_state": state}
        if servicer:
            payload["servicer_userid"] = servicer
        try:
            body = await self.client.call(app, "/cgi-bin/kf/service_state/trans", payload)
        except ApiError as exc:
            if exc.errcode not in SERVICER_REFUSED:
                raise
            now = await self.client.call(app, "/cgi-bin/kf/service_state/get",
                                         {"open_kfid": open_kfid, "external_userid": external})
            if now.get("service_state") in (STATE_QUEUE, STATE_SERVICER):
                return None  # a person has it already (a retried send, or picked up in WeCom)
            if not servicer:
                raise
            log.warning("微信客服 %s: servicer %s cannot take %s (%s %s); WeCom's queue serves instead",
                        open_kfid, servicer, external, exc.errcode, exc.errmsg)
            return await self.hand_over(app, open_kfid, external, None)
        return str(body.get("msg_code") or "") or None

    async def fetch_profile(self, account: AccountRef, external_id: str) -> Profile | None:
        """A WeChat user's nickname and unionid (kf/customer/batchget): with the unionid they join the
        contact their Official Account or WeCom identity already has."""
        body = await self.client.call(app_key(account), "/cgi-bin/kf/customer/batchget",
                                      {"external_userid_list": [external_id], "need_enter_session_context": 0})
        customer = next((c for c in body.get("customer_list") or [] if c.get("external_userid") == external_id), None)
        if customer is None:
            return Profile()  # WeCom lists it under invalid_external_userid: nothing to learn
        unionid = str(customer.get("unionid") or "")
        return Profile(display_name=customer.get("nickname") or None, keys={UNIONID_KEY: unionid} if unionid else {})

    async def contact_link(self, account: AccountRef, open_kfid: str | None, scene: str, scene_param: str) -> str:
        """A link (and QR code) into a kf account's chat (kf/add_contact_way); the customer's
        enter_session event carries `scene_param` back, which becomes their source."""
        if not SCENE.match(scene):
            raise ValueError(f"scene {scene!r}: at most 32 letters, digits, _ or -")
        if len(quote(scene_param, safe="").encode()) > 128:
            raise ValueError("the source is over 128 bytes once URL-encoded: shorten it")
        kf_ids = [open_kfid] if open_kfid else await self.kf_ids(account)
        if not kf_ids:
            raise ValueError("the app serves no 微信客服 account yet: add one under 微信客服 → 客服账号")
        body = await self.client.call(app_key(account), "/cgi-bin/kf/add_contact_way",
                                      {"open_kfid": kf_ids[0], "scene": scene})
        return f"{body['url']}&scene_param={quote(scene_param, safe='')}"

    async def check_connection(self, api_base: str | None, credentials: dict[str, Any]) -> ConnectionCheck:
        creds = WeComKfCredentials.model_validate(credentials)
        try:
            MessageCipher(creds.token, creds.encoding_aes_key, creds.corp_id)
        except ValueError as exc:
            raise ConnectionFailed(str(exc)) from None
        app = AppKey(api_base or DEFAULT_API_BASE, creds.corp_id, creds.secret)
        try:
            body = await self.client.call(app, "/cgi-bin/kf/account/list", {"offset": 0, "limit": 100})
        except ApiError as exc:
            hint = {40013: "the corp id is wrong", 40001: "the Secret is wrong", 48002: "the app may not call "
                    "微信客服: add it under 微信客服 → 可调用接口的应用"}.get(exc.errcode, exc.errmsg)
            raise ConnectionFailed(f"WeCom refused ({exc.errcode}): {hint}") from None
        except ApiUnavailable as exc:
            raise ConnectionFailed(str(exc)) from None
        names = [a.get("name") or a.get("open_kfid", "?") for a in body.get("account_list") or []]
        return ConnectionCheck(platform_account_id=f"{creds.corp_id}:kf",
                               display_name="微信客服: " + (", ".join(names) if names else "no kf account yet"))

    async def activate(self, account: AccountRef, webhook_url: str) -> None:
        """The callback URL is set in WeCom's console (it checks it with a GET); nothing to call."""

    async def close(self) -> None:
        await self.pictures.close()
        await self.client.close()


class KfPoller:
    """Pulls each kf account's messages when a callback's token arrives, and every `poll_seconds`."""

    def __init__(self, adapter: WeComKfAdapter, account: AccountRef, sink: InboundSink,
                 load_cursor: Callable[[str], Awaitable[str | None]], *, tick: float = 1.0) -> None:
        self.adapter, self.account, self.sink, self.load_cursor = adapter, account, sink, load_cursor
        self.settings = WeComKfSettings.model_validate(account.settings)
        self.tick = tick
        self._used_tokens: dict[str, str] = {}
        self._pulled_at: dict[str, float] = {}

    async def run(self, stop: asyncio.Event) -> None:
        kf_ids: list[str] = []
        listed_at = 0.0
        while not stop.is_set():
            try:
                if not kf_ids or time.monotonic() - listed_at > self.settings.poll_seconds:
                    kf_ids, listed_at = await self.adapter.kf_ids(self.account), time.monotonic()
                for open_kfid in kf_ids:
                    await self.pull_if_due(open_kfid)
            except (ApiError, ApiUnavailable) as exc:
                log.warning("微信客服 account %s: pull failed (%s); trying again", self.account.id, exc)
                await wait_any(stop, timeout=self.settings.poll_seconds / 4)
            except Exception:
                log.exception("微信客服 account %s: pull failed", self.account.id)
                await wait_any(stop, timeout=self.settings.poll_seconds / 4)
            await wait_any(stop, timeout=self.tick)

    async def pull_if_due(self, open_kfid: str) -> int:
        """Pull when a new callback token is stored or the periodic pull is due; how many events."""
        stored = await self.load_cursor(f"kf_token:{open_kfid}") or ""
        token, _, at = stored.partition(" ")
        fresh = token and at.isdigit() and time.time() - int(at) < PULL_TOKEN_SECONDS
        new_token = fresh and self._used_tokens.get(open_kfid) != token
        due = time.monotonic() - self._pulled_at.get(open_kfid, -1e9) >= self.settings.poll_seconds
        if not (new_token or due):
            return 0
        self._used_tokens[open_kfid] = token
        self._pulled_at[open_kfid] = time.monotonic()
        return await self.pull(open_kfid, token if fresh else None)

    async def pull(self, open_kfid: str, token: str | None) -> int:
        cursor = await self.load_cursor(f"kf_cursor:{open_kfid}")
        total = 0
        while True:
            page = await self.adapter.sync(self.account, open_kfid, cursor, token)
            # Who receives now, before the cursor moves past it (a state: written again if the page is
            # pulled again after a crash).
            for userid, receiving in page.servicers.items():
                await self.sink(self.account.id, [], servicer_status(userid, receiving))
            # The page's messages and the cursor after them: one transaction.
            cursor = page.cursor
            await self.sink(self.account.id, page.events, (f"kf_cursor:{open_kfid}", cursor))
            total += len(page.events)
            if not page.more:
                return total


@dataclass
class KfPage:
    """One page of kf/sync_msg: its events, each servicer whose receiving status changed (userid ->
    receiving, as the page leaves it), the cursor after it, and whether more wait."""
    events: list[InboundEvent]
    servicers: dict[str, bool]
    cursor: str
    more: bool


def servicer_statuses(items: list[dict[str, Any]]) -> dict[str, bool]:
    """servicer_status_change events (status 1 接待中, 2 停止接待) in order: the last one wins."""
    statuses: dict[str, bool] = {}
    for item in items:
        event = item.get("event") or {}
        if item.get("origin") == ORIGIN_EVENT and event.get("event_type") == "servicer_status_change" \
                and event.get("servicer_userid") and event.get("status") in (1, 2):
            statuses[str(event["servicer_userid"])] = event["status"] == 1
    return statuses


def parse_kf_message(item: dict[str, Any]) -> list[InboundEvent]:
    """One entry of sync_msg's msg_list as normalized events; what the hub does not use gives none."""
    origin, msgtype = item.get("origin"), item.get("msgtype", "")
    open_kfid, external = str(item.get("open_kfid") or ""), str(item.get("external_userid") or "")
    msgid = str(item.get("msgid") or "")
    if origin == ORIGIN_EVENT and msgtype == "event":
        return _kf_event(item.get("event") or {}, open_kfid, msgid)
    servicer = str(item.get("servicer_userid") or "") if origin == ORIGIN_SERVICER else ""
    if origin not in (ORIGIN_CUSTOMER, ORIGIN_SERVICER) or not external or not msgid \
            or (origin == ORIGIN_SERVICER and not servicer):
        return []  # something without its parties
    sender = Sender(external_id=external)
    thread = thread_of(open_kfid, external)
    common: dict[str, Any] = {"platform_message_id": f"kf:{msgid}", "sender": sender, "thread_id": thread,
                              "raw": item}
    if servicer:  # a servicer wrote to the customer from their WeCom client: the company's words
        common["staff_author"] = servicer
    staff = [{"type": "by_staff", "staff": servicer}] if servicer else []
    if msgtype == "text":
        text = item.get("text") or {}
        if text.get("menu_id"):  # a click on a msgmenu button: its id is the button's data
            return [InboundMessage(kind=MessageKind.CALLBACK, text=str(text["menu_id"]), **common,
                                   attachments=[{"type": "menu_click", "label": text.get("content")}])]
        return [InboundMessage(kind=MessageKind.TEXT, text=str(text.get("content") or ""), **common,
                               attachments=staff)]
    if msgtype in ("image", "voice", "file", "video"):
        media = item.get(msgtype) or {}
        kind = {"image": MessageKind.IMAGE, "voice": MessageKind.VOICE}.get(msgtype, MessageKind.FILE)
        return [InboundMessage(kind=kind, text=None, **common,
                               attachments=[{"type": msgtype, "media_id": media.get("media_id")}, *staff])]
    if msgtype == "location":
        place = item.get("location") or {}
        return [InboundMessage(kind=MessageKind.LOCATION, text=place.get("address") or place.get("name"), **common,
                               attachments=[{"type": "location", **place}, *staff])]
    if msgtype == "link":
        link = item.get("link") or {}
        return [InboundMessage(kind=MessageKind.LINK, text=link.get("title") or link.get("url"), **common,
                               attachments=[{"type": "link", **link}, *staff])]
    return []


def _kf_event(event: dict[str, Any], open_kfid: str, msgid: str) -> list[InboundEvent]:
    kind = event.get("event_type")
    external = str(event.get("external_userid") or "")
    if not external:
        return []  # servicer_status_change: no customer's chat (see servicer_statuses)
    sender, thread = Sender(external_id=external), thread_of(event.get("open_kfid") or open_kfid, external)
    common = {"platform_message_id": f"kf:{msgid}", "sender": sender, "thread_id": thread, "raw": event}
    if kind == "enter_session":
        entered: dict[str, Any] = {"type": "contact_added",
                                   "source": event.get("scene_param") or event.get("scene") or None}
        if event.get("welcome_code"):
            entered["welcome_code"] = event["welcome_code"]
            entered["welcome_deadline"] = int(time.time()) + WELCOME_WINDOW_SECONDS
        return [ReachabilityChanged(**common, reachable=True, reason="entered a 微信客服 session",
                                    attachments=[entered])]
    if kind == "session_status_change":
        change = event.get("change_type")
        if change == SESSION_ENDED:
            ended: dict[str, Any] = {"type": "session_ended", "by": event.get("old_servicer_userid") or None}
            if event.get("msg_code"):  # the closing words may still reach the customer, with this code
                ended["event_code"] = event["msg_code"]
                ended["event_deadline"] = int(time.time()) + WELCOME_WINDOW_SECONDS
            return [InboundMessage(**common, kind=MessageKind.EVENT, text=None, attachments=[ended])]
        if change in SERVICER_JOINED and event.get("new_servicer_userid"):
            return [InboundMessage(**common, kind=MessageKind.EVENT, text=None, attachments=[{
                "type": "servicer_changed", "servicer": event["new_servicer_userid"],
                "from": event.get("old_servicer_userid") or None}])]
        return []
    if kind == "msg_send_fail" and event.get("fail_msgid"):
        reason = SEND_FAIL_TYPES.get(event.get("fail_type"), f"fail_type {event.get('fail_type')}")
        return [InboundMessage(**common, kind=MessageKind.EVENT, text=None, attachments=[{
            "type": "send_failed", "platform_message_id": f"kf:{event['fail_msgid']}",
            "reason": f"WeCom 微信客服 could not deliver it: {reason}"}])]
    return []


def _content(message: OutboundMessage, thumb_media_id: str | None = None) -> dict[str, Any]:
    """Text; a picture alone (no words, no link) as an image; a picture with words or a link as a
    link card (with the uploaded picture as its thumbnail); buttons as a msgmenu whose clicks come
    back with the button's data as menu_id."""
    if thumb_media_id and not message.buttons and not message.text.strip() and not message.link_url:
        return {"msgtype": "image", "image": {"media_id": thumb_media_id}}
    if thumb_media_id and not message.buttons:
        title, _, rest = (message.title or message.text).partition("\n")
        return {"msgtype": "link", "link": {
            "title": shortened(title, 128), "desc": (rest if not message.title else message.text)[:512],
            "url": message.link_url or message.image_url, "thumb_media_id": thumb_media_id}}
    if message.buttons:
        return {"msgtype": "msgmenu", "msgmenu": {
            "head_content": "\n".join([message.text, *media_lines(message)]),
            "list": [{"type": "click", "click": {"id": b.data[:128], "content": shortened(b.label, 128)}}
                     for b in message.buttons[:10]]}}
    return {"msgtype": "text", "text": {"content": numbered_options(message)}}


def _send_error(exc: ApiError, account: AccountRef) -> Exception:
    if exc.errcode in HELD_CODES:
        return SendHeld(f"微信客服 {exc.errcode}: {HELD_CODES[exc.errcode]}; it goes when the customer writes again",
                        code=exc.errcode)
    return common_send_error(exc, account) or PermanentFailure(f"WeCom 微信客服 rejected the message: "
                                                               f"{exc.errcode} {exc.errmsg}", code=exc.errcode)
