"""Telegram adapter: verify and parse Bot API updates, send through aiogram.

Webhook requests must carry the secret token we registered with setWebhook
(`X-Telegram-Bot-Api-Secret-Token`). The platform message id is the update_id,
which Telegram keeps across its own redeliveries, so retries dedupe.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from urllib.parse import urlsplit

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import PRODUCTION, TelegramAPIServer
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.types import BufferedInputFile, InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from pydantic import BaseModel, Field, ValidationError

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
    shortened,
)
from channels.files import FileFetcher, file_name
from crm_core.models import Delivery, MessageKind
from crm_core.ports import (
    AccountRef,
    InboundEvent,
    InboundMessage,
    OutboundMessage,
    PermanentFailure,
    RateLimit,
    ReachabilityChanged,
    RecipientUnreachable,
    RetryLater,
    Sender,
    SendResult,
    TemporaryFailure,
)

if TYPE_CHECKING:
    from channels.telegram.polling import TelegramPoller

log = logging.getLogger(__name__)

SECRET_HEADER = "x-telegram-bot-api-secret-token"
CAPTION_LIMIT = 1024  # characters of a photo caption
MAX_UPLOAD_BYTES = 50 * 2**20  # what a bot may upload
ALLOWED_UPDATES = ["message", "edited_message", "callback_query", "my_chat_member"]
BOT_TOKEN_PATTERN = r"^\d{3,20}:[A-Za-z0-9_-]{20,}$"


class TelegramCredentials(BaseModel):
    bot_token: str = Field(pattern=BOT_TOKEN_PATTERN,
                           description="The token @BotFather gave you, like 123456789:AAE...")
    # Telegram allows 1-256 characters of A-Z, a-z, 0-9, _ and -.
    webhook_secret: str = Field(default_factory=lambda: secrets.token_urlsafe(32), pattern=r"^[A-Za-z0-9_-]{16,256}$")


class TelegramSettings(AccountSettings):
    mode: Literal["webhook", "polling"] = "webhook"
    # Telegram's documented limits; raise only for a bot with a paid higher limit.
    messages_per_second: float = Field(default=30.0, gt=0, le=1000)
    per_chat_per_second: float = Field(default=1.0, gt=0, le=100)


def _markup(message: OutboundMessage) -> InlineKeyboardMarkup | None:
    rows = [[InlineKeyboardButton(text=b.label, callback_data=b.data[:64])] for b in message.buttons]
    if message.link_url:
        rows.append([InlineKeyboardButton(text=shortened(message.title or _host(message.link_url), 64),
                                          url=message.link_url)])
    return InlineKeyboardMarkup(inline_keyboard=rows) if rows else None


async def _send(bot: Bot, message: OutboundMessage) -> Message:
    """Words, with the picture as a photo whose caption they are, the buttons under them."""
    if message.image_url and len(message.text) <= CAPTION_LIMIT:
        return await bot.send_photo(chat_id=int(message.recipient), photo=message.image_url,
                                    caption=message.text, reply_markup=_markup(message), request_timeout=20)
    # A caption longer than Telegram allows: the text, whose link preview shows the picture.
    text = f"{message.text}\n{message.image_url}" if message.image_url else message.text
    return await bot.send_message(chat_id=int(message.recipient), text=text, reply_markup=_markup(message),
                                  request_timeout=20)


def _bot_api_base(api_base: str | None) -> str:
    return (api_base or "https://api.telegram.org").rstrip("/")


class TelegramAdapter:
    kind: ClassVar[str] = "telegram"
    capabilities: ClassVar[Capabilities] = Capabilities(buttons=True, images=True, markdown=True,
                                                        max_text_length=4096)
    credentials_model: ClassVar[type[BaseModel]] = TelegramCredentials
    settings_model: ClassVar[type[BaseModel]] = TelegramSettings
    secret_fields: ClassVar[frozenset[str]] = frozenset({"bot_token", "webhook_secret"})

    def __init__(self, *, allow_private: bool = False) -> None:
        self._bots: dict[int, tuple[tuple[str, str], Bot]] = {}
        self.files = FileFetcher(allow_private=allow_private)

    # ---- inbound -------------------------------------------------------

    def parse_webhook(self, account: AccountRef, request: WebhookRequest) -> WebhookOutcome:
        if request.method != "POST":
            raise WebhookRejected(405, "Telegram webhooks are POST requests")
        expected = account.credentials.get("webhook_secret", "")
        given = request.headers.get(SECRET_HEADER, "")
        if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
            raise WebhookRejected(
                403,
                f"Telegram secret token mismatch for channel account {account.id}: the update was not sent by "
                "the webhook this hub registered. Re-save the account in the admin panel to register it again.",
            )
        raw = load_json_object(request.body, f"Telegram update for channel account {account.id}")
        if not isinstance(raw.get("update_id"), int):
            raise WebhookRejected(400, "not a Telegram update: update_id missing or not an integer")
        handled = [key for key in ALLOWED_UPDATES if key in raw]
        if not handled:
            # Another update type (polls, reactions...): acknowledged and ignored, so
            # Telegram does not redeliver it, and never rejected over its shape.
            return WebhookOutcome(events=[])
        try:
            update = Update.model_validate({"update_id": raw["update_id"], handled[0]: raw[handled[0]]})
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise WebhookRejected(400, f"not a Telegram update: {where}: {first['msg']}") from None
        events = parse_update(update, raw)
        response = None
        if update.callback_query is not None:
            # Answer the button press in the webhook response: no extra API call.
            response = {"method": "answerCallbackQuery", "callback_query_id": update.callback_query.id}
        return WebhookOutcome(events=events, response=response)

    # ---- outbound ------------------------------------------------------

    def rate_limits(self, account: AccountRef, recipient: str) -> Sequence[tuple[str, RateLimit]]:
        settings = TelegramSettings.model_validate(account.settings)
        per_chat = RateLimit(20, 60.0) if recipient.startswith("-") else RateLimit(1, 1 / settings.per_chat_per_second)
        return [
            (f"telegram:{account.id}", RateLimit(1, 1 / settings.messages_per_second)),
            (f"telegram:{account.id}:{recipient}", per_chat),
        ]

    async def send(self, account: AccountRef, message: OutboundMessage) -> SendResult:
        bot = self.bot(account)
        try:
            sent = await (self._send_file(bot, message) if message.file_url else _send(bot, message))
        except TelegramRetryAfter as exc:
            raise RetryLater(f"Telegram flood control: {exc.message}", retry_after=float(exc.retry_after),
                             code=429) from None
        except TelegramForbiddenError as exc:
            raise RecipientUnreachable(f"Telegram: {exc.message}", code=403) from None
        except TelegramBadRequest as exc:
            if "chat not found" in exc.message.lower():
                raise RecipientUnreachable(f"Telegram: {exc.message} (the user never started the bot)",
                                           code=400) from None
            raise PermanentFailure(f"Telegram rejected the message: {exc.message}", code=400) from None
        except TelegramUnauthorizedError:
            raise TemporaryFailure(
                f"Telegram rejected the bot token of channel account {account.id} (401): update the token in "
                "the admin panel; queued messages are retried", code=401) from None
        except (TelegramNetworkError, TelegramServerError) as exc:
            raise TemporaryFailure(f"Telegram unavailable: {exc}") from None
        except TelegramAPIError as exc:
            raise TemporaryFailure(f"Telegram error: {exc}") from None
        except ClientDecodeError as exc:
            raise TemporaryFailure(f"not a Telegram Bot API answer from {_bot_api_base(account.api_base)}: "
                                   f"{str(exc.data)[:200]}") from None
        return SendResult(platform_message_id=f"{sent.chat.id}:{sent.message_id}", delivery=Delivery.IN_CHAT)

    async def _send_file(self, bot: Bot, message: OutboundMessage) -> Message:
        """A document as a file Telegram shows in the chat (uploaded: Telegram fetches only PDF, ZIP
        and GIF by address), the words as its caption, or before it when a caption cannot hold them."""
        assert message.file_url
        fetched = await self.files.fetch(message.file_url, what="file", max_bytes=MAX_UPLOAD_BYTES,
                                         limit_name="Telegram's bots")
        document = BufferedInputFile(fetched.data, filename=file_name(message.file_name, fetched))
        caption, markup = message.text, _markup(message)
        if message.image_url or len(message.text) > CAPTION_LIMIT:
            await _send(bot, replace(message, file_url=None, file_name=None))
            caption, markup = "", None
        return await bot.send_document(chat_id=int(message.recipient), document=document, caption=caption or None,
                                       reply_markup=markup, request_timeout=60)

    async def check_connection(self, api_base: str | None, credentials: dict[str, Any]) -> ConnectionCheck:
        creds = TelegramCredentials.model_validate(credentials)
        bot = _make_bot(creds.bot_token, api_base)
        try:
            me = await bot.get_me(request_timeout=15)
        except TelegramUnauthorizedError:
            raise ConnectionFailed("Telegram says the bot token is invalid (401): copy it again from @BotFather") from None
        except TelegramNetworkError as exc:
            raise ConnectionFailed(f"cannot reach the Telegram Bot API at {_bot_api_base(api_base)}: {exc}") from None
        except TelegramAPIError as exc:
            raise ConnectionFailed(f"Telegram refused getMe: {exc.message}") from None
        except ClientDecodeError:
            raise ConnectionFailed(f"{_bot_api_base(api_base)} did not answer like the Telegram Bot API: "
                                   "check the API base URL") from None
        finally:
            await bot.session.close()
        return ConnectionCheck(platform_account_id=str(me.id), display_name=f"@{me.username}")

    async def activate(self, account: AccountRef, webhook_url: str) -> None:
        settings = TelegramSettings.model_validate(account.settings)
        bot = self.bot(account)
        try:
            if settings.mode == "webhook":
                await bot.set_webhook(webhook_url, secret_token=account.credentials["webhook_secret"],
                                      allowed_updates=ALLOWED_UPDATES, request_timeout=15)
            else:
                await bot.delete_webhook(request_timeout=15)
        except TelegramAPIError as exc:
            raise ConnectionFailed(f"Telegram refused the webhook {webhook_url}: {exc.message}") from None

    def wants_polling(self, account: AccountRef) -> bool:
        return TelegramSettings.model_validate(account.settings).mode == "polling"

    def make_poller(self, account: AccountRef, sink: InboundSink,
                    load_cursor: Callable[[str], Awaitable[str | None]]) -> TelegramPoller:
        from channels.telegram.polling import TelegramPoller  # the poller builds on this module

        return TelegramPoller(self, account, sink, load_cursor)

    def bot(self, account: AccountRef) -> Bot:
        """One aiogram Bot (and HTTP session) per account, renewed when its token or base changes."""
        key = (account.credentials["bot_token"], _bot_api_base(account.api_base))
        cached = self._bots.get(account.id)
        if cached is not None and cached[0] == key:
            return cached[1]
        bot = _make_bot(*key)
        self._bots[account.id] = (key, bot)
        if cached is not None:
            stale = cached[1]
            log.info("telegram account %s: credentials changed; new API session", account.id)
            # Close the old session later: sends may still be using it.
            asyncio.get_running_loop().call_later(60, lambda: asyncio.ensure_future(stale.session.close()))
        return bot

    async def close(self) -> None:
        for _, bot in self._bots.values():
            await bot.session.close()
        self._bots.clear()
        await self.files.close()


def _host(url: str) -> str:
    return urlsplit(url).hostname or url


def _make_bot(token: str, api_base: str | None) -> Bot:
    base = _bot_api_base(api_base)
    server = PRODUCTION if base == "https://api.telegram.org" else TelegramAPIServer.from_base(base)
    return Bot(token=token, session=AiohttpSession(api=server))


def parse_update(update: Update, raw: dict[str, Any]) -> list[InboundEvent]:
    """Normalized events for one update; updates we do not handle give none."""
    platform_id = f"update:{update.update_id}"
    if update.message is not None or update.edited_message is not None:
        edited = update.message is None
        msg = update.edited_message if edited else update.message
        assert msg is not None
        if msg.from_user is None or msg.from_user.is_bot:
            return []
        kind, text, attachments = _content(msg)
        if edited:
            kind = MessageKind.EDIT
            attachments = [*attachments, {"type": "edit_of", "message_id": msg.message_id}]
        return [InboundMessage(
            platform_message_id=platform_id,
            sender=_sender(msg.from_user),
            thread_id=str(msg.chat.id),
            kind=kind,
            text=text,
            raw=raw,
            sent_at=msg.date,
            attachments=attachments,
        )]
    if update.callback_query is not None:
        query = update.callback_query
        chat_id = query.message.chat.id if query.message is not None else query.from_user.id
        return [InboundMessage(
            platform_message_id=platform_id,
            sender=_sender(query.from_user),
            thread_id=str(chat_id),
            kind=MessageKind.CALLBACK,
            text=query.data,
            raw=raw,
        )]
    if update.my_chat_member is not None:
        change = update.my_chat_member
        if change.chat.type != "private":
            return []
        status = change.new_chat_member.status
        reachable = status not in ("kicked", "left")
        reason = "restarted the bot" if reachable else "blocked the bot"
        return [ReachabilityChanged(
            platform_message_id=platform_id,
            sender=_sender(change.from_user),
            thread_id=str(change.chat.id),
            reachable=reachable,
            reason=reason,
            raw=raw,
        )]
    return []


def _sender(user: Any) -> Sender:
    name = " ".join(p for p in (user.first_name, user.last_name) if p) or None
    return Sender(external_id=str(user.id), display_name=name, username=user.username,
                  language=user.language_code)


def _content(msg: Message) -> tuple[MessageKind, str | None, list[dict[str, Any]]]:
    if msg.photo:
        largest = max(msg.photo, key=lambda p: p.width * p.height)
        return MessageKind.IMAGE, msg.caption, [{"type": "photo", "file_id": largest.file_id,
                                                 "width": largest.width, "height": largest.height}]
    if msg.document is not None:
        doc = msg.document
        return MessageKind.FILE, msg.caption, [{"type": "document", "file_id": doc.file_id,
                                                "name": doc.file_name, "mime_type": doc.mime_type,
                                                "size": doc.file_size}]
    if msg.text is not None:
        return MessageKind.TEXT, msg.text, []
    # Stickers, voice, location...: kept with their type so nothing is lost.
    return MessageKind.TEXT, msg.caption, [{"type": str(msg.content_type)}]
