"""DingTalk (钉钉) adapter: one enterprise-internal app's robot.

Inbound, either way the company can:
- HTTP: the robot's message callback `POST /hooks/dingtalk/{account_id}`,
  signed with the `timestamp` and `sign` headers (HmacSHA256 of
  `timestamp + "\\n" + AppSecret`), compared in constant time; more than an
  hour off is refused. Interactive-card button callbacks come to the same URL.
- Stream: the hub connects out to DingTalk's gateway (`stream.py`), for
  companies that cannot expose a public URL. Both paths give the same events.

Who writes: a colleague in the robot's own company has a staffId, which maps
to a rep (`is_staff`); anyone else is a customer, known by their senderId. In
groups the robot reacts only when @-mentioned. Retries repeat msgId, the
platform message id, so they are no-ops.

Outbound: the sessionWebhook of the recipient's newest message while it is
valid; otherwise the OpenAPI: `robot/groupMessages/send` to a group,
`robot/oToMessages/batchSend` (20 users a call) to colleagues, and an
interactive card (`im/interactiveCards/send`) when there are buttons.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
import urllib.parse
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any, ClassVar, Literal

from dingtalk_stream.chatbot import ChatbotMessage
from pydantic import BaseModel, Field

from channels.base import (
    AccountSettings,
    Capabilities,
    ConnectionCheck,
    ConnectionFailed,
    InboundSink,
    WebhookOutcome,
    WebhookRejected,
    WebhookRequest,
    load_json_object,
    numbered_options,
    shortened,
)
from channels.dingtalk.client import DEFAULT_API_BASE, App, DingTalkApi, DingTalkError, DingTalkUnavailable
from channels.dingtalk.signing import MAX_SKEW_MS, SignatureRejected, check
from channels.replay import ReplayedSignature, ReplayGuard
from crm_core.models import Delivery, MessageKind
from crm_core.ports import (
    AccountRef,
    InboundEvent,
    InboundMessage,
    OutboundMessage,
    PermanentFailure,
    RateLimit,
    RecipientUnreachable,
    RetryLater,
    Sender,
    SendResult,
    TemporaryFailure,
)

log = logging.getLogger(__name__)

BATCH_LIMIT = 20  # users per robot/oToMessages/batchSend call
# A sessionWebhook this close to expiry is not used: the OpenAPI is.
SESSION_MARGIN_MS = 60_000
GROUP_PREFIX = "cid"  # DingTalk's open conversation ids of groups


class DingTalkCredentials(BaseModel):
    app_key: str = Field(pattern=r"^[A-Za-z0-9_-]{6,64}$", description="AppKey (Client ID) of the internal app")
    app_secret: str = Field(min_length=16, max_length=128, description="AppSecret (Client Secret)")
    robot_code: str = Field(min_length=1, max_length=64, description="The robot's RobotCode (often the AppKey)")


class DingTalkSettings(AccountSettings):
    # How messages reach the hub: the robot's HTTP callback, or a stream connection.
    mode: Literal["http", "stream"] = "http"
    card_template_id: str = Field(default="StandardCard", max_length=100)
    # The callbackRouteKey registered for interactive-card callbacks to this hub.
    card_callback_route_key: str = Field(default="scrm-hub", max_length=100)
    messages_per_second: float = Field(default=20.0, gt=0, le=100)
    group_messages_per_minute: int = Field(default=20, ge=1, le=60)


class DingTalkAdapter:
    kind: ClassVar[str] = "dingtalk"
    capabilities: ClassVar[Capabilities] = Capabilities(buttons=True, markdown=True, max_text_length=5000,
                                                        reply_via=True)
    credentials_model: ClassVar[type[BaseModel]] = DingTalkCredentials
    settings_model: ClassVar[type[BaseModel]] = DingTalkSettings
    secret_fields: ClassVar[frozenset[str]] = frozenset({"app_secret"})

    def __init__(self, api: DingTalkApi | None = None) -> None:
        self.api = api or DingTalkApi()
        # A pair is valid from an hour before its timestamp to an hour after.
        self.replays = ReplayGuard(valid_for_seconds=2 * MAX_SKEW_MS / 1000)

    # ---- inbound -------------------------------------------------------

    def parse_webhook(self, account: AccountRef, request: WebhookRequest) -> WebhookOutcome:
        label = f"DingTalk channel account {account.id}"
        if request.method != "POST":
            raise WebhookRejected(405, f"{label}: DingTalk calls back with POST")
        timestamp, given = request.headers.get("timestamp"), request.headers.get("sign")
        try:
            check(timestamp, given, account.credentials["app_secret"])
            self.replays.check((str(account.id), timestamp or "", given or ""), request.body)
        except SignatureRejected as exc:
            raise WebhookRejected(exc.status, f"{label}: {exc.message}") from None
        except ReplayedSignature as exc:
            raise WebhookRejected(403, f"{label}: {exc}") from None
        body = load_json_object(request.body, label)
        try:
            events = parse_payload(body)
        except ValueError as exc:
            raise WebhookRejected(400, f"{label}: {exc}") from None
        return WebhookOutcome(events=[checked_reply_via(e, account) for e in events], response={})

    # ---- outbound ------------------------------------------------------

    def rate_limits(self, account: AccountRef, recipient: str) -> Sequence[tuple[str, RateLimit]]:
        settings = DingTalkSettings.model_validate(account.settings)
        limits = [(f"dingtalk:{account.id}", RateLimit(1, 1 / settings.messages_per_second))]
        if recipient.startswith(GROUP_PREFIX):
            limits.append((f"dingtalk:{account.id}:{recipient}", RateLimit(settings.group_messages_per_minute, 60)))
        return limits

    async def send(self, account: AccountRef, message: OutboundMessage) -> SendResult:
        try:
            via = message.reply_via or {}
            hook = via.get("session_webhook")
            if hook and (refused := session_webhook_refused(hook, account.api_base)):
                log.warning("DingTalk account %s: not posting to sessionWebhook %r: %s", account.id, hook[:200],
                            refused)
                hook = None
            if hook and int(via.get("expires_at_ms") or 0) - SESSION_MARGIN_MS > time.time() * 1000 \
                    and not message.buttons:
                try:
                    await self.api.post_webhook(hook, webhook_message(message))
                    return SendResult(platform_message_id=f"session:{uuid.uuid4().hex}", delivery=Delivery.IN_CHAT)
                except DingTalkError as exc:
                    # The session ended early (or DingTalk refuses it): the OpenAPI still reaches them.
                    log.info("DingTalk account %s: sessionWebhook refused (%s %s); using the OpenAPI",
                             account.id, exc.code, exc.message)
            if message.recipient.startswith(GROUP_PREFIX):
                body = await self.api.call(_app(account), "/v1.0/robot/groupMessages/send", {
                    "robotCode": account.credentials["robot_code"], "openConversationId": message.recipient,
                    **_template(message)})
                return SendResult(platform_message_id=str(body.get("processQueryKey", "")))
            if message.buttons:
                return await self._card(account, message)
            keys = await self.batch_send(account, message.recipient.split("|"), message)
            return SendResult(platform_message_id=",".join(keys))
        except DingTalkError as exc:
            raise _send_error(exc, account) from None
        except DingTalkUnavailable as exc:
            raise TemporaryFailure(str(exc)) from None

    async def batch_send(self, account: AccountRef, user_ids: Sequence[str], message: OutboundMessage) -> list[str]:
        """One robot message to colleagues, in calls of at most 20 users; the processQueryKeys."""
        keys = []
        for start in range(0, len(user_ids), BATCH_LIMIT):
            chunk = list(user_ids[start:start + BATCH_LIMIT])
            body = await self.api.call(_app(account), "/v1.0/robot/oToMessages/batchSend", {
                "robotCode": account.credentials["robot_code"], "userIds": chunk, **_template(message)})
            invalid = set(body.get("invalidStaffIdList") or [])
            if invalid and len(user_ids) == 1:
                raise RecipientUnreachable(f"DingTalk: {', '.join(sorted(invalid))} is not a member of this company")
            if body.get("flowControlledStaffIdList"):
                raise RetryLater("DingTalk flow control for " + ", ".join(body["flowControlledStaffIdList"]),
                                 retry_after=60.0)
            keys.append(str(body.get("processQueryKey", "")))
        return keys

    async def _card(self, account: AccountRef, message: OutboundMessage) -> SendResult:
        settings = DingTalkSettings.model_validate(account.settings)
        biz_id = uuid.uuid4().hex
        await self.api.call(_app(account), "/v1.0/im/interactiveCards/send", {
            "cardTemplateId": settings.card_template_id,
            "singleChatReceiver": json.dumps({"userId": message.recipient}),
            "cardBizId": biz_id,
            "robotCode": account.credentials["robot_code"],
            "callbackRouteKey": settings.card_callback_route_key,
            "cardData": json.dumps(_standard_card(message), ensure_ascii=False),
        })
        return SendResult(platform_message_id=f"card:{biz_id}", delivery=Delivery.IN_CHAT)

    # ---- setup ---------------------------------------------------------

    async def check_connection(self, api_base: str | None, credentials: dict[str, Any]) -> ConnectionCheck:
        creds = DingTalkCredentials.model_validate(credentials)
        try:
            await self.api.access_token(App(api_base or DEFAULT_API_BASE, creds.app_key, creds.app_secret),
                                        force=True)
        except DingTalkError as exc:
            raise ConnectionFailed(f"DingTalk refused the AppKey / AppSecret ({exc.status} {exc.code}): "
                                   f"{exc.message}") from None
        except DingTalkUnavailable as exc:
            raise ConnectionFailed(str(exc)) from None
        return ConnectionCheck(platform_account_id=f"{creds.app_key}:{creds.robot_code}",
                               display_name=f"DingTalk robot {creds.robot_code}")

    async def activate(self, account: AccountRef, webhook_url: str) -> None:
        """The robot's message URL (HTTP mode) and card callback route are set in the
        DingTalk developer console; stream mode needs nothing. Nothing to call."""

    def wants_polling(self, account: AccountRef) -> bool:
        return DingTalkSettings.model_validate(account.settings).mode == "stream"

    def make_poller(self, account: AccountRef, sink: InboundSink,
                    load_cursor: Callable[[str], Awaitable[str | None]]) -> Any:
        from channels.dingtalk.stream import StreamPoller  # the stream client builds on this module

        return StreamPoller(self, account, sink)

    async def close(self) -> None:
        await self.api.close()


# Where DingTalk's sessionWebhook points: its own robot endpoint (open.dingtalk.com documents
# https://oapi.dingtalk.com/robot/sendBySession?session=...).
SESSION_WEBHOOK_HOSTS = frozenset({"oapi.dingtalk.com"})
SESSION_WEBHOOK_PATH = "/robot/sendBySession"


def session_webhook_refused(url: str, api_base: str | None) -> str | None:
    """Why the hub will not POST a reply to this sessionWebhook, or None. It comes in the
    callback's body, which the signature does not cover: only DingTalk's own endpoint (or the
    account's configured API base, a simulator or proxy the operator chose) is called."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        return "not a URL"
    if parts.path != SESSION_WEBHOOK_PATH or parts.username or parts.password or parts.fragment:
        return f"not DingTalk's {SESSION_WEBHOOK_PATH} endpoint"
    if parts.scheme == "https" and parts.hostname in SESSION_WEBHOOK_HOSTS and port in (None, 443):
        return None
    if api_base:
        base = urllib.parse.urlsplit(api_base)
        if (parts.scheme, parts.hostname, port or None) == (base.scheme, base.hostname, base.port or None):
            return None
    return f"the host {parts.hostname!r} is not DingTalk's ({', '.join(sorted(SESSION_WEBHOOK_HOSTS))})"


def checked_reply_via(event: InboundEvent, account: AccountRef) -> InboundEvent:
    """The event without a sessionWebhook the hub would not call, the reason logged."""
    if not isinstance(event, InboundMessage):
        return event
    kept = []
    for item in event.attachments:
        refused = item.get("type") == "reply_via" and session_webhook_refused(str(item.get("session_webhook")),
                                                                              account.api_base)
        if refused:
            log.warning("DingTalk account %s: dropped the sessionWebhook of message %s: %s", account.id,
                        event.platform_message_id, refused)
            continue
        kept.append(item)
    return replace(event, attachments=kept) if len(kept) != len(event.attachments) else event


def _app(account: AccountRef) -> App:
    creds = account.credentials
    return App(account.api_base or DEFAULT_API_BASE, creds["app_key"], creds["app_secret"])


def _markdown(message: OutboundMessage) -> str:
    """The message as DingTalk markdown: heading, picture, text, options, link."""
    parts = [f"#### {message.title}"] if message.title else []
    if message.image_url:
        parts.append(f"![]({message.image_url})")
    parts.append(numbered_options(message, with_media=False))
    if message.link_url:
        parts.append(f"[{message.link_url}]({message.link_url})")
    return "\n\n".join(parts)


def _heading(message: OutboundMessage) -> str:
    return message.title or shortened(message.text.split("\n", 1)[0], 60)


def _template(message: OutboundMessage) -> dict[str, str]:
    """A robot message template: markdown for a titled notice or a picture, plain text otherwise."""
    if message.title or message.image_url or message.link_url:
        param = {"title": _heading(message), "text": _markdown(message)}
        return {"msgKey": "sampleMarkdown", "msgParam": json.dumps(param, ensure_ascii=False)}
    return {"msgKey": "sampleText", "msgParam": json.dumps({"content": numbered_options(message)},
                                                          ensure_ascii=False)}


def webhook_message(message: OutboundMessage) -> dict[str, Any]:
    if message.title or message.image_url or message.link_url:
        return {"msgtype": "markdown", "markdown": {"title": _heading(message), "text": _markdown(message)}}
    return {"msgtype": "text", "text": {"content": numbered_options(message)}}


def _standard_card(message: OutboundMessage) -> dict[str, Any]:
    """DingTalk's StandardCard: a title, the text, and one button per action (its id comes back)."""
    body = _markdown(replace(message, title=None, buttons=()))
    contents: list[dict[str, Any]] = [{"type": "markdown", "text": body, "id": "text"}]
    contents.append({"type": "action", "id": "actions", "actions": [
        {"type": "button", "id": b.data[:200], "label": {"type": "text", "text": shortened(b.label, 20)},
         "actionType": "request", "status": "primary" if n == 0 else "normal"}
        for n, b in enumerate(message.buttons[:6])]})
    title = shortened(message.title or message.text.split("\n", 1)[0], 60)
    return {"config": {"autoLayout": True, "enableForward": False},
            "header": {"title": {"type": "text", "text": title}}, "contents": contents}


def _send_error(exc: DingTalkError, account: AccountRef) -> Exception:
    if exc.rate_limited:
        return RetryLater(f"DingTalk rate limit ({exc.code})", retry_after=30.0, code=exc.code)
    if exc.status in (401, 403) and "Auth" in exc.code:
        return TemporaryFailure(f"DingTalk refused the credentials of channel account {account.id} ({exc.code}): "
                                "check the AppKey and AppSecret in the admin panel", code=exc.code)
    return PermanentFailure(f"DingTalk rejected the message: HTTP {exc.status} {exc.code} {exc.message}",
                            code=exc.code)


# ---- parsing (shared by the HTTP callback and the stream client) ------------

def parse_payload(body: dict[str, Any]) -> list[InboundEvent]:
    """A robot message or an interactive-card callback, normalized."""
    if "outTrackId" in body:
        return parse_card_callback(body)
    return parse_robot_message(body)


def parse_robot_message(body: dict[str, Any]) -> list[InboundEvent]:
    if not body.get("msgId") or not body.get("msgtype"):
        raise ValueError("a robot message needs msgId and msgtype")
    try:
        msg = ChatbotMessage.from_dict(body)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"malformed robot message: {type(exc).__name__}: {exc}") from None
    group = str(msg.conversation_type) == "2"
    if group and not msg.is_in_at_list:
        return []  # in groups the robot answers only when @-mentioned
    staff_id = msg.sender_staff_id or ""
    same_corp = not msg.sender_corp_id or not msg.chatbot_corp_id or msg.sender_corp_id == msg.chatbot_corp_id
    is_staff = bool(staff_id) and same_corp
    external_id = staff_id if is_staff else str(msg.sender_id or "")
    if not external_id:
        raise ValueError("a robot message without senderId")
    kind, text, attachments = _content(body, msg)
    if msg.session_webhook:
        attachments.append({"type": "reply_via", "session_webhook": msg.session_webhook,
                            "expires_at_ms": _millis(msg.session_webhook_expired_time) or 0})
    created_ms = _millis(msg.create_at)
    sent_at = dt.datetime.fromtimestamp(created_ms / 1000, dt.UTC) if created_ms else None
    thread = str(msg.conversation_id) if group else external_id
    return [InboundMessage(platform_message_id=f"msg:{msg.message_id}",
                           sender=Sender(external_id=external_id, display_name=msg.sender_nick or None,
                                         is_staff=is_staff),
                           thread_id=thread, kind=kind, text=text, raw=body, sent_at=sent_at,
                           attachments=attachments)]


def _content(body: dict[str, Any], msg: ChatbotMessage) -> tuple[MessageKind, str | None, list[dict[str, Any]]]:
    msgtype = msg.message_type
    content = body.get("content") if isinstance(body.get("content"), dict) else {}
    if msgtype == "text":
        return MessageKind.TEXT, ((msg.text.content if msg.text else "") or "").strip(), []
    if msgtype == "richText":
        parts = (msg.rich_text_content.rich_text_list if msg.rich_text_content else None) or []
        text = "".join(p.get("text", "") for p in parts if isinstance(p, dict)).strip()
        images = [{"type": "image", "download_code": p["downloadCode"]} for p in parts
                  if isinstance(p, dict) and p.get("downloadCode")]
        return MessageKind.TEXT, text or None, images
    if msgtype == "picture":
        return MessageKind.IMAGE, None, [{"type": "image", "download_code": content.get("downloadCode")}]
    if msgtype == "audio":
        return MessageKind.VOICE, content.get("recognition") or None, [
            {"type": "voice", "download_code": content.get("downloadCode"), "duration": content.get("duration")}]
    if msgtype in ("file", "video"):
        return MessageKind.FILE, content.get("fileName") or None, [
            {"type": msgtype, "download_code": content.get("downloadCode"), "name": content.get("fileName")}]
    return MessageKind.TEXT, f"[{msgtype}]", []


def _millis(value: Any) -> int | None:
    """A DingTalk time in milliseconds, or None unless it is one (digits, before the year 2100)."""
    text = str(value if value is not None else "")
    if not (text.isascii() and text.isdigit() and len(text) <= 13) or not 0 < int(text) < 4_102_444_800_000:
        return None
    return int(text)


def parse_card_callback(body: dict[str, Any]) -> list[InboundEvent]:
    """A button press on an interactive card: the button's id reaches the rep workspace."""
    user_id = str(body.get("userId") or "")
    track = str(body.get("outTrackId") or "")
    if not user_id or not track:
        raise ValueError("a card callback needs outTrackId and userId")
    try:
        content = json.loads(body.get("content") or "{}")
    except ValueError:
        raise ValueError("the card callback's content is not JSON") from None
    private = content.get("cardPrivateData") if isinstance(content, dict) else None
    actions = (private or {}).get("actionIds") or []
    if not actions:
        return []
    action = str(actions[0])
    # One press of one button on one card: DingTalk's retries repeat these.
    platform_id = f"card:{track}:{user_id}:{action}:{body.get('requestId') or body.get('timestamp') or ''}"
    return [InboundMessage(platform_message_id=platform_id, sender=Sender(external_id=user_id, is_staff=True),
                           thread_id=user_id, kind=MessageKind.CALLBACK, text=action, raw=body)]
