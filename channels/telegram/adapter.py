"""Telegram adapter: verify and parse Bot API updates (`updates`), send through aiogram
(`bot_api`, imported when first used: a process that only takes webhooks never loads aiogram).

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
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, Field, ValidationError

from channels.base import (
    AccountSettings,
    Capabilities,
    ConnectionCheck,
    InboundSink,
    WebhookOutcome,
    WebhookRejected,
    WebhookRequest,
    load_json_object,
)
from channels.files import FileFetcher, OwnMedia
from channels.telegram import updates
from channels.telegram.updates import ALLOWED_UPDATES
from crm_core.ports import AccountRef, OutboundMessage, RateLimit, SendResult

if TYPE_CHECKING:
    from aiogram import Bot

    from channels.telegram.polling import TelegramPoller

log = logging.getLogger(__name__)

SECRET_HEADER = "x-telegram-bot-api-secret-token"
PRODUCTION_BASE = "https://api.telegram.org"
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


def _bot_api_base(api_base: str | None) -> str:
    return (api_base or PRODUCTION_BASE).rstrip("/")


class TelegramAdapter:
    kind: ClassVar[str] = "telegram"
    capabilities: ClassVar[Capabilities] = Capabilities(buttons=True, images=True, markdown=True,
                                                        max_text_length=4096)
    credentials_model: ClassVar[type[BaseModel]] = TelegramCredentials
    settings_model: ClassVar[type[BaseModel]] = TelegramSettings
    secret_fields: ClassVar[frozenset[str]] = frozenset({"bot_token", "webhook_secret"})

    def __init__(self, *, allow_private: bool = False, own_media: OwnMedia | None = None) -> None:
        self._bots: dict[int, tuple[tuple[str, str], Bot]] = {}
        self.files = FileFetcher(allow_private=allow_private, own_media=own_media)

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
            update = updates.Update.model_validate({"update_id": raw["update_id"], handled[0]: raw[handled[0]]})
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise WebhookRejected(400, f"not a Telegram update: {where}: {first['msg']}") from None
        events = updates.events(update, raw)
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
        return await _bot_api().send(self.bot(account), account, _bot_api_base(account.api_base), message,
                                     self.files)

    async def check_connection(self, api_base: str | None, credentials: dict[str, Any]) -> ConnectionCheck:
        creds = TelegramCredentials.model_validate(credentials)
        return await _bot_api().check_connection(creds.bot_token, _bot_api_base(api_base))

    async def activate(self, account: AccountRef, webhook_url: str) -> None:
        settings = TelegramSettings.model_validate(account.settings)
        await _bot_api().activate(self.bot(account), webhook_url, account.credentials["webhook_secret"],
                                  webhook=settings.mode == "webhook")

    def prepare_to_send(self) -> None:
        _bot_api()

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
        bot = _bot_api().make_bot(*key)
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


def _bot_api() -> ModuleType:
    """aiogram's side of the adapter, imported when the Bot API is first called."""
    from channels.telegram import bot_api

    return bot_api
