"""WeCom (企业微信) adapter: one self-built app of one company.

Inbound is the app's callback URL: GET verifies the URL (decrypt `echostr`),
POST carries encrypted XML. Both are checked against `msg_signature` in
constant time, decrypted for this account's corp id only, and parsed with the
hardened parser; the answer is an empty 200 as soon as the events are stored,
well inside WeCom's 5 s deadline (everything else happens in the worker).

Who writes on the callback: app members (reps, `is_staff`) by their userid; external
contacts (customers, an external userid starting "wm" or "wo") only through events
(added, deleted). What customers say to reps comes from the session archive
(`ArchivePoller`, `channels/wecom/archive.py`); WeChat users who write to the
company without adding anyone use 微信客服 (`channels/wecom_kf/`).

Platform retries repeat MsgId (messages) or FromUserName + CreateTime
(events), so the platform message id is built from those: a retry is a no-op.

Outbound: app messages to members (text, or a template card when there are
buttons) paced at 30 per minute per member; to external contacts a
single-chat message task (`add_msg_template`) that the rep confirms, as WeCom
requires; the welcome message with the add event's WelcomeCode, which is only
valid for 20 seconds.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ClassVar

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
    media_lines,
    numbered_options,
    shortened,
    shortened_bytes,
)
from channels.files import OwnMedia
from channels.tencent import (
    AES_KEY_PATTERN,
    UNIONID_KEY,
    CallbackRejected,
    MessageCipher,
    encrypted_part,
    message_content,
    parse_xml,
    seconds_off,
    signature_matches,
)
from channels.tencent_client import RATE_LIMITED, SYSTEM_BUSY, ApiError, ApiUnavailable, AppKey, TencentApiClient
from channels.wecom.archive import ArchiveReader, ArchiveUnavailable, FinanceSdk
from channels.wecom.client import DEFAULT_API_BASE, app_key, wecom_client
from channels.wecom.operations import CustomerOperations
from channels.wecom.pictures import Pictures
from crm_core.models import Delivery, MessageKind
from crm_core.ports import (
    AccountRef,
    Confirmation,
    InboundEvent,
    InboundMessage,
    OutboundMessage,
    PermanentFailure,
    Profile,
    RateLimit,
    ReachabilityChanged,
    RecipientUnreachable,
    RetryLater,
    Sender,
    SendResult,
    TemporaryFailure,
)
from crm_core.waiting import wait_any

log = logging.getLogger(__name__)

WELCOME_WINDOW_SECONDS = 20
ARCHIVE_CURSOR = "archive_seq"
AGREEMENT_TTL = 600.0  # how long a customer's archiving agreement is trusted before asking again
# A callback signed longer ago than this is refused: WeCom retries within
# seconds, so an old signature means a captured request replayed (or a clock off).
CALLBACK_MAX_AGE_SECONDS = 600
# WeCom's external userids; members' userids are the company's own choice.
EXTERNAL_ID = re.compile(r"^w[mo][A-Za-z0-9_-]{6,}$")
UNREACHABLE_CODES = frozenset({40003, 81013, 84061})  # invalid userid, all recipients invalid, not a contact
MASS_PER_MONTH = 4  # 企业群发 (add_msg_template) a customer may receive in a calendar month
TAGS_CHANGED = "corp_tags_changed"  # cursor: when WeCom last said the corp's tag list changed
CUSTOMER_TAGS_CHANGED = "tags_of:"  # cursor + "external|userid": a rep edited that customer in WeCom
GROUP_CHANGED = "group_changed:"  # cursor + chat id: when WeCom last said that customer group changed
NO_SUCH_CONTACT = frozenset({40096, 84061})  # invalid external userid, not an external contact of the app's reps
# get_groupmsg_send_result's statuses of a task that will not reach the customer.
TASK_NOT_SENT = {2: "the customer is no longer a contact of the rep, so the task was not sent",
                 3: "the customer already received the mass messages WeCom allows, so the task was not sent"}


class WeComCredentials(BaseModel):
    corp_id: str = Field(pattern=r"^w[wx][0-9a-f]{16}$", description="企业ID, like ww1234567890abcdef")
    agent_id: int = Field(ge=1, description="The self-built app's AgentId")
    secret: str = Field(min_length=16, max_length=128, description="The app's Secret")
    token: str = Field(pattern=r"^[A-Za-z0-9]{3,32}$", description="Token from the app's 接收消息 settings")
    encoding_aes_key: str = Field(pattern=AES_KEY_PATTERN, description="EncodingAESKey from the same page")
    # 会话内容存档 (session archive): its Secret and the company's private keys by version.
    archive_secret: str | None = Field(default=None, min_length=16, max_length=128,
                                       description="会话内容存档 Secret (管理工具 → 会话内容存档)")
    archive_private_keys: dict[str, str] = Field(
        default_factory=dict, description="Private keys (PEM) by 消息加密公钥 version, e.g. {\"1\": \"-----BEGIN...\"}")


class WeComSettings(AccountSettings):
    welcome_message_zh: str = Field(default="您好，很高兴为您服务！有任何问题请直接留言。", max_length=4000)
    welcome_message_en: str = Field(default="Hello, glad to help! Just leave us a message with any question.",
                                    max_length=4000)
    # Who bot messages to external contacts are sent as when no rep owns the chat.
    default_sender_userid: str | None = Field(default=None, max_length=64)
    member_messages_per_minute: int = Field(default=30, ge=1, le=30)
    app_messages_per_second: float = Field(default=20.0, gt=0, le=200)
    # Where Tencent's finance SDK (libWeWorkFinanceSdk_C.so) is on this server; empty: no archive.
    archive_sdk_path: str | None = Field(default=None, max_length=1000)
    archive_poll_seconds: float = Field(default=10.0, ge=1.0, le=3600.0)


def is_external(userid: str) -> bool:
    return bool(EXTERNAL_ID.match(userid))


class WeComAdapter(CustomerOperations):
    kind: ClassVar[str] = "wecom"
    # reply_window: sends carry the recipient's activity, for WeCom's 4 company mass messages a month.
    capabilities: ClassVar[Capabilities] = Capabilities(buttons=True, images=False, markdown=True,
                                                        max_text_length=2048, reply_window=True)
    credentials_model: ClassVar[type[BaseModel]] = WeComCredentials
    settings_model: ClassVar[type[BaseModel]] = WeComSettings
    secret_fields: ClassVar[frozenset[str]] = frozenset({"secret", "token", "encoding_aes_key", "archive_secret",
                                                        "archive_private_keys"})

    def __init__(self, client: TencentApiClient | None = None, *, allow_private: bool = False,
                 own_media: OwnMedia | None = None) -> None:
        self.client = client or wecom_client()
        self.ciphers = CipherCache()
        # A welcome's picture, uploaded; on private networks only where the hub allows it (the demo, tests).
        self.pictures = Pictures(self.client, allow_private=allow_private, own_media=own_media)

    # ---- the session archive ------------------------------------------

    def wants_polling(self, account: AccountRef) -> bool:
        """The archive is read when its SDK, Secret and a private key are all configured."""
        settings = WeComSettings.model_validate(account.settings)
        creds = account.credentials
        return bool(settings.archive_sdk_path and creds.get("archive_secret") and creds.get("archive_private_keys"))

    def notices(self, account: AccountRef) -> list[str]:
        """What an operator should know about this account's setup (shown on the channels page)."""
        if self.wants_polling(account):
            return []
        return ["会话存档 (session archive) is not configured: what customers write to reps in 1:1 chats and "
                "groups does not reach the hub (WeCom sends it nowhere else). Set archive_sdk_path, archive_secret "
                "and archive_private_keys (README: The session archive) · "
                "未配置会话存档：客户与销售的单聊、群聊内容不会进入系统"]

    def make_poller(self, account: AccountRef, sink: InboundSink,
                    load_cursor: Callable[[str], Awaitable[str | None]]) -> ArchivePoller:
        return ArchivePoller(account, sink, load_cursor, self.client)

    # ---- inbound -------------------------------------------------------

    def parse_webhook(self, account: AccountRef, request: WebhookRequest) -> WebhookOutcome:
        echo, fields = open_callback(f"WeCom channel account {account.id}", account.credentials,
                                     self.ciphers.get(account.credentials), request)
        if echo is not None:
            return WebhookOutcome(events=[], response=echo)
        if fields.get("Event") == "change_external_tag":  # the corp's tag list changed: read it again soon
            return WebhookOutcome(events=[], response="", cursor=(TAGS_CHANGED, str(time.time())))
        if fields.get("Event") == "change_external_contact" and fields.get("ChangeType") == "edit_external_contact" \
                and fields.get("ExternalUserID"):  # a rep edited the customer (tags, remark): read them soon
            return WebhookOutcome(events=[], response="", cursor=(
                CUSTOMER_TAGS_CHANGED + f"{fields['ExternalUserID']}|{fields.get('UserID', '')}", str(time.time())))
        if fields.get("Event") == "change_external_chat" and fields.get("ChatId"):  # read the group again soon
            return WebhookOutcome(events=[], response="", cursor=(GROUP_CHANGED + fields["ChatId"], str(time.time())))
        return WebhookOutcome(events=parse_callback(fields), response="")

    # ---- outbound ------------------------------------------------------

    def rate_limits(self, account: AccountRef, recipient: str) -> Sequence[tuple[str, RateLimit]]:
        settings = WeComSettings.model_validate(account.settings)
        buckets = [(f"wecom:{account.id}", RateLimit(1, 1 / settings.app_messages_per_second))]
        if not is_external(recipient):
            buckets.append((f"wecom:{account.id}:{recipient}", RateLimit(settings.member_messages_per_minute, 60.0)))
        return buckets

    async def send(self, account: AccountRef, message: OutboundMessage) -> SendResult:
        app = app_key(account)
        options = message.options
        try:
            if options.get("welcome_code"):
                deadline = float(options.get("welcome_deadline") or 0)
                if deadline and time.time() > deadline:
                    raise PermanentFailure("the WeCom welcome code expired (valid 20 s after the customer added "
                                           "the rep); the welcome message was not sent")
                welcome: dict[str, Any] = {"welcome_code": options["welcome_code"], "text": {"content": message.text}}
                attachment = await self._welcome_attachment(app, message)
                if attachment:
                    welcome["attachments"] = [attachment]
                await self.client.call(app, "/cgi-bin/externalcontact/send_welcome_msg", welcome)
                return SendResult(platform_message_id=f"welcome:{options['welcome_code']}", delivery=Delivery.IN_CHAT)
            if is_external(message.recipient):
                settings = WeComSettings.model_validate(account.settings)
                sender = options.get("sender") or settings.default_sender_userid
                if not sender:
                    raise PermanentFailure(
                        f"no rep to send as: WeCom sends to external contact {message.recipient} only as one of "
                        "the company's members; assign the conversation or set a default sender for the account")
                activity = message.recipient_activity
                if activity is not None and activity.confirmed_this_month >= MASS_PER_MONTH:
                    raise PermanentFailure(
                        f"not sent: WeCom lets the company send a customer {MASS_PER_MONTH} mass messages (群发) a "
                        f"calendar month and this month's are used; answer them in WeCom's chat instead", code="cap")
                body = await self.client.call(app, "/cgi-bin/externalcontact/add_msg_template", {
                    "chat_type": "single", "external_userid": [message.recipient], "sender": sender,
                    "text": {"content": _as_text(message)}})
                if message.recipient in (body.get("fail_list") or []):
                    raise RecipientUnreachable(f"WeCom: {message.recipient} is not a contact of {sender}")
                # A 群发 task: it reaches the customer once the rep confirms it in WeCom.
                return SendResult(platform_message_id=f"task:{body.get('msgid', '')}",
                                  delivery=Delivery.AWAITING_CONFIRMATION)
            body = await self.client.call(app, "/cgi-bin/message/send", _app_message(account, message))
            if body.get("invaliduser"):
                raise RecipientUnreachable(f"WeCom: {body['invaliduser']} is not a member who can use the app")
            return SendResult(platform_message_id=str(body.get("msgid", "")), delivery=Delivery.IN_CHAT)
        except ApiError as exc:
            raise _send_error(exc, account) from None
        except ApiUnavailable as exc:
            raise TemporaryFailure(str(exc)) from None

    async def confirmation(self, account: AccountRef, platform_message_id: str, recipient: str,
                           options: dict[str, Any]) -> Confirmation | None:
        """Whether the rep confirmed a 群发 task in WeCom and it reached the customer
        (externalcontact/get_groupmsg_send_result for the task's sender)."""
        sender = options.get("sender") or WeComSettings.model_validate(account.settings).default_sender_userid
        if not platform_message_id.startswith("task:") or not sender:
            return None
        body = await self.client.call(app_key(account), "/cgi-bin/externalcontact/get_groupmsg_send_result", {
            "msgid": platform_message_id.removeprefix("task:"), "userid": sender, "limit": 1000})
        entry = next((e for e in body.get("send_list") or [] if e.get("external_userid") == recipient), None)
        status = entry.get("status") if entry else None
        if status == 1:
            return Confirmation(delivered=True)
        if status in TASK_NOT_SENT:
            return Confirmation(delivered=False, reason=f"WeCom: {TASK_NOT_SENT[status]}")
        return Confirmation(delivered=None)  # 0: the rep has not confirmed it yet

    async def fetch_profile(self, account: AccountRef, external_id: str) -> Profile | None:
        """An external contact's name and WeChat unionid (externalcontact/get)."""
        if not is_external(external_id):
            return None  # app members are colleagues
        try:
            body = await self.client.call(app_key(account), "/cgi-bin/externalcontact/get",
                                          params={"external_userid": external_id})
        except ApiError as exc:
            if exc.errcode in NO_SUCH_CONTACT:
                return Profile()  # gone again, or never a contact of this app's reps: nothing to learn
            raise
        contact = body.get("external_contact") or {}
        unionid = str(contact.get("unionid") or "")
        details = {k: contact[k] for k in ("corp_name", "corp_full_name", "position") if contact.get(k)}
        return Profile(display_name=contact.get("name") or None,
                       keys={UNIONID_KEY: unionid} if unionid else {}, details=details)

    async def check_connection(self, api_base: str | None, credentials: dict[str, Any]) -> ConnectionCheck:
        creds = WeComCredentials.model_validate(credentials)
        try:
            MessageCipher(creds.token, creds.encoding_aes_key, creds.corp_id)
        except ValueError as exc:
            raise ConnectionFailed(str(exc)) from None
        app = AppKey(api_base or DEFAULT_API_BASE, creds.corp_id, creds.secret)
        try:
            await self.client.access_token(app, force=True)
        except ApiError as exc:
            hint = {40013: "the corp id is wrong", 40001: "the app Secret is wrong",
                    40091: "the app Secret is wrong"}.get(exc.errcode, exc.errmsg)
            raise ConnectionFailed(f"WeCom refused the credentials ({exc.errcode}): {hint}") from None
        except ApiUnavailable as exc:
            raise ConnectionFailed(str(exc)) from None
        return ConnectionCheck(platform_account_id=f"{creds.corp_id}:{creds.agent_id}",
                               display_name=f"WeCom app {creds.agent_id}")

    async def activate(self, account: AccountRef, webhook_url: str) -> None:
        """WeCom's callback URL is set in its admin console (it verifies it with a GET); nothing to call."""

    async def _welcome_attachment(self, app: AppKey, message: OutboundMessage) -> dict[str, Any] | None:
        """A contact way's welcome beside its words: a mini-program card (its cover uploaded), a link
        card (the picture as its cover), or the picture alone (uploaded)."""
        card = message.options.get("miniprogram")
        if card:
            if not message.image_url:
                raise PermanentFailure("a mini-program card needs a cover picture: set the welcome's picture address")
            return {"msgtype": "miniprogram", "miniprogram": {
                "title": shortened_bytes(card.get("title") or message.text.partition("\n")[0], 64),
                "pic_media_id": await self.pictures.media_id(app, message.image_url),
                "appid": card["appid"], "page": card["page"]}}
        if message.link_url:
            title = (message.title or message.text).partition("\n")[0]
            return {"msgtype": "link", "link": {
                "title": shortened_bytes(title, 128) or message.link_url[:128], "url": message.link_url,
                **({"picurl": message.image_url} if message.image_url else {})}}
        if message.image_url:
            return {"msgtype": "image", "image": {"media_id": await self.pictures.media_id(app, message.image_url)}}
        return None

    async def close(self) -> None:
        await self.pictures.close()
        await self.client.close()


def open_callback(label: str, creds: dict[str, Any], cipher: MessageCipher,
                  request: WebhookRequest) -> tuple[str | None, dict[str, str]]:
    """A WeCom callback verified and decrypted: (the URL check's echo, {}) for the console's GET,
    (None, the fields) for an event. The signature covers the ciphertext alone, so it is checked
    before any parser sees the document; a callback for another corp is refused."""
    query = request.query
    missing = [k for k in ("msg_signature", "timestamp", "nonce") if not query.get(k)]
    if missing:
        raise WebhookRejected(400, f"{label}: callback without {', '.join(missing)} in the query string")
    try:
        if request.method == "GET":
            echo = query.get("echostr", "")
            if not echo:
                raise WebhookRejected(400, f"{label}: URL verification without echostr")
            _check_signature(label, creds, query, echo)
            return cipher.decrypt(echo, account_label=label), {}
        if request.method != "POST":
            raise WebhookRejected(405, f"{label}: WeCom callbacks are GET (URL check) or POST")
        encrypted = encrypted_part(request.body, what=label)
        _check_signature(label, creds, query, encrypted)
        parse_xml(request.body, what=label)  # the envelope must still be a well-formed <xml>
        fields = parse_xml(cipher.decrypt(encrypted, account_label=label), what=label)
    except CallbackRejected as exc:
        raise WebhookRejected(exc.status, exc.message) from None
    if fields.get("ToUserName") not in (None, "", creds["corp_id"]):
        raise WebhookRejected(403, f"{label}: callback addressed to corp {fields.get('ToUserName')}, "
                                   f"not {creds['corp_id']}")
    return None, fields


def _check_signature(label: str, creds: dict[str, Any], query: Any, encrypted: str) -> None:
    if not signature_matches(query["msg_signature"], creds["token"], query["timestamp"], query["nonce"], encrypted):
        raise WebhookRejected(403, f"WeCom signature mismatch for {label.split(' ', 1)[1]}: the Token saved "
                                   "in the admin panel's channel page differs from the app's 接收消息 Token")
    stamp = query["timestamp"]
    skew = seconds_off(stamp)
    if skew is None or skew > CALLBACK_MAX_AGE_SECONDS:
        raise WebhookRejected(403, f"{label}: callback timestamp {stamp} is "
                                   + (f"{skew:.0f} s off the hub's clock" if skew is not None else "not a number")
                                   + ": a replayed request, or the hub's clock is wrong")


class CipherCache:
    """One callback cipher per Token, EncodingAESKey and corp (a WeCom app, a 微信客服 app)."""

    def __init__(self) -> None:
        self._ciphers: dict[tuple[str, str, str], MessageCipher] = {}

    def get(self, creds: dict[str, Any]) -> MessageCipher:
        key = (creds["token"], creds["encoding_aes_key"], creds["corp_id"])
        cipher = self._ciphers.get(key)
        if cipher is None:
            cipher = self._ciphers[key] = MessageCipher(*key)
        return cipher


def _as_text(message: OutboundMessage) -> str:
    """Cards and buttons as text, for external contacts (no app cards in WeChat)."""
    return f"{message.title}\n{numbered_options(message)}" if message.title else numbered_options(message)


def _app_message(account: AccountRef, message: OutboundMessage) -> dict[str, Any]:
    """Text; a markdown message for a titled notice; a button card when there are buttons."""
    agent_id = account.credentials["agent_id"]
    base = {"touser": message.recipient, "agentid": agent_id}
    if not message.buttons and message.title:
        return {**base, "msgtype": "markdown",
                "markdown": {"content": f"**{message.title}**\n{numbered_options(message)}"}}
    if not message.buttons:
        return {**base, "msgtype": "text", "text": {"content": _as_text(message)}}
    card = {
        "card_type": "button_interaction",
        "main_title": {"title": shortened(message.title or message.text.split("\n", 1)[0], 26)},
        "sub_title_text": "\n".join([message.text, *media_lines(message)])[:1000],
        # WeCom shows at most 6 buttons; keys come back in template_card_event.
        "button_list": [{"text": shortened(b.label, 10), "style": 1 if n == 0 else 2, "key": b.data[:1024]}
                        for n, b in enumerate(message.buttons[:6])],
        "task_id": uuid.uuid4().hex,
    }
    return {**base, "msgtype": "template_card", "template_card": card}


def _send_error(exc: ApiError, account: AccountRef) -> Exception:
    if exc.errcode in UNREACHABLE_CODES:
        return RecipientUnreachable(f"WeCom: {exc.errcode} {exc.errmsg}", code=exc.errcode)
    return common_send_error(exc, account) or PermanentFailure(f"WeCom rejected the message: {exc.errcode} "
                                                               f"{exc.errmsg}", code=exc.errcode)


def common_send_error(exc: ApiError, account: AccountRef) -> Exception | None:
    """What any WeCom API's refusal of a send means when it is not about the message: its rate
    limit, a busy moment, the account's credentials; None otherwise."""
    if exc.errcode in RATE_LIMITED:
        return RetryLater(f"WeCom rate limit ({exc.errcode} {exc.errmsg})", retry_after=60.0, code=exc.errcode)
    if exc.errcode == SYSTEM_BUSY:
        return TemporaryFailure(f"WeCom busy: {exc.errmsg}", code=exc.errcode)
    if exc.errcode in (40001, 40014, 42001, 40013, 40091):
        return TemporaryFailure(f"WeCom refused the credentials of channel account {account.id} ({exc.errcode} "
                                f"{exc.errmsg}): check the corp id and Secret in the admin panel", code=exc.errcode)
    return None


def parse_callback(fields: dict[str, str]) -> list[InboundEvent]:
    """Normalized events for one decrypted callback; kinds we do not handle give none."""
    msg_type = fields.get("MsgType", "")
    from_user = fields.get("FromUserName", "")
    created = fields.get("CreateTime", "")
    if msg_type == "event":
        return _parse_event(fields, from_user, created)
    if not from_user or not fields.get("MsgId"):
        raise WebhookRejected(400, "WeCom message without FromUserName or MsgId")
    if is_external(from_user):
        # WeCom posts only members' messages to an app; a customer's words come from the session
        # archive (or 微信客服). Such a callback is nobody's message: acknowledged, not stored.
        log.warning("WeCom: a message from external contact %s on the app callback was ignored", from_user)
        return []
    sender = Sender(external_id=from_user, is_staff=True)
    kind, text, attachments = message_content(msg_type, fields)
    return [InboundMessage(platform_message_id=f"msg:{fields['MsgId']}", sender=sender, thread_id=from_user,
                           kind=kind, text=text, raw=fields, attachments=attachments)]


def _parse_event(f: dict[str, str], from_user: str, created: str) -> list[InboundEvent]:
    event = f.get("Event", "")
    if event == "change_external_contact":
        change = f.get("ChangeType", "")
        customer, rep = f.get("ExternalUserID", ""), f.get("UserID", "")
        if not customer:
            return []
        # FromUserName + CreateTime identify an event; the change type and the
        # two parties make events of the same second distinct.
        platform_id = f"event:{from_user}:{created}:{change}:{customer}:{rep}"
        sender = Sender(external_id=customer)
        if change in ("add_external_contact", "add_half_external_contact"):
            added = {"type": "contact_added", "rep": rep, "source": f.get("State") or None}
            if f.get("WelcomeCode"):
                added["welcome_code"] = f["WelcomeCode"]
                added["welcome_deadline"] = (int(created) if seconds_off(created) is not None else int(time.time())) \
                    + WELCOME_WINDOW_SECONDS
            return [ReachabilityChanged(platform_message_id=platform_id, sender=sender, thread_id=customer,
                                        reachable=True, reason=f"added {rep} on WeCom", raw=f,
                                        attachments=[added])]
        if change == "del_follow_user":
            return [ReachabilityChanged(platform_message_id=platform_id, sender=sender, thread_id=customer,
                                        reachable=False, reason=f"deleted {rep} on WeCom", raw=f,
                                        attachments=[{"type": "customer_left", "rep": rep}])]
        if change == "del_external_contact":
            return [ReachabilityChanged(platform_message_id=platform_id, sender=sender, thread_id=customer,
                                        reachable=False, reason=f"removed by {rep} on WeCom", raw=f,
                                        attachments=[{"type": "rep_removed_customer", "rep": rep}])]
        return []
    if event == "template_card_event":
        key = f.get("EventKey", "")
        platform_id = f"event:{from_user}:{created}:card:{f.get('TaskId', '')}:{key}"
        return [InboundMessage(platform_message_id=platform_id, sender=Sender(external_id=from_user, is_staff=True),
                               thread_id=from_user, kind=MessageKind.CALLBACK, text=key, raw=f,
                               attachments=[{"type": "card_click", "task_id": f.get("TaskId")}])]
    return []  # enter_agent, menu views...: acknowledged, nothing to store


class ArchivePoller:
    """Reads the session archive from the committed `seq` on: each batch's messages are stored in
    the same transaction as the seq after them, so a restart neither loses nor repeats one.

    A customer who refused archiving (msgaudit/check_single_agree: Disagree, or a `disagree`
    entry) keeps their words out of the hub: nothing of their 1:1 chats, nor of what they say in
    groups, is stored; the answer is kept for `AGREEMENT_TTL` seconds."""

    def __init__(self, account: AccountRef, sink: InboundSink,
                 load_cursor: Callable[[str], Awaitable[str | None]], client: TencentApiClient) -> None:
        self.account, self.sink, self.load_cursor, self.client = account, sink, load_cursor, client
        self.settings = WeComSettings.model_validate(account.settings)
        self.reader: ArchiveReader | None = None
        self.agreed: dict[tuple[str, str], tuple[bool, float]] = {}  # (rep, customer) -> agreed, when asked

    def _open(self) -> ArchiveReader:
        if self.reader is None:
            creds = self.account.credentials
            sdk = FinanceSdk(str(self.settings.archive_sdk_path), creds["corp_id"], creds["archive_secret"])
            self.reader = ArchiveReader(sdk, creds["archive_private_keys"])
        return self.reader

    async def run(self, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                try:
                    while await self.pull_once():
                        pass
                except ArchiveUnavailable as exc:
                    log.warning("WeCom account %s: session archive: %s", self.account.id, exc)
                except (ApiError, ApiUnavailable) as exc:
                    log.warning("WeCom account %s: archiving agreements not readable now (%s); the batch waits",
                                self.account.id, exc)
                await wait_any(stop, timeout=self.settings.archive_poll_seconds)
        finally:
            if self.reader is not None:
                self.reader.sdk.close()

    async def pull_once(self, limit: int = 1000) -> int:
        """One batch from the committed seq; how many entries it held (0: nothing new)."""
        seq = int(await self.load_cursor(ARCHIVE_CURSOR) or 0)
        reader = await asyncio.to_thread(self._open)
        entries = await asyncio.to_thread(reader.read, seq, limit)
        if not entries:
            return 0
        refused = await self._refused([entry.message for entry in entries])
        events = [event for entry in entries for event in archived_events(entry.message, refused)]
        await self.sink(self.account.id, events, (ARCHIVE_CURSOR, str(max(e.seq for e in entries))))
        return len(entries)

    async def _refused(self, messages: list[dict[str, Any]]) -> set[str]:
        """The customers of this batch who refused archiving."""
        now = time.monotonic()
        for message in messages:  # the archive's own record of a customer's answer is the newest word
            answer = message.get("msgtype")
            if answer in ("agree", "disagree"):
                customer = str((message.get(answer) or {}).get("userid") or message.get("from") or "")
                for rep in message.get("tolist") or []:
                    self.agreed[(str(rep), customer)] = (answer == "agree", now)
        pairs = {pair for message in messages if (pair := _one_to_one(message)) is not None}
        unknown = [pair for pair in pairs if now - self.agreed.get(pair, (True, -1e9))[1] > AGREEMENT_TTL]
        # msgaudit/* answers only a token of the archive's own Secret.
        app = AppKey(self.account.api_base or DEFAULT_API_BASE, self.account.credentials["corp_id"],
                     self.account.credentials["archive_secret"])
        for start in range(0, len(unknown), 100):
            body = await self.client.call(app, "/cgi-bin/msgaudit/check_single_agree", {"info": [
                {"userid": rep, "exteranalopenid": customer} for rep, customer in unknown[start:start + 100]]})
            for answer in body.get("agreeinfo") or []:
                pair = (str(answer.get("userid")), str(answer.get("exteranalopenid")))
                self.agreed[pair] = (answer.get("agree_status") != "Disagree", now)
        return {customer for (_, customer), (agreed, _) in self.agreed.items() if not agreed}


def _one_to_one(message: dict[str, Any]) -> tuple[str, str] | None:
    """(rep, customer) of a 1:1 chat entry between a member and an external contact."""
    sender, targets = str(message.get("from") or ""), message.get("tolist") or []
    if message.get("roomid") or len(targets) != 1 or message.get("action") not in ("send", "recall"):
        return None
    other = str(targets[0])
    if is_external(sender) != is_external(other):
        return (other, sender) if is_external(sender) else (sender, other)
    return None


def archived_events(message: dict[str, Any], refused: set[str] = frozenset()) -> list[InboundEvent]:
    """An archived chat entry as a message of the customer's conversation with the company: a
    customer's words in their 1:1 chat with a rep, a rep's words to them (the company's, by that
    rep), words in a customer group (the group's conversation), a recall. Customers who refused
    archiving, chats between colleagues and entries the hub does not use give none."""
    sender, room = str(message.get("from") or ""), str(message.get("roomid") or "")
    pair = _one_to_one(message)
    if room:
        thread, customer = f"room:{room}", sender if is_external(sender) else ""
        if sender in refused:
            return []
    elif pair is not None:
        thread = customer = pair[1]
        if customer in refused:
            return []
    else:
        return []
    msgid = str(message.get("msgid") or "")
    action = message.get("action")
    who = Sender(external_id=customer or sender, is_staff=not customer)
    archived = {"type": "archived", "rep": pair[0] if pair else None, "room": room or None}
    if action == "recall":
        earlier = str((message.get("revoke") or {}).get("pre_msgid") or "")
        return [InboundMessage(platform_message_id=f"archive:{msgid}", sender=who, thread_id=thread,
                               kind=MessageKind.EVENT, text=None, raw=message,
                               attachments=[archived, {"type": "recalled",
                                                       "platform_message_id": f"archive:{earlier}"}])] \
            if earlier else []
    if action != "send":
        return []
    kind, text = {"text": (MessageKind.TEXT, (message.get("text") or {}).get("content")),
                  "image": (MessageKind.IMAGE, None), "voice": (MessageKind.VOICE, None),
                  "file": (MessageKind.FILE, (message.get("file") or {}).get("filename"))}.get(
        str(message.get("msgtype")), (None, None))
    if kind is None:
        return []
    staff = None if is_external(sender) else sender
    attachments = [archived, *([{"type": "by_staff", "staff": staff}] if staff else [])]
    if kind != MessageKind.TEXT:  # its content stays in WeCom (GetMediaData reads it on demand)
        attachments.append({"type": str(message.get("msgtype")),
                            "sdkfileid": (message.get(str(message.get("msgtype"))) or {}).get("sdkfileid")})
    return [InboundMessage(platform_message_id=f"archive:{msgid}", sender=who, thread_id=thread, kind=kind,
                           text=text, raw=message, attachments=attachments, staff_author=staff)]
