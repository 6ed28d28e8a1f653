"""Long polling: the alternative to webhooks for a hub without a public URL.

The offset moves only after the sink has committed the events, so a crash
re-fetches unconfirmed updates (and ingest dedupes them) instead of losing them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiogram.exceptions import TelegramAPIError, TelegramConflictError, TelegramUnauthorizedError
from pydantic import ValidationError

from channels.base import InboundSink
from channels.telegram import updates as telegram_updates
from channels.telegram.adapter import TelegramAdapter
from channels.telegram.updates import ALLOWED_UPDATES
from crm_core.ports import AccountRef
from crm_core.waiting import wait_any

log = logging.getLogger(__name__)

CURSOR = "update_offset"


class TelegramPoller:
    def __init__(
        self,
        adapter: TelegramAdapter,
        account: AccountRef,
        sink: InboundSink,
        load_cursor: Callable[[str], Awaitable[str | None]],
        *,
        poll_timeout: int = 25,
    ) -> None:
        self.adapter = adapter
        self.account = account
        self.sink = sink
        self.load_cursor = load_cursor
        self.poll_timeout = poll_timeout

    async def run(self, stop: asyncio.Event) -> None:
        bot = self.adapter.bot(self.account)
        stored = await self.load_cursor(CURSOR)
        offset = int(stored) if stored else None
        delay = 1.0
        log.info("telegram account %s: long polling from offset %s", self.account.id, offset)
        while not stop.is_set():
            fetch = asyncio.ensure_future(bot.get_updates(offset=offset, timeout=self.poll_timeout,
                                                          allowed_updates=ALLOWED_UPDATES,
                                                          request_timeout=self.poll_timeout + 10))
            stopper = asyncio.ensure_future(stop.wait())
            await asyncio.wait({fetch, stopper}, return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
            if not fetch.done():
                fetch.cancel()
                break
            try:
                updates = fetch.result()
            except TelegramConflictError:
                log.warning("telegram account %s: a webhook is set or another poller runs; removing the webhook",
                            self.account.id)
                await self._quietly(bot.delete_webhook())
                await self._sleep(stop, delay)
                delay = min(delay * 2, 60)
                continue
            except TelegramUnauthorizedError:
                log.error("telegram account %s: the bot token was rejected; polling paused for 60 s",
                          self.account.id)
                await self._sleep(stop, 60)
                continue
            except Exception as exc:
                log.warning("telegram account %s: getUpdates failed (%s); retry in %.0fs", self.account.id, exc, delay)
                await self._sleep(stop, delay)
                delay = min(delay * 2, 60)
                continue
            delay = 1.0
            if not updates:
                continue
            events = []
            for update in updates:
                raw = update.model_dump(mode="json", by_alias=True, exclude_none=True)
                try:
                    events.extend(telegram_updates.events(telegram_updates.Update.model_validate(raw), raw))
                except ValidationError as exc:  # aiogram took it; kept out, and said
                    log.warning("telegram account %s: update %s not read: %s", self.account.id, update.update_id,
                                exc.errors()[0]["msg"])
            next_offset = max(u.update_id for u in updates) + 1
            try:
                await self.sink(self.account.id, events, (CURSOR, str(next_offset)))
            except Exception:
                # Not stored: keep the offset, so Telegram hands the same updates again.
                log.exception("telegram account %s: storing %d updates failed; refetching in %.0fs",
                              self.account.id, len(updates), delay)
                await self._sleep(stop, delay)
                delay = min(delay * 2, 60)
                continue
            offset = next_offset
            for update in updates:
                if update.callback_query is not None:
                    await self._quietly(bot.answer_callback_query(update.callback_query.id))

    @staticmethod
    async def _sleep(stop: asyncio.Event, seconds: float) -> None:
        await wait_any(stop, timeout=seconds)

    async def _quietly(self, call: Awaitable[object]) -> None:
        try:
            await call
        except TelegramAPIError as exc:
            log.info("telegram account %s: %s", self.account.id, exc)
