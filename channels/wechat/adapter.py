"""WeChat Official Account (公众号) adapter.

Inbound is the account's server URL. In plain mode a request is signed
`signature = sha1(sorted(token, timestamp, nonce))` over a plaintext XML body;
in safe mode the body carries `<Encrypt>`, signed by `msg_signature` over the
ciphertext too, and decrypted for this app id (the same crypto as WeCom).
"Compatible" mode sends both; the encrypted part is the one trusted. URL
verification (GET) is plain in every mode: the `echostr` is returned as is.

Messages dedupe on MsgId, events on FromUserName + CreateTime (+ the event),
as the platform's retries repeat them. subscribe / SCAN record the QR scene as
the lead source; unsubscribe makes the follower unreachable; CLICK is a menu
button press.

Outbound is the customer-service API (message/custom/send), which WeChat only
allows after the follower's own action, counted per its rules: after a
message, 5 sends within 48 hours; after a follow, a QR scan or a menu click,
3 sends within a minute. A send outside the window or over the quota is held
back with the reason (as is WeChat's own 45015 / 45047), and goes out when the
follower writes again.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field

from channels.base import (
    AccountSettings,
    Capabilities,
    ConnectionCheck,
    ConnectionFailed,
    WebhookOutcome,
    WebhookRejected,
    WebhookRequest,
    numbered_options,
    shortened,
)
from channels.replay import ReplayedSignature, ReplayGuard
from channels.tencent import (
    AES_KEY_PATTERN,
    UNIONID_KEY,
    CallbackRejected,
    MessageCipher,
    message_content,
    parse_xml,
    seconds_off,
    signature_matches,
)
from channels.tencent_client import ApiError, ApiUnavailable, AppKey, TencentApiClient
from channels.wechat.client import DEFAULT_API_BASE, wechat_client
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
    RecipientActivity,
    RecipientUnreachable,
    RetryLater,
    Sender,
    SendHeld,
    SendResult,
    TemporaryFailure,
)

CALLBACK_MAX_AGE_SECONDS = 600
OUTSIDE_WINDOW = 45015
OVER_QUOTA = 45047
NOT_FOLLOWING = frozenset({43004, 40003})  # unsubscribed; openid not of this account


class WeChatCredentials(BaseModel):
    app_id: str = Field(pattern=r"^wx[0-9a-f]{16}$", description="AppID, like wx1234567890abcdef")
    app_secret: str = Field(pattern=r"^[0-9a-zA-Z]{32}$", description="AppSecret (32 characters)")
    token: str = Field(pattern=r"^[A-Za-z0-9]{3,32}$", description="Token from 服务器配置")
    encoding_aes_key: str | None = Field(default=None, pattern=AES_KEY_PATTERN,
                                         description="EncodingAESKey; required in safe and compatible mode")


class WeChatSettings(AccountSettings):
    # As chosen under 消息加解密方式; unset: safe when an EncodingAESKey is saved, else plain.
    mode: Literal["plain", "compatible", "safe"] | None = None
    # WeChat's customer-service rules; change only if WeChat changes them.
    message_window_hours: float = Field(default=48, gt=0, le=48)
    sends_per_message: int = Field(default=5, ge=1, le=20)
    action_window_seconds: float = Field(default=60, gt=0, le=3600)
    sends_per_action: int = Field(default=3, ge=1, le=20)
    messages_per_second: float = Field(default=20, gt=0, le=400)


def window_refusal(activity: RecipientActivity | None, settings: WeChatSettings,
                   now: dt.datetime | None = None) -> str | None:
    """Why WeChat would refuse a customer-service send now, or None if it is allowed."""
    now = now or dt.datetime.now(dt.UTC)
    if activity is None:
        return "the follower has not written or acted yet: WeChat allows replies only after their action"
    message_open = (activity.last_message_at is not None
                    and now - _aware(activity.last_message_at) <= dt.timedelta(hours=settings.message_window_hours))
    action_open = (activity.last_event_at is not None
                   and now - _aware(activity.last_event_at) <= dt.timedelta(seconds=settings.action_window_seconds))
    if message_open and activity.sent_since_message < settings.sends_per_message:
        return None
    if action_open and activity.sent_since_event < settings.sends_per_action:
        return None
    if message_open:
        return (f"WeChat allows {settings.sends_per_message} messages after the follower's message and "
                f"{activity.sent_since_message} were sent; waiting for the follower to write again")
    if activity.last_message_at is None:
        return "outside WeChat's reply window: the follower has not written to the account yet"
    hours = (now - _aware(activity.last_message_at)).total_seconds() / 3600
    return (f"outside WeChat's {settings.message_window_hours:g}-hour reply window: the follower last wrote "
            f"{hours:.0f} hours ago; waiting for them to write again")


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


class WeChatAdapter:
    kind: ClassVar[str] = "wechat"
    capabilities: ClassVar[Capabilities] = Capabilities(buttons=False, images=True, markdown=False,
                                                        max_text_length=2000, reply_window=True)
    credentials_model: ClassVar[type[BaseModel]] = WeChatCredentials
    settings_model: ClassVar[type[BaseModel]] = WeChatSettings
    secret_fields: ClassVar[frozenset[str]] = frozenset({"app_secret", "token", "encoding_aes_key"})

    def __init__(self, client: TencentApiClient | None = None) -> None:
        self.client = client or wechat_client()
        self.replays = ReplayGuard(valid_for_seconds=2 * CALLBACK_MAX_AGE_SECONDS)

    # ---- inbound -------------------------------------------------------

    def parse_webhook(self, account: AccountRef, request: WebhookRequest) -> WebhookOutcome:
        label = f"WeChat channel account {account.id}"
        creds, query = account.credentials, request.query
        settings = WeChatSettings.model_validate(account.settings)
        missing = [k for k in ("signature", "timestamp", "nonce") if not query.get(k)]
        if missing:
            raise WebhookRejected(400, f"{label}: request without {', '.join(missing)} in the query string")
        if not signature_matches(query["signature"], creds["token"], query["timestamp"], query["nonce"]):
            raise WebhookRejected(403, f"WeChat signature mismatch for channel account {account.id}: the Token "
                                       "saved in the admin panel differs from the one in 服务器配置")
        _check_age(label, query["timestamp"])
        if request.method == "GET":
            if not query.get("echostr"):
                raise WebhookRejected(400, f"{label}: URL verification without echostr")
            return WebhookOutcome(events=[], response=query["echostr"])
        if request.method != "POST":
            raise WebhookRejected(405, f"{label}: WeChat calls the server URL with GET or POST")
        mode = settings.mode or ("safe" if creds.get("encoding_aes_key") else "plain")
        try:
            fields = parse_xml(request.body, what=label)
            encrypted = fields.get("Encrypt")
            if mode == "plain" or not encrypted:
                # The plain signature covers the timestamp and nonce, not the body: one signature, one body.
                try:
                    self.replays.check((str(account.id), query["timestamp"], query["nonce"], query["signature"]),
                                       request.body)
                except ReplayedSignature as exc:
                    raise WebhookRejected(403, f"{label}: {exc}") from None
            if encrypted:
                if not creds.get("encoding_aes_key"):
                    raise WebhookRejected(400, f"{label}: encrypted message but no EncodingAESKey is saved: "
                                               "add it in the admin panel or switch the account to plain mode")
                given = query.get("msg_signature", "")
                if not signature_matches(given, creds["token"], query["timestamp"], query["nonce"], encrypted):
                    raise WebhookRejected(403, f"WeChat msg_signature mismatch for channel account {account.id}: "
                                               "check the Token in the admin panel")
                cipher = MessageCipher(creds["token"], creds["encoding_aes_key"], creds["app_id"])
                fields = parse_xml(cipher.decrypt(encrypted, account_label=label), what=label)
            elif mode in ("safe", "compatible"):
                # Compatible mode sends the message twice, in clear and encrypted; only the encrypted
                # copy is signed, so a body without it is not taken.
                raise WebhookRejected(400, f"{label}: plaintext message but the account is in {mode} mode: "
                                           "WeChat's 消息加解密方式 and the admin panel must agree")
        except CallbackRejected as exc:
            raise WebhookRejected(exc.status, exc.message) from None
        return WebhookOutcome(events=parse_message(fields), response="success")

    # ---- outbound ------------------------------------------------------

    def rate_limits(self, account: AccountRef, recipient: str) -> Sequence[tuple[str, RateLimit]]:
        settings = WeChatSettings.model_validate(account.settings)
        return [(f"wechat:{account.id}", RateLimit(1, 1 / settings.messages_per_second))]

    async def fetch_profile(self, account: AccountRef, external_id: str) -> Profile | None:
        """A follower's WeChat unionid (user/info; WeChat no longer gives nicknames there)."""
        try:
            body = await self.client.call(_app(account), "/cgi-bin/user/info",
                                          params={"openid": external_id, "lang": "zh_CN"})
        except ApiError as exc:
            if exc.errcode in NOT_FOLLOWING:
                return Profile()
            raise
        unionid = str(body.get("unionid") or "")
        details = {k: body[k] for k in ("subscribe_scene", "qr_scene_str", "remark") if body.get(k)}
        return Profile(keys={UNIONID_KEY: unionid} if unionid else {}, details=details)

    async def send(self, account: AccountRef, message: OutboundMessage) -> SendResult:
        settings = WeChatSettings.model_validate(account.settings)
        refusal = window_refusal(message.recipient_activity, settings)
        if refusal is not None:
            raise SendHeld(refusal)
        try:
            await self.client.call(_app(account), "/cgi-bin/message/custom/send", _custom_message(message))
        except ApiError as exc:
            if exc.errcode in (OUTSIDE_WINDOW, OVER_QUOTA):
                raise SendHeld(f"WeChat refused it ({exc.errcode} {exc.errmsg}): outside the reply window or over "
                               "its quota; waiting for the follower to write again", code=exc.errcode) from None
            if exc.errcode in NOT_FOLLOWING:
                raise RecipientUnreachable(f"WeChat: {exc.errcode} {exc.errmsg}", code=exc.errcode) from None
            if exc.errcode in (45009, 45011):
                raise RetryLater(f"WeChat rate limit ({exc.errcode} {exc.errmsg})", retry_after=60.0,
                                 code=exc.errcode) from None
            if exc.errcode in (-1, 40001, 40014, 42001):
                raise TemporaryFailure(f"WeChat: {exc.errcode} {exc.errmsg}", code=exc.errcode) from None
            raise PermanentFailure(f"WeChat rejected the message: {exc.errcode} {exc.errmsg}",
                                   code=exc.errcode) from None
        except ApiUnavailable as exc:
            raise TemporaryFailure(str(exc)) from None
        # The customer-service API returns no message id.
        return SendResult(platform_message_id=f"cs:{message.recipient}:{time.time_ns()}", delivery=Delivery.IN_CHAT)

    async def check_connection(self, api_base: str | None, credentials: dict[str, Any]) -> ConnectionCheck:
        creds = WeChatCredentials.model_validate(credentials)
        if creds.encoding_aes_key:
            try:
                MessageCipher(creds.token, creds.encoding_aes_key, creds.app_id)
            except ValueError as exc:
                raise ConnectionFailed(str(exc)) from None
        try:
            await self.client.access_token(AppKey(api_base or DEFAULT_API_BASE, creds.app_id, creds.app_secret),
                                           force=True)
        except ApiError as exc:
            hint = {40013: "the AppID is wrong", 40125: "the AppSecret is wrong", 40001: "the AppSecret is wrong",
                    40164: "this server's IP is not in the account's IP whitelist"}.get(exc.errcode, exc.errmsg)
            raise ConnectionFailed(f"WeChat refused the credentials ({exc.errcode}): {hint}") from None
        except ApiUnavailable as exc:
            raise ConnectionFailed(str(exc)) from None
        return ConnectionCheck(platform_account_id=creds.app_id, display_name=f"Official Account {creds.app_id}")

    async def activate(self, account: AccountRef, webhook_url: str) -> None:
        """The server URL is entered in the WeChat admin console, which verifies it with a GET."""

    async def close(self) -> None:
        await self.client.close()


def _check_age(label: str, stamp: str) -> None:
    skew = seconds_off(stamp)
    if skew is None or skew > CALLBACK_MAX_AGE_SECONDS:
        raise WebhookRejected(403, f"{label}: request timestamp {stamp} is "
                                   + (f"{skew:.0f} s off the hub's clock" if skew is not None else "not a number")
                                   + ": a replayed request, or the hub's clock is wrong")


def parse_message(f: dict[str, str]) -> list[InboundEvent]:
    """Normalized events for one message or event; kinds we do not handle give none."""
    openid, created, msg_type = f.get("FromUserName", ""), f.get("CreateTime", ""), f.get("MsgType", "")
    if not openid:
        raise WebhookRejected(400, "WeChat message without FromUserName")
    sender = Sender(external_id=openid)
    if msg_type == "event":
        event = f.get("Event", "")
        platform_id = f"event:{openid}:{created}:{event}:{f.get('EventKey', '')}"
        key = f.get("EventKey", "")
        if event == "subscribe":
            scene = key.removeprefix("qrscene_") or None
            return [ReachabilityChanged(platform_message_id=platform_id, sender=sender, thread_id=openid,
                                        reachable=True, reason="followed the account", raw=f,
                                        attachments=[{"type": "followed", "source": scene}])]
        if event == "unsubscribe":
            return [ReachabilityChanged(platform_message_id=platform_id, sender=sender, thread_id=openid,
                                        reachable=False, reason="unfollowed the account", raw=f)]
        if event == "SCAN":
            return [InboundMessage(platform_message_id=platform_id, sender=sender, thread_id=openid,
                                   kind=MessageKind.EVENT, text=None, raw=f,
                                   attachments=[{"type": "scan", "source": key or None}])]
        if event == "CLICK":
            return [InboundMessage(platform_message_id=platform_id, sender=sender, thread_id=openid,
                                   kind=MessageKind.CALLBACK, text=key, raw=f)]
        return []  # VIEW, LOCATION reports, template send results...
    if not f.get("MsgId"):
        raise WebhookRejected(400, "WeChat message without MsgId")
    kind, text, attachments = message_content(msg_type, f)
    return [InboundMessage(platform_message_id=f"msg:{f['MsgId']}", sender=sender, thread_id=openid, kind=kind,
                           text=text, raw=f, attachments=attachments)]


def _app(account: AccountRef) -> AppKey:
    creds = account.credentials
    return AppKey(account.api_base or DEFAULT_API_BASE, creds["app_id"], creds["app_secret"])


def _custom_message(message: OutboundMessage) -> dict[str, Any]:
    """A customer-service message: an article card (one, the most the API sends) for a
    picture or a link, else text. Neither has buttons: options come numbered."""
    if not (message.image_url or message.link_url):
        return {"touser": message.recipient, "msgtype": "text", "text": {"content": numbered_options(message)}}
    article = {"title": shortened(message.title or message.text.split("\n", 1)[0], 64),
               "description": numbered_options(message, with_media=False),
               # Tapping the card opens the link, or the picture itself when there is none.
               "url": message.link_url or message.image_url}
    if message.image_url:
        article["picurl"] = message.image_url
    return {"touser": message.recipient, "msgtype": "news", "news": {"articles": [article]}}
