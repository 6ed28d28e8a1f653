"""Telegram's Bot API through aiogram: sending, checking a token, setting the webhook.

Imported only by what calls the Bot API (the dispatcher, the panel's connection check, long
polling): aiogram takes ~130 MB to import, which a process that only takes webhooks never pays
(`channels.telegram.updates` reads them).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any
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
from aiogram.methods import (
    AnswerCallbackQuery,
    DeleteWebhook,
    GetMe,
    GetUpdates,
    SendDocument,
    SendMessage,
    SendPhoto,
    SetWebhook,
)
from aiogram.methods.base import Response, TelegramMethod
from aiogram.types import BufferedInputFile, InlineKeyboardButton, InlineKeyboardMarkup, InputFile, Message
from aiohttp import FormData
from aiohttp.payload import JsonPayload

from channels.base import ConnectionCheck, ConnectionFailed, shortened
from channels.files import FileFetcher, file_name
from channels.telegram.adapter import PRODUCTION_BASE
from channels.telegram.updates import ALLOWED_UPDATES
from crm_core.models import Delivery
from crm_core.ports import (
    AccountRef,
    OutboundMessage,
    PermanentFailure,
    RecipientUnreachable,
    RetryLater,
    SendResult,
    TemporaryFailure,
)

# aiogram checks every answer with `Response[T]`, a pydantic model built for T on demand. pydantic
# keeps such a model only while something references it (a weak cache), so after most garbage
# collections it was built again, at 20 ms or more: measured, 243 rebuilds in a 5,000-send
# campaign, a tenth of the dispatcher's event loop. Held here for the methods the hub calls.
_ANSWER_MODELS = tuple(Response[method.__returning__] for method in (
    SendMessage, SendPhoto, SendDocument, GetMe, SetWebhook, DeleteWebhook, GetUpdates, AnswerCallbackQuery))

CAPTION_LIMIT = 1024  # characters of a photo or document caption
MAX_UPLOAD_BYTES = 50 * 2**20  # what a bot may upload


class _JsonSession(AiohttpSession):
    """aiogram's session, but a request without a file goes as a JSON body, which the Bot API takes
    as it takes a form. aiogram builds a form field by field, each object serialised on its own,
    which aiohttp then URL-encodes: measured, a fifth of the client's CPU in a campaign's send.
    Uploads stay multipart forms."""

    def build_form_data(self, bot: Bot, method: TelegramMethod[Any]) -> FormData | JsonPayload:
        files: dict[str, InputFile] = {}
        fields = {}
        for key, value in method.model_dump(warnings=False, exclude_none=True).items():
            value = self.prepare_value(value, bot=bot, files=files, _dumps_json=False)
            if value is not None and value != "":  # what aiogram's form leaves out
                fields[key] = value
        if files:
            return super().build_form_data(bot, method)
        return JsonPayload(fields, dumps=self.json_dumps)


def make_bot(token: str, base: str) -> Bot:
    server = PRODUCTION if base == PRODUCTION_BASE else TelegramAPIServer.from_base(base)
    return Bot(token=token, session=_JsonSession(api=server))


def _markup(message: OutboundMessage) -> InlineKeyboardMarkup | None:
    rows = [[InlineKeyboardButton(text=b.label, callback_data=b.data[:64])] for b in message.buttons]
    if message.link_url:
        host = urlsplit(message.link_url).hostname or message.link_url
        rows.append([InlineKeyboardButton(text=shortened(message.title or host, 64), url=message.link_url)])
    return InlineKeyboardMarkup(inline_keyboard=rows) if rows else None


async def _send_words(bot: Bot, message: OutboundMessage) -> Message:
    """Words, with the picture as a photo whose caption they are, the buttons under them."""
    if message.image_url and len(message.text) <= CAPTION_LIMIT:
        return await bot.send_photo(chat_id=int(message.recipient), photo=message.image_url,
                                    caption=message.text, reply_markup=_markup(message), request_timeout=20)
    # A caption longer than Telegram allows: the text, whose link preview shows the picture.
    text = f"{message.text}\n{message.image_url}" if message.image_url else message.text
    return await bot.send_message(chat_id=int(message.recipient), text=text, reply_markup=_markup(message),
                                  request_timeout=20)


async def _send_file(bot: Bot, message: OutboundMessage, files: FileFetcher) -> Message:
    """A document as a file Telegram shows in the chat (uploaded: Telegram fetches only PDF, ZIP
    and GIF by address), the words as its caption, or before it when a caption cannot hold them."""
    assert message.file_url
    fetched = await files.fetch(message.file_url, what="file", max_bytes=MAX_UPLOAD_BYTES,
                                limit_name="Telegram's bots")
    document = BufferedInputFile(fetched.data, filename=file_name(message.file_name, fetched))
    caption, markup = message.text, _markup(message)
    if message.image_url or len(message.text) > CAPTION_LIMIT:
        await _send_words(bot, replace(message, file_url=None, file_name=None))
        caption, markup = "", None
    return await bot.send_document(chat_id=int(message.recipient), document=document, caption=caption or None,
                                   reply_markup=markup, request_timeout=60)


async def send(bot: Bot, account: AccountRef, base: str, message: OutboundMessage, files: FileFetcher) -> SendResult:
    """One message from `account`'s bot (its Bot API at `base`); Telegram's refusals as the
    dispatcher's outcomes."""
    try:
        sent = await (_send_file(bot, message, files) if message.file_url else _send_words(bot, message))
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
        raise TemporaryFailure(f"not a Telegram Bot API answer from {base}: "
                               f"{str(exc.data)[:200]}") from None
    return SendResult(platform_message_id=f"{sent.chat.id}:{sent.message_id}", delivery=Delivery.IN_CHAT)


async def check_connection(token: str, base: str) -> ConnectionCheck:
    bot = make_bot(token, base)
    try:
        me = await bot.get_me(request_timeout=15)
    except TelegramUnauthorizedError:
        raise ConnectionFailed("Telegram says the bot token is invalid (401): copy it again from @BotFather") \
            from None
    except TelegramNetworkError as exc:
        raise ConnectionFailed(f"cannot reach the Telegram Bot API at {base}: {exc}") from None
    except TelegramAPIError as exc:
        raise ConnectionFailed(f"Telegram refused getMe: {exc.message}") from None
    except ClientDecodeError:
        raise ConnectionFailed(f"{base} did not answer like the Telegram Bot API: check the API base URL") from None
    finally:
        await bot.session.close()
    return ConnectionCheck(platform_account_id=str(me.id), display_name=f"@{me.username}")


async def activate(bot: Bot, webhook_url: str, secret: str, *, webhook: bool) -> None:
    """The webhook set with its secret token (or removed, for long polling)."""
    try:
        if webhook:
            await bot.set_webhook(webhook_url, secret_token=secret, allowed_updates=ALLOWED_UPDATES,
                                  request_timeout=15)
        else:
            await bot.delete_webhook(request_timeout=15)
    except TelegramAPIError as exc:
        raise ConnectionFailed(f"Telegram refused the webhook {webhook_url}: {exc.message}") from None
